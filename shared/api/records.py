"""Record-level actions over HTTP (seed "Couple and Synchronize Records Manually"): the requests
checked and the answers shaped; what the actions do is ``shared/sync/actions.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from shared.api.errors import ApiError
from shared.api.service import _Body, mapping_or_404, parse_model
from shared.connectors.odata import canonical_guid, eq
from shared.mappings import FieldMapping, Mapping
from shared.mappings.entities import CRM_ENTITIES, bc_fields
from shared.model.status import Pass
from shared.store.errors import parse_error_id
from shared.sync import actions
from shared.sync.actions import CoupleRefused, RecordResult, Refusal
from shared.sync.record_runs import Side
from shared.sync.records import Outcome

if TYPE_CHECKING:
    from shared.sync.context import SyncContext

MAX_IDS = 1000
# The passes as the request schema spells them (a unit test keeps them equal to ``Pass``); a Literal
# rather than ``Pass`` so that a refused value is named as text in the 400.
Direction = Literal["to_crm", "from_crm"]
RECOMMENDED = "recommended"
REFUSAL_STATUS = {Refusal.ALREADY_COUPLED: 409, Refusal.NOT_FOUND: 404, Refusal.OUTSIDE_FILTER: 400}


class CoupleBody(_Body):
    bc_id: str
    crm_id: str
    sync: Direction | None = None


class IdsBody(_Body):
    bc_ids: list[str] = Field(default_factory=list, max_length=MAX_IDS)
    crm_ids: list[str] = Field(default_factory=list, max_length=MAX_IDS)


class SyncBody(IdsBody):
    direction: Literal[Direction, "recommended"] = RECOMMENDED


class MatchField(_Body):
    bc: str
    crm: str
    priority: int = Field(default=1, ge=1, le=9)
    case_sensitive: bool = False


class MatchBody(_Body):
    fields: list[MatchField] | None = Field(default=None, max_length=20)
    dry_run: bool = False
    create_unmatched: bool = False


class RetryBody(_Body):
    ids: list[str] = Field(min_length=1, max_length=MAX_IDS)


def valid_id(value: Any, field: str) -> str:
    """The id lower-cased, or 400 InvalidId naming ``field``."""
    found = canonical_guid(value)
    if found is None:
        raise ApiError(400, "InvalidId", f"{field} must be a GUID, got {str(value)[:60]!r}", field)
    return found


def _ids(body: IdsBody) -> tuple[list[str], list[str]]:
    bc = [valid_id(v, f"bc_ids[{i}]") for i, v in enumerate(body.bc_ids)]
    crm = [valid_id(v, f"crm_ids[{i}]") for i, v in enumerate(body.crm_ids)]
    if not bc and not crm:
        raise ApiError(400, "MissingIds", "give bc_ids or crm_ids", "bc_ids")
    return bc, crm


def _allowed(m: Mapping, direction: str) -> Pass:
    """``direction`` as a pass the mapping syncs, or 400 DirectionNotAllowed."""
    if not m.allows(Pass(direction)):
        message = f"{m.name} is {m.direction}: records cannot sync {direction}"
        raise ApiError(400, "DirectionNotAllowed", message, "direction")
    return Pass(direction)


def _line(r: RecordResult) -> dict[str, Any]:
    return {k: v for k, v in vars(r).items() if v is not None}


def _lines(results: list[RecordResult]) -> list[dict[str, Any]]:
    return [_line(r) for r in results]


def _repaired(o: Outcome) -> dict[str, Any]:
    return {"id": o.source_id, "result": o.result, "message": o.message}


# --- couplings -------------------------------------------------------------------------------------
def list_couplings(ctx: SyncContext, name: str, params: dict[str, str]) -> dict[str, Any]:
    m = mapping_or_404(ctx, name)
    if params.get("bc_id") or params.get("crm_id"):
        key = Side.BC.id_key if params.get(Side.BC.id_key) else Side.CRM.id_key
        c = ctx.couplings.get(m.name, **{key: valid_id(params[key], key)})
        return {"value": [c.api()] if c else [], "continuation": None}
    skipped = params.get("skipped")
    if skipped not in (None, "", "true", "false"):
        raise ApiError(400, "InvalidQuery", "skipped must be true or false", "skipped")
    where = eq("skipped", skipped == "true") if skipped in ("true", "false") else None
    try:
        items, token = ctx.couplings.list(
            m.name, where=where, continuation=params.get("continuation") or None
        )
    except (ValueError, TypeError):
        raise ApiError(400, "InvalidContinuation", "malformed continuation token", "continuation") from None
    return {"value": [c.api() for c in items], "continuation": token}


def couple(ctx: SyncContext, name: str, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    m = mapping_or_404(ctx, name)
    b = parse_model(CoupleBody, body)
    bc_id, crm_id = valid_id(b.bc_id, "bc_id"), valid_id(b.crm_id, "crm_id")
    sync = _allowed(m, b.sync) if b.sync else None
    try:
        done = actions.couple(ctx, m, bc_id, crm_id, sync, trigger)
    except CoupleRefused as exc:
        raise ApiError(REFUSAL_STATUS[exc.refusal], exc.refusal, exc.message, exc.side.id_key) from None
    return {"coupling": done.coupling.api(), "sync": None if done.synced is None else _lines(done.synced)}


def uncouple(ctx: SyncContext, name: str, body: dict[str, Any]) -> dict[str, Any]:
    m = mapping_or_404(ctx, name)
    return {"removed": actions.uncouple(ctx, m, *_ids(parse_model(IdsBody, body)))}


def restore_skipped(ctx: SyncContext, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Clear the skipped flag and failure count; the next modified sync retries the records first."""
    m = mapping_or_404(ctx, name)
    return {"restored": actions.restore_skipped(ctx, m, *_ids(parse_model(IdsBody, body)))}


