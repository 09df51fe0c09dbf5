"""The Runs table: one row per run, newest first (inverted-time row keys)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.store.tables import RUNS, Tables, iso, now

PK = "run"
ACTIVE = ("Pending", "Running")
FINISHED = ("Succeeded", "Failed", "Cancelled")


def new_run_id() -> str:
    """Inverted milliseconds so a plain table scan lists the newest run first; a suffix keeps ids unique."""
    inverted = 10**13 - int(time.time() * 1000)
    return f"{inverted:013d}-{secrets.token_hex(3)}"


@dataclass
class Run:
    run_id: str
    kind: str  # full | modified | mapping | records
    trigger: str  # api | portal | timer | ribbon
    mappings: list[str]
    status: str = "Pending"
    dry_run: bool = False
    after_full_sync: str = "restore"  # ask | keep | restore
    started_at: str | None = None
    finished_at: str | None = None
    decision: bool | None = None  # keep_sync_all_records answer
    message: str | None = None
    etag: str | None = field(default=None, repr=False)

    def api(self) -> dict[str, Any]:
        keys = ("run_id", "kind", "trigger", "status", "started_at", "finished_at", "dry_run", "mappings")
        out = {k: getattr(self, k) for k in keys}
        out["after_full_sync"] = self.after_full_sync
        out["decision"] = self.decision
        out["message"] = self.message
        return out


class RunStore:
    def __init__(self, tables: Tables):
        self.table = tables.client(RUNS)

    @staticmethod
    def _entity(run: Run) -> dict[str, Any]:
        entity = {"PartitionKey": PK, "RowKey": run.run_id}
        for k in Run.__dataclass_fields__:
            if k in ("run_id", "etag"):
                continue
            v = getattr(run, k)
            if v is not None:
                entity[k] = json.dumps(v) if k == "mappings" else v
        return entity

    @staticmethod
    def _from(entity: dict[str, Any]) -> Run:
        data = {k: v for k, v in entity.items() if k in Run.__dataclass_fields__}
        data["mappings"] = json.loads(entity.get("mappings") or "[]")
        return Run(run_id=entity["RowKey"], etag=entity.metadata["etag"], **data)

    def create(self, run: Run) -> Run:
        run.started_at = run.started_at or iso(now())
        run.etag = self.table.create_entity(self._entity(run))["etag"]
        return run

    def get(self, run_id: str) -> Run | None:
        try:
            return self._from(self.table.get_entity(PK, run_id))
        except ResourceNotFoundError:
            return None

    def save(self, run: Run) -> Run:
        """ETag-guarded replace; raises ResourceModifiedError when someone else changed the run."""
        meta = self.table.update_entity(
            self._entity(run),
            mode=UpdateMode.REPLACE,
            etag=run.etag,
            match_condition=MatchConditions.IfNotModified,
        )
        run.etag = meta["etag"]
        return run

    def update(self, run_id: str, mutate) -> Run | None:
        """Apply ``mutate(run)`` with ETag retries; ``mutate`` returns False to leave the run unchanged."""
        for _ in range(20):
            run = self.get(run_id)
            if run is None:
                return None
            if mutate(run) is False:
                return run
            try:
                return self.save(run)
            except ResourceModifiedError:
                continue
        raise RuntimeError(f"run {run_id}: too much contention")

    def list(self, limit: int = 20, continuation: str | None = None) -> tuple[list[Run], str | None]:
        pages = self.table.query_entities("PartitionKey eq 'run'", results_per_page=limit).by_page(
            continuation_token=json.loads(continuation) if continuation else None
        )
        runs = [self._from(e) for e in next(pages, [])]
        token = pages.continuation_token
        return runs, json.dumps(token) if token else None

    def active(self) -> list[Run]:
        query = "PartitionKey eq 'run' and (status eq 'Pending' or status eq 'Running')"
        return [self._from(e) for e in self.table.query_entities(query)]
