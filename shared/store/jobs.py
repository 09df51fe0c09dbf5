"""The Jobs table: one row per (run, mapping) with status, counters, cursor and progress.

Updates are ETag-guarded read-modify-write: counters of a slice and its cursor move together, and
of two workers racing to finish the same slice exactly one wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.model.status import COUNTERS as RESULT_COUNTERS
from shared.model.status import JOB_DONE, JOB_TERMINAL, JobStatus, Pass
from shared.store import table_wire
from shared.store.etag import update_row
from shared.store.tables import JOBS, Tables

COUNTERS = tuple(str(c) for c in RESULT_COUNTERS)
TERMINAL = JOB_TERMINAL
DONE = JOB_DONE  # a dependency in these states lets its dependents run
NOTES_MAX = 2000  # characters of notes a job keeps in its message
_JSON_FIELDS = ("depends_on", "counters", "cursor", "passes", "usage")


def empty_counters() -> dict[str, dict[str, int]]:
    return {str(p): dict.fromkeys(COUNTERS, 0) for p in Pass}


@dataclass
class Job:
    run_id: str
    mapping: str
    depends_on: list[str]
    passes: list[str]
    status: str = JobStatus.PENDING
    counters: dict[str, dict[str, int]] = field(default_factory=empty_counters)
    cursor: dict[str, Any] = field(default_factory=dict)
    seq: int = 0  # number of slices completed; a message for another seq is stale
    processed: int = 0
    total_estimate: int | None = None
    errors: int = 0
    usage: dict[str, int] = field(default_factory=dict)  # requests per service, table entity ops (usage.py)
    started_at: str | None = None
    finished_at: str | None = None
    message: str | None = None
    etag: str | None = field(default=None, repr=False)

    def add(self, sync_pass: str, counts: dict[str, int]) -> None:
        for k, v in counts.items():
            self.counters[sync_pass][k] = self.counters[sync_pass].get(k, 0) + v

    def note(self, notes: list[str]) -> None:
        """Add notes of a slice to the job's log (its message), each once, bounded."""
        known = (self.message or "").split("; ") if self.message else []
        for n in notes:
            if n not in known:
                known.append(n)
        self.message = "; ".join(known)[:NOTES_MAX] or None

    def add_usage(self, counts: dict[str, int]) -> None:
        for k, v in counts.items():
            self.usage[k] = self.usage.get(k, 0) + v

    def api(self) -> dict[str, Any]:
        return {
            "mapping": self.mapping,
            "status": self.status,
            "depends_on": self.depends_on,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "processed": self.processed,
            "total_estimate": self.total_estimate,
            "errors": self.errors,
            "usage": self.usage,
            Pass.TO_CRM: self.counters[Pass.TO_CRM],
            Pass.FROM_CRM: self.counters[Pass.FROM_CRM],
            "message": self.message,
        }


class JobStore:
    def __init__(self, tables: Tables):
        self.table = tables.client(JOBS)

    @staticmethod
    def _entity(job: Job) -> dict[str, Any]:
        entity: dict[str, Any] = {"PartitionKey": job.run_id, "RowKey": job.mapping}
        for k in Job.__dataclass_fields__:
            if k in ("run_id", "mapping", "etag"):
                continue
            v = getattr(job, k)
            if v is not None:
                entity[k] = json.dumps(v, separators=(",", ":")) if k in _JSON_FIELDS else v
        return entity

    @staticmethod
    def _from(e: dict[str, Any]) -> Job:
        data = {k: v for k, v in e.items() if k in Job.__dataclass_fields__}
        for k in _JSON_FIELDS:
            if k in data:
                data[k] = json.loads(data[k])
        return Job(run_id=e["PartitionKey"], mapping=e["RowKey"], etag=e.metadata["etag"], **data)

    def create_many(self, jobs: list[Job]) -> None:
        if jobs:
            table_wire.submit(self.table, [("create", self._entity(j)) for j in jobs])

    def get(self, run_id: str, mapping: str) -> Job | None:
        try:
            return self._from(self.table.get_entity(run_id, mapping))
        except ResourceNotFoundError:
            return None

    def for_run(self, run_id: str) -> list[Job]:
        return [
            self._from(e) for e in self.table.query_entities("PartitionKey eq @pk", parameters={"pk": run_id})
        ]

    def save(self, job: Job) -> Job:
        """ETag-guarded replace; raises ResourceModifiedError when the job changed since it was read."""
        meta = self.table.update_entity(
            self._entity(job),
            mode=UpdateMode.REPLACE,
            etag=job.etag,
            match_condition=MatchConditions.IfNotModified,
        )
        job.etag = meta["etag"]
        return job

    def update(self, run_id: str, mapping: str, mutate) -> Job | None:
        """Apply ``mutate(job)`` under the job's ETag; ``mutate`` returns False to leave it unchanged."""
        return update_row(lambda: self.get(run_id, mapping), self.save, mutate, f"job {run_id}/{mapping}")

    def save_if_unchanged(self, job: Job) -> bool:
        """Save under the ETag ``job`` was read with; False when another writer changed it meanwhile."""
        try:
            self.save(job)
        except ResourceModifiedError:
            return False
        return True

    def page(
        self, limit: int = 50, continuation: dict[str, str] | None = None
    ) -> tuple[list[Job], dict[str, str] | None]:
        """One page of the jobs of all runs (newest run first: run ids invert the start time)."""
        pages = self.table.query_entities("PartitionKey ne ''", results_per_page=limit).by_page(
            continuation_token=continuation
        )
        items = [self._from(e) for e in next(pages, [])]
        return items, pages.continuation_token or None

    def between(self, newest_run: str, oldest_run: str) -> list[Job]:
        """The jobs of every run from ``newest_run`` to ``oldest_run`` (inclusive): one range query."""
        query = "PartitionKey ge @lo and PartitionKey le @hi"
        return [
            self._from(e)
            for e in self.table.query_entities(query, parameters={"lo": newest_run, "hi": oldest_run})
        ]
