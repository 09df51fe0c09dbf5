"""The MappingState table: per mapping watermarks, delta link, full-sync flag and the run lease.

All updates are ETag-guarded: two workers can never both believe they hold a mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.errors import Concurrency
from shared.store.etag import Contention, update_row
from shared.store.tables import MAPPING_STATE, Tables, iso, now, parse_iso

PK = "state"


@dataclass
class MappingState:
    mapping: str
    bc_watermark: str | None = None  # lastModifiedDateTime already covered (BC)
    crm_watermark: str | None = None  # modifiedon already covered (CRM, when change tracking is unavailable)
    crm_delta_link: str | None = None
    full_sync_running: bool = False
    last_full_run: str | None = None  # the run of the newest full synchronization (the review's status)
    lease_run: str | None = None
    lease_holder: str | None = None
    lease_expires: str | None = None
    etag: str | None = None

    def lease_active(self) -> bool:
        expires = parse_iso(self.lease_expires)
        return bool(self.lease_run) and expires is not None and expires > now()


class LeaseHeld(Concurrency):
    """Another run (or another worker of this run) holds the mapping right now."""

    def __init__(self, state: MappingState):
        super().__init__(f"mapping {state.mapping} is held by run {state.lease_run}")
        self.state = state


class MappingStateStore:
    def __init__(self, tables: Tables):
        self.table = tables.client(MAPPING_STATE)

    def get(self, mapping: str) -> MappingState:
        try:
            e = self.table.get_entity(PK, mapping)
        except ResourceNotFoundError:
            return MappingState(mapping)
        fields = MappingState.__dataclass_fields__
        data: dict[str, Any] = {k: v for k, v in e.items() if k in fields}
        return MappingState(**{**data, "mapping": mapping, "etag": e.metadata["etag"]})

    def save(self, state: MappingState) -> MappingState:
        """Write the state if nobody changed it since it was read (ResourceModifiedError otherwise)."""
        entity = {"PartitionKey": PK, "RowKey": state.mapping}
        for k in MappingState.__dataclass_fields__:
            if k not in ("mapping", "etag"):
                entity[k] = getattr(state, k)
        entity = {k: v for k, v in entity.items() if v is not None}
        if state.etag is None:
            try:
                meta = self.table.create_entity(entity)
            except ResourceExistsError:
                raise ResourceModifiedError("state row appeared concurrently") from None
        else:
            meta = self.table.update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=state.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        state.etag = meta["etag"]
        return state

    def acquire(self, mapping: str, run: str, holder: str | None, seconds: int) -> MappingState:
        """Take (or renew) the mapping for ``run``; ``holder`` marks one slice in progress.

        Raises LeaseHeld when another run holds it, or another slice of this run is in progress.
        """

        def take(state: MappingState) -> None:
            if state.lease_active() and (
                state.lease_run != run or (state.lease_holder and holder and state.lease_holder != holder)
            ):
                raise LeaseHeld(state)
            state.lease_run, state.lease_holder = run, holder
            state.lease_expires = iso(now() + timedelta(seconds=seconds))

        try:
            return update_row(lambda: self.get(mapping), self.save, take, f"lease of {mapping}", attempts=5)
        except Contention:
            raise LeaseHeld(self.get(mapping)) from None

    def release(self, state: MappingState, keep_for_run_seconds: int | None = None) -> MappingState | None:
        """End a slice (keep the run's hold for ``keep_for_run_seconds``) or free the mapping (None).

        Re-reads the row (the slice may have moved watermarks meanwhile) and changes only the lease,
        and only while it is still ours.
        """
        released: list[bool] = []

        def free(current: MappingState) -> bool | None:
            released.clear()
            if current.lease_run != state.lease_run or (
                state.lease_holder and current.lease_holder not in (None, state.lease_holder)
            ):
                return False  # not ours any more
            current.lease_holder = None
            if keep_for_run_seconds is None:
                current.lease_run = current.lease_expires = None
            else:
                current.lease_expires = iso(now() + timedelta(seconds=keep_for_run_seconds))
            released.append(True)
            return None

        try:
            saved = update_row(
                lambda: self.get(state.mapping), self.save, free, f"lease of {state.mapping}", 10
            )
        except Contention:
            return None
        return saved if released else None

    def update(self, mapping: str, **changes: Any) -> MappingState:
        """Read-modify-write under the ETag (for flags and watermarks outside a lease)."""

        def apply(state: MappingState) -> None:
            for k, v in changes.items():
                setattr(state, k, v)

        saved = update_row(lambda: self.get(mapping), self.save, apply, f"state of {mapping}", attempts=10)
        assert saved is not None  # get() never answers None: a missing row reads as a fresh state
        return saved

    def all(self) -> list[MappingState]:
        return [
            self.get(e["RowKey"])
            for e in self.table.query_entities("PartitionKey eq 'state'", select=["RowKey"])
        ]