def restore_all_skipped(ctx: SyncContext, name: str) -> dict[str, Any]:
    """Restore every skipped coupling of the mapping (BC's "Restore All" on CRM Skipped Records)."""
    return {"restored": actions.restore_all_skipped(ctx, mapping_or_404(ctx, name))}


def list_broken(ctx: SyncContext, name: str, params: dict[str, str]) -> dict[str, Any]:
    """One page of the mapping's couplings checked for a record deleted on either side."""
    m = mapping_or_404(ctx, name)
    try:
        found, token = actions.broken_page(ctx, m, params.get("continuation") or None)
    except ValueError:
        raise ApiError(400, "InvalidContinuation", "malformed continuation token", "continuation") from None
    return {"value": [b.api() for b in found], "continuation": token}


def repair_broken(
    ctx: SyncContext,
    name: str,
    body: dict[str, Any],
    action: Literal["restore", "delete"],
    trigger: str = "api",
) -> dict[str, Any]:
    """Restore the deleted record from the surviving one, or delete the surviving record, per coupling."""
    m = mapping_or_404(ctx, name)
    bc_ids, crm_ids = _ids(parse_model(IdsBody, body))
    done = actions.repair_selected(ctx, m, bc_ids, crm_ids, action, trigger)
    return {"run_id": done.run_id, "value": _lines(done.refused) + [_repaired(o) for o in done.outcomes]}


# --- records ---------------------------------------------------------------------------------------
def create_records(ctx: SyncContext, name: str, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    """Create counterparts for uncoupled records and couple them."""
    m = mapping_or_404(ctx, name)
    bc_ids, crm_ids = _ids(parse_model(IdsBody, body))
    ids = {Side.BC: bc_ids, Side.CRM: crm_ids}
    for side, side_ids in ids.items():
        if side_ids:
            _allowed(m, side.outward)
    report = actions.create_counterparts(ctx, m, ids, trigger)
    return {"run_id": report.run_id, "value": _lines(report.results)}


def sync_records(ctx: SyncContext, name: str, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    """Synchronize selected coupled records now, in the chosen (or recommended) direction."""
    m = mapping_or_404(ctx, name)
    b = parse_model(SyncBody, body)
    bc_ids, crm_ids = _ids(b)
    direction = None if b.direction == RECOMMENDED else _allowed(m, b.direction)
    report = actions.sync_selected(ctx, m, bc_ids, crm_ids, direction, trigger)
    return {"run_id": report.run_id, "value": _lines(report.results)}


# --- match-based coupling --------------------------------------------------------------------------
def _match_groups(m: Mapping, fields: list[MatchField] | None) -> list[list[FieldMapping]]:
    if not fields:
        groups = m.match_groups()
        if not groups:
            raise ApiError(400, "NoMatchFields", f"{m.name} has no match fields: give fields", "fields")
        return groups
    crm_known = CRM_ENTITIES[m.crm_entity].all_fields()
    by_priority: dict[int, list[FieldMapping]] = {}
    for i, f in enumerate(fields):
        if f.bc not in bc_fields(m.bc_entity):
            raise ApiError(400, "UnknownField", f"unknown BC field {f.bc!r}", f"fields[{i}].bc")
        if f.crm not in crm_known:
            raise ApiError(400, "UnknownField", f"unknown CRM field {f.crm!r}", f"fields[{i}].crm")
        base = next(
            (x for x in m.fields if x.bc == f.bc and x.crm == f.crm), FieldMapping(bc=f.bc, crm=f.crm)
        )
        chosen = base.model_copy(update={"match_priority": f.priority, "case_sensitive": f.case_sensitive})
        by_priority.setdefault(f.priority, []).append(chosen)
    return [by_priority[p] for p in sorted(by_priority)]


def match(ctx: SyncContext, name: str, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    """Couple uncoupled source records to their unique match; report ambiguous and unmatched ones."""
    m = mapping_or_404(ctx, name)
    b = parse_model(MatchBody, body)
    groups = _match_groups(m, b.fields)
    report = actions.match(
        ctx, m, groups, dry_run=b.dry_run, create_unmatched=b.create_unmatched, trigger=trigger
    )
    return {
        "run_id": report.run_id,
        "dry_run": b.dry_run,
        "direction": report.direction,
        "counts": report.counts(),
        "value": _lines(report.results),
    }


# --- errors ----------------------------------------------------------------------------------------
def error_filters(ctx: SyncContext, params: dict[str, str]) -> tuple[str | None, str | None]:
    """The ``run_id`` and ``mapping`` of an errors query, checked (400 / 404)."""
    from shared.api.service import check_run_id

    run_id = params.get("run_id") or None
    if run_id:
        check_run_id(run_id)
    mapping = params.get("mapping") or None
    if mapping:
        mapping_or_404(ctx, mapping)
    return run_id, mapping


def list_errors(ctx: SyncContext, params: dict[str, str]) -> dict[str, Any]:
    run_id, mapping = error_filters(ctx, params)
    return {"value": [e.api() for e in ctx.errors.list(run_id, mapping)], "continuation": None}


def retry_errors(ctx: SyncContext, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    b = parse_model(RetryBody, body)
    for i, error_id in enumerate(b.ids):
        try:
            parse_error_id(error_id)
        except (ValueError, UnicodeDecodeError):
            message = f"malformed error id {error_id[:60]!r}"
            raise ApiError(400, "InvalidErrorId", message, f"ids[{i}]") from None
    return {"value": _lines(actions.retry_errors(ctx, b.ids, trigger))}
