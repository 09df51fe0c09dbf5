"""Retention: delete Runs, Jobs and Errors rows older than RETENTION_DAYS, in bulk.

Run ids invert their start time (shared.store.runs.new_run_id), and the Jobs and Errors tables are
partitioned by run id, so "older than the cutoff" is one key-range query per table. Rows are deleted
in table transactions of at most 100 operations within one partition. The jobs and errors of a run
go first and its Runs row last, so a purge cut short leaves nothing orphaned: the next one finishes.
Runs still Pending or Running are kept, whatever their age. Rate-limit counters of callers not seen
since the cutoff go too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from azure.core.exceptions import ResourceNotFoundError

from shared.store import table_wire
from shared.store.limits import PK as LIMIT_PK
from shared.store.runs import ACTIVE
from shared.store.runs import PK as RUN_PK
from shared.store.tables import ERRORS, JOBS, PLANNED, RUNS, TRANSACTION_LIMIT, Tables, chunks


def cutoff_key(days: int, now_ms: int | None = None) -> str:
    """The inverted-time key of the cutoff: run ids greater than it started before it."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{10**13 - (now_ms - days * 86_400_000):013d}"


def _delete(table, keys: Iterable[tuple[str, str]]) -> int:
    by_partition: dict[str, list[str]] = {}
    for pk, rk in keys:
        by_partition.setdefault(pk, []).append(rk)
    deleted = 0
    for pk, rows in by_partition.items():
        for group in chunks(rows, TRANSACTION_LIMIT):
            try:
                table_wire.submit(table, [("delete", {"PartitionKey": pk, "RowKey": rk}) for rk in group])
            except table_wire.TransactionFailed:
                # One row went meanwhile (a concurrent purge): the rest one by one.
                for rk in group:
                    try:
                        table.delete_entity(pk, rk)
                    except ResourceNotFoundError:
                        continue
            deleted += len(group)
    return deleted


def purge(tables: Tables, days: int, now_ms: int | None = None) -> dict[str, int]:
    """Delete what is older than ``days``; the number of rows deleted per table."""
    cut = cutoff_key(days, now_ms)
    runs = tables.client(RUNS)
    old = list(
        table_wire.query(
            runs,
            "PartitionKey eq @pk and RowKey gt @cut",
            {"pk": RUN_PK, "cut": cut},
            select=["RowKey", "status"],
        )
    )
    keep = {r["RowKey"] for r in old if r.get("status") in ACTIVE}
    counts = {}
    for name in (ERRORS, JOBS, PLANNED):
        table = tables.client(name)
        # Upper bound ":" (after "9"): run ids only, whatever else a partition may be called.
        where = "PartitionKey gt @cut and PartitionKey lt ':'"
        rows = table_wire.query(table, where, {"cut": cut}, select=["PartitionKey", "RowKey"])
        keys = ((r["PartitionKey"], r["RowKey"]) for r in rows if r["PartitionKey"] not in keep)
        counts[name] = _delete(table, keys)
    counts[RUNS] = _delete(runs, ((RUN_PK, r["RowKey"]) for r in old if r["RowKey"] not in keep))
    # Rate-limit counters of callers not seen since the cutoff (one row per caller and limit).
    since = ((now_ms if now_ms is not None else int(time.time() * 1000)) // 1000) - days * 86_400
    idle = table_wire.query(
        runs,
        "PartitionKey eq @pk and window_start lt @since",
        {"pk": LIMIT_PK, "since": since},
        select=["RowKey"],
    )
    counts["limits"] = _delete(runs, ((LIMIT_PK, r["RowKey"]) for r in idle))
    return counts
