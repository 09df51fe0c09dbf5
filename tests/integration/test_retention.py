"""Retention against real Azurite: old runs with their jobs and errors go, in transactions of ≤ 100;
recent runs and old runs still running stay."""

from __future__ import annotations

import time
import uuid

import pytest

from shared.store import table_wire
from shared.store.errors import ErrorStore, SyncError
from shared.store.jobs import Job, JobStore
from shared.store.limits import RateLimiter
from shared.store.retention import purge
from shared.store.runs import Run, RunStore
from shared.store.tables import ERRORS, JOBS, PLANNED, RUNS, Tables

DAY_MS = 86_400_000


@pytest.fixture
def tables(storage_env, unique_name) -> Tables:
    t = Tables(prefix=unique_name)
    t.ensure()
    return t


def run_at(tables: Tables, age_days: float, status: str = "Succeeded", errors: int = 0) -> str:
    ms = int(time.time() * 1000 - age_days * DAY_MS)
    run_id = f"{10**13 - ms:013d}-{uuid.uuid4().hex[:6]}"
    RunStore(tables).create(Run(run_id, "full", "api", ["CURRENCY", "CUSTOMER"], status=status))
    JobStore(tables).create_many([Job(run_id, m, [], ["to_crm"]) for m in ("CURRENCY", "CUSTOMER")])
    ErrorStore(tables).add_many(
        [SyncError(run_id, "CUSTOMER", "to_crm", str(uuid.uuid4()), None, "boom") for _ in range(errors)]
    )
    return run_id


def partitions(tables: Tables, name: str) -> set[str]:
    rows = table_wire.query(tables.client(name), "PartitionKey ne ''", select=["PartitionKey"])
    return {r["PartitionKey"] for r in rows}


def test_purge_deletes_old_runs_jobs_and_errors_in_bulk(tables, monkeypatch):
    old = run_at(tables, 120, errors=250)  # three transactions of errors
    older = run_at(tables, 400, status="Failed", errors=3)
    stuck = run_at(tables, 200, status="Running", errors=1)  # still active: never purged
    recent = run_at(tables, 10, errors=5)
    batches: list[int] = []
    submit = table_wire.submit

    def counting(table, ops):
        ops = list(ops)
        batches.append(len(ops))
        return submit(table, ops)

    monkeypatch.setattr(table_wire, "submit", counting)
    limits = RateLimiter(tables)
    limits.hit("run_starts", "key-idle", 10, 60)
    limits.hit("run_starts", "key-active", 10, 60)
    idle = tables.client(RUNS).get_entity("limit", "run_starts|key-idle")
    tables.client(RUNS).update_entity({**idle, "window_start": int(time.time()) - 100 * 86_400})
    deleted = purge(tables, days=90)
    assert deleted == {ERRORS: 253, JOBS: 4, RUNS: 2, PLANNED: 0, "limits": 1}
    assert [r["RowKey"] for r in table_wire.query(tables.client(RUNS), "PartitionKey eq 'limit'")] == [
        "run_starts|key-active"
    ]
    assert max(batches) <= 100 and len(batches) >= 3 + 2 + 1 + 1
    runs = {r.run_id for r in RunStore(tables).list(200)[0]}
    assert runs == {stuck, recent}
    assert partitions(tables, JOBS) == {stuck, recent}
    assert partitions(tables, ERRORS) == {stuck, recent}
    assert old not in runs and older not in runs
    # Nothing left to do: a second purge deletes nothing.
    assert purge(tables, days=90) == {ERRORS: 0, JOBS: 0, RUNS: 0, PLANNED: 0, "limits": 0}


def test_the_retention_timer_is_registered(storage_env):
    from tests.app_functions import functions  # imports function_app once the storage env is set

    timers = {f.get_function_name(): f for f in functions()}
    assert "retention" in timers
    trigger = timers["retention"].get_bindings()[0]
    assert trigger.type == "timerTrigger" and trigger.schedule.split()[3:] == ["*", "*", "*"]
