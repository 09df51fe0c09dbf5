"""The Runs table: one row per run, newest first (inverted-time row keys)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.errors import Concurrency
from shared.model.status import RUN_ACTIVE, RUN_FINISHED, RunStatus
from shared.store.etag import update_row
from shared.store.tables import RUNS, Tables, iso, now, parse_iso

PK = "run"
LOCK_PK = "lock"  # RowKey = mapping name: the run that holds the mapping (see RunStore.lock)
ACTIVE = RUN_ACTIVE
FINISHED = RUN_FINISHED
# A lock whose run row never appeared (the starter died between the two writes) is free after this.
LOCK_GRACE_SECONDS = 300


class MappingLocked(Concurrency):
    """Another run holds the mapping (or took it a moment ago and is still creating its run)."""

    def __init__(self, run_id: str, mapping: str):
        super().__init__(f"run {run_id} is already synchronizing {mapping}")
        self.run_id = run_id
        self.mapping = mapping


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
    status: str = RunStatus.PENDING
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
        """Apply ``mutate(run)`` under the run's ETag; ``mutate`` returns False to leave it unchanged."""
        return update_row(lambda: self.get(run_id), self.save, mutate, f"run {run_id}")

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

    # --- one run per mapping ---------------------------------------------------------------------
    # A lock row per mapping, taken by insert (or by an If-Match replace of a row whose run is over):
    # of two starters exactly one gets each row. Nothing has to release a lock: it is free as soon as
    # its run is no longer Pending/Running, or LOCK_GRACE_SECONDS after it was taken when the run row
    # never appeared — so a crash anywhere in between cannot block a mapping for longer than that.
    def lock(self, mappings: list[str], run_id: str) -> None:
        """Take every mapping's lock for ``run_id`` (all or none); MappingLocked when one is held."""
        taken: list[tuple[str, str]] = []
        try:
            for name in mappings:
                taken.append((name, self._take(name, run_id)))
        except BaseException:
            self.unlock([name for name, _ in taken], run_id)
            raise

    def holds(self, mappings: list[str], run_id: str) -> bool:
        """True when every one of ``mappings`` is still locked for ``run_id``."""
        for name in mappings:
            try:
                if self.table.get_entity(LOCK_PK, name).get("run_id") != run_id:
                    return False
            except ResourceNotFoundError:
                return False
        return True

    def unlock(self, mappings: list[str], run_id: str) -> None:
        """Free the locks ``run_id`` still holds (a lock taken over by another run stays)."""
        for name in mappings:
            try:
                row = self.table.get_entity(LOCK_PK, name)
                if row.get("run_id") == run_id:
                    self.table.delete_entity(
                        LOCK_PK,
                        name,
                        etag=row.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceNotFoundError, ResourceModifiedError):
                continue

    def _take(self, name: str, run_id: str) -> str:
        entity = {"PartitionKey": LOCK_PK, "RowKey": name, "run_id": run_id, "taken_at": iso(now())}
        for _ in range(10):
            try:
                return self.table.create_entity(entity)["etag"]
            except ResourceExistsError:
                pass
            try:
                row = self.table.get_entity(LOCK_PK, name)
            except ResourceNotFoundError:
                continue
            if row.get("run_id") != run_id and self._lock_held(row):
                raise MappingLocked(row["run_id"], name)
            try:
                meta = self.table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return meta["etag"]
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # another starter changed the row first: look again
        raise MappingLocked("another run", name)

    def _lock_held(self, row: dict[str, Any]) -> bool:
        run = self.get(row["run_id"])
        if run is not None:
            return run.status in ACTIVE
        taken = parse_iso(row.get("taken_at"))
        return taken is not None and (now() - taken).total_seconds() < LOCK_GRACE_SECONDS

    def since(self, cutoff_ms: int, limit: int = 1000) -> list[Run]:
        """Runs started after ``cutoff_ms`` (Unix milliseconds), newest first, at most ``limit``: one
        range query, as run ids invert the start time."""
        query = "PartitionKey eq 'run' and RowKey lt @cut"
        cut = f"{10**13 - cutoff_ms:013d}"
        pages = self.table.query_entities(query, parameters={"cut": cut}, results_per_page=min(limit, 1000))
        runs: list[Run] = []
        for entity in pages:
            runs.append(self._from(entity))
            if len(runs) >= limit:
                break
        return runs
