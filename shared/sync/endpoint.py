"""The two services as a page's source and destination (docs/ARCHITECTURE.md §2).

``PageSync`` holds one ``Endpoint`` for its source and one for its destination and asks them for what
differs between Business Central and Dataverse: a record's id, which coupling attributes hold that
side's id and hashes, a field's raw value, reading records by id, writing updates and creates (Dataverse:
deterministic ids, bulk messages; BC: JSON ``$batch``, re-reading a create that an earlier attempt made),
the checks and payload shape a written value takes. The page itself never asks which service is which.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.connectors.bc import BatchOp
from shared.connectors.odata import any_of
from shared.connectors.results import Page
from shared.contracts import bc_entities
from shared.mappings import FieldMapping, Mapping
from shared.mappings.entities import CRM_ENTITIES
from shared.model.status import Pass
from shared.store.couplings import Coupling
from shared.sync.checks import check_bc, check_crm, convert_bc, missing_required, missing_required_bc
from shared.sync.decide import Side
from shared.sync.values import crm_payload, crm_read_name, crm_select, raw_value

ID_CHUNK = 50  # ids per "key eq a or key eq b ..." read


def crm_create_id(mapping: str, bc_id: str) -> str:
    """Deterministic id for a CRM record we create from a BC record: a retried create is an upsert."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bc-dataverse-sync/{mapping}/{bc_id.lower()}"))


def bc_create_id(mapping: str, crm_id: str) -> str:
    """Deterministic SystemId for a BC record we create from a CRM record: whoever creates it — a slice,
    a redone slice, a record action, the ribbon, concurrently — creates the same record, never a twin."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bc-dataverse-sync/{mapping}/crm/{crm_id.lower()}"))


@dataclass
class NewRecord:
    """One record to create: the id of the source record it comes from and the body of its fields."""

    source_id: str
    body: dict[str, Any]
    on_create: dict[FieldMapping, Any] = field(default_factory=dict)  # source values of codes made once


@dataclass
class Created:
    """The answer to one create: the new record's id (None when refused before one was known), the record
    as the service answered it (None: the service answers with no body), or the error."""

    id: str | None
    record: dict[str, Any] | None = None
    ok: bool = True
    error: Any = None


class Endpoint(Protocol):
    """What a page needs of one service, as its source or as its destination."""

    side: Side
    label: str  # the service's name in messages
    toward: Pass  # the pass that writes this service
    key: str  # the attribute a record carries its id in
    assigns_values: bool  # a record created here gets values of the service's own (a number) to send back

    def record_id(self, record: dict[str, Any]) -> str: ...
    def coupling_id(self, c: Coupling) -> str: ...
    def hashes(self, c: Coupling) -> dict[str, str]: ...
    def set_hashes(self, c: Coupling, hashes: dict[str, Any]) -> None: ...
    def pair(self, own: Any, other: Any) -> tuple[Any, Any]: ...
    def value(self, f: FieldMapping, record: dict[str, Any]) -> Any: ...
    def stamp(self, c: Coupling, record: dict[str, Any] | None) -> None: ...
    def couplings(self, ids: list[str]) -> dict[str, Coupling]: ...
    def read(self, ids: list[str]) -> dict[str, dict[str, Any]]: ...
    def index_records(self, groups: list[list[FieldMapping]]) -> Any: ...
    def create_id(self, source_id: str) -> str: ...
    def accept(self, f: FieldMapping, value: Any) -> tuple[Any, str | None]: ...
    def check(self, values: dict[FieldMapping, Any]) -> None: ...
    def payload(self, f: FieldMapping, value: Any) -> dict[str, Any]: ...
    def missing(
        self, values: dict[FieldMapping, Any], constants: list[FieldMapping], on_create: list[FieldMapping]
    ) -> list[str]: ...
    def update_many(self, rows: list[tuple[Coupling, dict[str, Any], dict[str, Any]]]) -> dict[int, Any]: ...
    def create_many(self, rows: list[NewRecord]) -> list[Created]: ...


class _Side:
    """What both endpoints do alike, by their side's names: a coupling holds ``<side>_id`` and
    ``<side>_hashes``."""

    side: Side
    key: str

    def __init__(self, ctx, mapping: Mapping):
        self.ctx, self.m = ctx, mapping

    def record_id(self, record: dict[str, Any]) -> str:
        return record[self.key].lower()

    def coupling_id(self, c: Coupling) -> str:
        return getattr(c, f"{self.side}_id")

    def hashes(self, c: Coupling) -> dict[str, str]:
        """The hashes of this side's values as last synced (the coupling's own dict: updates stick)."""
        return getattr(c, f"{self.side}_hashes")

    def set_hashes(self, c: Coupling, hashes: dict[str, Any]) -> None:
        setattr(c, f"{self.side}_hashes", hashes)

    def value(self, f: FieldMapping, record: dict[str, Any]) -> Any:
        return raw_value(self.m, f, record, self.side)

    def couplings(self, ids: list[str]) -> dict[str, Coupling]:
        """The couplings of these records of this side, by their ids."""
        return getattr(self.ctx.couplings, f"by_{self.side}")(self.m.name, ids)

    def read(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Records by id, ID_CHUNK ids per read."""
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), ID_CHUNK):
            for record in self._page(ids[i : i + ID_CHUNK]).records:
                found[self.record_id(record)] = record
        return found

    def _page(self, ids: list[str]) -> Page:
        raise NotImplementedError


class BcEndpoint(_Side):
    side: Side = "bc"
    label = "Business Central"
    toward = Pass.FROM_CRM
    key = "id"
    assigns_values = True  # a number from the entity's number series

    def pair(self, own: Any, other: Any) -> tuple[Any, Any]:
        """(BC's, Dataverse's) of a value of this side and the same value of the other side."""
        return own, other

    def stamp(self, c: Coupling, record: dict[str, Any] | None) -> None:
        """Remember what the coupling keeps of this side's record as synced."""
        if record:
            c.bc_modified = record.get("lastModifiedDateTime")
            if self.m.bc_ref_field:
                c.bc_ref = record.get(self.m.bc_ref_field)

    def _page(self, ids: list[str]) -> Page:
        return self.ctx.bc.get_page(self.m.bc_entity, filter=any_of(self.key, ids))

    def index_records(self, groups: list[list[FieldMapping]]) -> Any:
        """Every record, whole, for a match index."""
        return self.ctx.bc.iter_records(self.m.bc_entity)

    def create_id(self, source_id: str) -> str:
        return bc_create_id(self.m.name, source_id)

    def accept(self, f: FieldMapping, value: Any) -> tuple[Any, str | None]:
        """The value as BC stores it (a country's name becomes its code); no note."""
        return convert_bc(self.m.bc_entity, f.bc, value, self.ctx.derived), None

    def check(self, values: dict[FieldMapping, Any]) -> None:
        for f, value in values.items():
            check_bc(self.m.bc_entity, f.bc, value, self.ctx.derived)

    def payload(self, f: FieldMapping, value: Any) -> dict[str, Any]:
        return {f.bc: value}  # type: ignore[dict-item]

    def missing(
        self, values: dict[FieldMapping, Any], constants: list[FieldMapping], on_create: list[FieldMapping]
    ) -> list[str]:
        given = {f.bc: v for f, v in values.items()}
        given |= {f.bc: f.constant for f in constants}
        given |= {f.bc: "(new)" for f in on_create}
        return missing_required_bc(self.m.bc_entity, given)

    def update_many(self, rows: list[tuple[Coupling, dict[str, Any], dict[str, Any]]]) -> dict[int, Any]:
        """PATCH each record under the ETag it was read with; the couplings keep BC's new modified time."""
        ops = [
            BatchOp("PATCH", self.m.bc_entity, id=c.bc_id, body=body, etag=target.get("@odata.etag"))
            for c, body, target in rows
        ]
        results = self.ctx.bc.batch(ops)
        for i, r in enumerate(results):
            if r.error is None and r.body:
                rows[i][0].bc_modified = r.body.get("lastModifiedDateTime")
        return {i: r.error for i, r in enumerate(results) if r.error is not None}

    def create_many(self, rows: list[NewRecord]) -> list[Created]:
        bodies = []
        for row in rows:
            body = dict(row.body)
            for f, value in row.on_create.items():
                prop = bc_entities()[self.m.bc_entity].properties.get(f.bc)
                size = prop.max_length if prop else 20
                body[f.bc] = self.ctx.derived.new_code(self.m.bc_entity, value, size)
            body["id"] = self.create_id(row.source_id)
            bodies.append(body)
        results = self.ctx.bc.batch([BatchOp("POST", self.m.bc_entity, body=b) for b in bodies])
        # A record with our id already exists: an earlier attempt (crashed, or running right now) made it.
        # BC documents no code for a repeated SystemId, so any refusal that is not a service fault is
        # checked by reading the id.
        again = [i for i, r in enumerate(results) if r.error is not None and 0 < (r.error.status or 0) < 500]
        if again:
            found = self.ctx.bc.batch([BatchOp("GET", self.m.bc_entity, id=bodies[i]["id"]) for i in again])
            for i, r in zip(again, found, strict=True):
                if r.error is None and r.body:
                    results[i] = r
        out = []
        for r in results:
            if r.error is not None:
                out.append(Created(None, ok=False, error=r.error))
            else:
                record = r.body or {}
                out.append(Created(record["id"].lower(), record))
        return out


class DataverseEndpoint(_Side):
    side: Side = "crm"
    label = "Dataverse"
    toward = Pass.TO_CRM
    assigns_values = False  # a created record holds the values sent

    def __init__(self, ctx, mapping: Mapping):
        super().__init__(ctx, mapping)
        self.entity = CRM_ENTITIES[mapping.crm_entity]
        self.key = self.entity.key

    def pair(self, own: Any, other: Any) -> tuple[Any, Any]:
        """(BC's, Dataverse's) of a value of this side and the same value of the other side."""
        return other, own

    def stamp(self, c: Coupling, record: dict[str, Any] | None) -> None:
        """Remember what the coupling keeps of this side's record as synced."""
        if record:
            c.crm_modified = record.get("modifiedon")

    def _page(self, ids: list[str]) -> Page:
        return self.ctx.dataverse.get_page(self.m.crm_entity, filter=any_of(self.key, ids))

    def index_records(self, groups: list[list[FieldMapping]]) -> Any:
        """Every record with every field the mapping syncs and the match fields, for a match index."""
        select = sorted(set(crm_select(self.m)) | {crm_read_name(self.m, f) for g in groups for f in g})
        return self.ctx.dataverse.iter_records(self.m.crm_entity, select=select)

    def create_id(self, source_id: str) -> str:
        return crm_create_id(self.m.name, source_id)

    def accept(self, f: FieldMapping, value: Any) -> tuple[Any, str | None]:
        """The value Dataverse takes (a number below its minimum raised to it, with a note) or refuses."""
        return check_crm(self.m.crm_entity, f.crm, value)  # type: ignore[arg-type]

    def check(self, values: dict[FieldMapping, Any]) -> None:
        for f, value in values.items():
            if f.transform != "person_name":
                check_crm(self.m.crm_entity, f.crm, value)  # type: ignore[arg-type]
            else:
                for name, part in crm_payload(self.m, f, value).items():
                    check_crm(self.m.crm_entity, name, part)

    def payload(self, f: FieldMapping, value: Any) -> dict[str, Any]:
        return crm_payload(self.m, f, value)

    def missing(
        self, values: dict[FieldMapping, Any], constants: list[FieldMapping], on_create: list[FieldMapping]
    ) -> list[str]:
        given = {f.crm: v for f, v in values.items()}
        given |= {f.crm: f.constant for f in constants}
        for f, v in values.items():
            if f.transform == "person_name":
                given |= crm_payload(self.m, f, v)
        return missing_required(self.m.crm_entity, given)

    def update_many(self, rows: list[tuple[Coupling, dict[str, Any], dict[str, Any]]]) -> dict[int, Any]:
        bodies = [{**body, self.key: c.crm_id} for c, body, _ in rows]
        results = self.ctx.dataverse.update_multiple(self.m.crm_entity, self.entity.logical_name, bodies)
        return {r.index: r.error for r in results if not r.ok}

    def create_many(self, rows: list[NewRecord]) -> list[Created]:
        """Upsert under deterministic ids: a create that an earlier attempt made is written again."""
        bodies = [{**row.body, self.key: self.create_id(row.source_id)} for row in rows]
        results = self.ctx.dataverse.upsert_multiple(self.m.crm_entity, self.entity.logical_name, bodies)
        errors = {r.index: r.error for r in results if not r.ok}
        return [
            Created(body[self.key], ok=i not in errors, error=errors.get(i)) for i, body in enumerate(bodies)
        ]


def endpoints(ctx, mapping: Mapping, sync_pass: str) -> tuple[Endpoint, Endpoint]:
    """(source, destination) of a pass."""
    bc, crm = BcEndpoint(ctx, mapping), DataverseEndpoint(ctx, mapping)
    return (bc, crm) if sync_pass == Pass.TO_CRM else (crm, bc)
