"""Record-level actions (seed "Couple and Synchronize Records Manually"): couple, uncouple, create,
synchronize now, match-based coupling, skipped records, error retry."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import Field

from shared.api.errors import ApiError
from shared.api.service import _Body, mapping_or_404, parse_model
from shared.connectors.odata import canonical_guid, eq
from shared.mappings import FieldMapping, Mapping
from shared.mappings.entities import CRM_ENTITIES, bc_fields
from shared.model.status import RunStatus
from shared.odata_filter import evaluate, parse
from shared.store.couplings import Coupling
from shared.store.errors import parse_error_id
from shared.store.runs import Run, new_run_id
from shared.store.tables import iso, now
from shared.sync import actions
from shared.sync.matching import MatchIndex
from shared.sync.records import Outcome, PageSync
from shared.sync.values import raw_value, value_hash

MAX_IDS = 1000
Direction = Literal["to_crm", "from_crm"]


class CoupleBody(_Body):
    bc_id: str
    crm_id: str
    sync: Direction | None = None


class IdsBody(_Body):
    bc_ids: list[str] = Field(default_factory=list, max_length=MAX_IDS)
    crm_ids: list[str] = Field(default_factory=list, max_length=MAX_IDS)


class SyncBody(IdsBody):
    direction: Literal["to_crm", "from_crm", "recommended"] = "recommended"


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


def _records_run(ctx, m: Mapping, trigger: str) -> Run:
    run = Run(new_run_id(), "records", trigger, [m.name], status="Running")
    return ctx.runs.create(run)


def _end_run(ctx, run: Run, outcomes: list[Outcome]) -> None:
    failed = sum(1 for o in outcomes if o.result == "failed")

    def mutate(r: Run):
        if failed and failed == len(outcomes):
            r.status = RunStatus.FAILED
        else:
            r.status = RunStatus.FINISHED_WITH_ERRORS if failed else RunStatus.SUCCEEDED
        r.finished_at = iso(now())
        r.message = ", ".join(f"{k}: {v}" for k, v in sorted(Counter(o.result for o in outcomes).items()))

    ctx.runs.update(run.run_id, mutate)


def _outcome_json(o: Outcome, side: str) -> dict[str, Any]:
    out = {f"{side}_id": o.source_id, "result": o.result}
    if o.destination_id:
        out["crm_id" if side == "bc" else "bc_id"] = o.destination_id
    if o.message:
        out["message"] = o.message
    return out


def _require_direction(m: Mapping, direction: str) -> None:
    if not m.allows(direction):  # type: ignore[arg-type]
        raise ApiError(
            400,
            "DirectionNotAllowed",
            f"{m.name} is {m.direction}: records cannot sync {direction}",
            "direction",
        )


def _page(ctx, m: Mapping, direction: str, run_id: str, **options) -> PageSync:
    options.setdefault("create_uncoupled", False)
    return PageSync(ctx, m, direction, run_id=run_id, **options)


def _save_errors(ctx, page: PageSync) -> None:
    if page.result.errors:
        ctx.errors.add_many(page.result.errors)


def _coupled(ctx, m: Mapping, bc_ids: list[str], crm_ids: list[str]) -> dict[str, Coupling]:
    """Couplings of the given records of either side, by BC id."""
    found = dict(ctx.couplings.by_bc(m.name, bc_ids))
    for c in ctx.couplings.by_crm(m.name, crm_ids).values():
        found[c.bc_id] = c
    return found


# --- couplings -------------------------------------------------------------------------------------
def list_couplings(ctx, name: str, params: dict[str, str]) -> dict[str, Any]:
    m = mapping_or_404(ctx, name)
    if params.get("bc_id") or params.get("crm_id"):
        side = "bc_id" if params.get("bc_id") else "crm_id"
        c = ctx.couplings.get(m.name, **{side: valid_id(params[side], side)})
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


def couple(ctx, name: str, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    m = mapping_or_404(ctx, name)
    b = parse_model(CoupleBody, body)
    bc_id, crm_id = valid_id(b.bc_id, "bc_id"), valid_id(b.crm_id, "crm_id")
    if b.sync:
        _require_direction(m, b.sync)
    if ctx.couplings.get(m.name, bc_id=bc_id):
        raise ApiError(409, "AlreadyCoupled", f"BC record {bc_id} is already coupled in {m.name}", "bc_id")
    if ctx.couplings.get(m.name, crm_id=crm_id):
        raise ApiError(409, "AlreadyCoupled", f"CRM record {crm_id} is already coupled in {m.name}", "crm_id")
    bc_record = ctx.bc.get(m.bc_entity, bc_id)
    if bc_record is None:
        raise ApiError(404, "RecordNotFound", f"no {m.bc_entity} record {bc_id} in Business Central", "bc_id")
    crm_record = ctx.dataverse.get(m.crm_entity, crm_id)
    if crm_record is None:
        raise ApiError(404, "RecordNotFound", f"no {m.crm_entity} record {crm_id} in Dataverse", "crm_id")
    # A coupling outside the table filters would never sync (its records are never read): refuse it.
    for side, record, text in (("bc", bc_record, m.bc_filter), ("crm", crm_record, m.crm_filter)):
        if not evaluate(parse(text), record):
            message = f"{side} record is outside {m.name}'s table filter: {text}"
            raise ApiError(400, "OutsideFilter", message, f"{side}_id")
    coupling = Coupling(
        m.name, bc_id, crm_id, bc_ref=bc_record.get(m.bc_ref_field) if m.bc_ref_field else None
    )
    coupling.last_synced_at = None
    if not ctx.couplings.create(coupling):
        raise ApiError(409, "AlreadyCoupled", "one of the records was coupled concurrently", "bc_id")
    answer: dict[str, Any] = {"coupling": coupling.api(), "sync": None}
    if b.sync:
        run = _records_run(ctx, m, trigger)
        page = _page(ctx, m, b.sync, run.run_id)
        page.run([bc_record if b.sync == "to_crm" else crm_record], force=True)
        _save_errors(ctx, page)
        _end_run(ctx, run, page.result.outcomes)
        side = "bc" if b.sync == "to_crm" else "crm"
        answer["sync"] = [_outcome_json(o, side) for o in page.result.outcomes]
        answer["coupling"] = ctx.couplings.get(m.name, bc_id=bc_id).api()
    return answer


def uncouple(ctx, name: str, body: dict[str, Any]) -> dict[str, Any]:
    m = mapping_or_404(ctx, name)
    found = _coupled(ctx, m, *_ids(parse_model(IdsBody, body)))
    for c in found.values():
        ctx.couplings.delete(c)
    return {"removed": len(found)}


def restore_skipped(ctx, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Clear the skipped flag and failure count; the next modified sync retries the records first."""
    m = mapping_or_404(ctx, name)
    found = _coupled(ctx, m, *_ids(parse_model(IdsBody, body)))
    restored = [c for c in found.values() if c.skipped]
    for c in restored:
        c.skipped, c.failures, c.last_result, c.last_error = False, 0, "failed", None
    if restored:
        ctx.couplings.save_many(restored)
    return {"restored": len(restored)}


def restore_all_skipped(ctx, name: str) -> dict[str, Any]:
    """Restore every skipped coupling of the mapping (BC's "Restore All" on CRM Skipped Records)."""
    m = mapping_or_404(ctx, name)
    restored, token = 0, None
    while True:
        page, token = ctx.couplings.list(m.name, where=eq("skipped", True), page_size=100, continuation=token)
        for c in page:
            c.skipped, c.failures, c.last_result, c.last_error = False, 0, "failed", None
        if page:
            ctx.couplings.save_many(page)
            restored += len(page)
        if not token:
            return {"restored": restored}


def list_broken(ctx, name: str, params: dict[str, str]) -> dict[str, Any]:
    """One page of the mapping's couplings checked for a record deleted on either side."""
    m = mapping_or_404(ctx, name)
    try:
        found, token = actions.broken_page(ctx, m, params.get("continuation") or None)
    except ValueError:
        raise ApiError(400, "InvalidContinuation", "malformed continuation token", "continuation") from None
    return {"value": [b.api() for b in found], "continuation": token}


def repair_broken(ctx, name: str, body: dict[str, Any], action: str, trigger: str = "api") -> dict[str, Any]:
    """Restore the deleted record from the surviving one, or delete the surviving record, per coupling."""
    m = mapping_or_404(ctx, name)
    bc_ids, crm_ids = _ids(parse_model(IdsBody, body))
    found = _coupled(ctx, m, bc_ids, crm_ids)
    broken = {b.coupling.bc_id: b for b in actions.find_broken(ctx, m, list(found.values()))}
    results: list[dict[str, Any]] = [
        {"bc_id": c.bc_id, "crm_id": c.crm_id, "result": "failed", "message": "both records exist"}
        for c in found.values()
        if c.bc_id not in broken
    ]
    known = {c.bc_id for c in found.values()} | {c.crm_id for c in found.values()}
    results += [
        {"id": i, "result": "failed", "message": "record is not coupled"}
        for i in [*bc_ids, *crm_ids]
        if i not in known
    ]
    run = _records_run(ctx, m, trigger)
    outcomes = actions.repair(ctx, m, list(broken.values()), action, run.run_id)  # type: ignore[arg-type]
    _end_run(ctx, run, outcomes)
    results += [{"id": o.source_id, "result": o.result, "message": o.message} for o in outcomes]
    return {"run_id": run.run_id, "value": results}


# --- records ---------------------------------------------------------------------------------------
def create_records(ctx, name: str, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    """Create counterparts for uncoupled records and couple them."""
    m = mapping_or_404(ctx, name)
    bc_ids, crm_ids = _ids(parse_model(IdsBody, body))
    run = _records_run(ctx, m, trigger)
    results: list[dict[str, Any]] = []
    outcomes: list[Outcome] = []
    for direction, ids, side in (("to_crm", bc_ids, "bc"), ("from_crm", crm_ids, "crm")):
        if not ids:
            continue
        _require_direction(m, direction)
        page = _page(ctx, m, direction, run.run_id, create_uncoupled=True)
        records = page.fetch_source(ids)
        coupled = (ctx.couplings.by_bc if side == "bc" else ctx.couplings.by_crm)(m.name, ids)
        for i in ids:
            if i not in records:
                results.append({f"{side}_id": i, "result": "failed", "message": "record not found"})
            elif i in coupled:
                results.append({f"{side}_id": i, "result": "failed", "message": "record is already coupled"})
        fresh = [records[i] for i in ids if i in records and i not in coupled]
        if fresh:
            page.create(fresh)
        _save_errors(ctx, page)
        outcomes += page.result.outcomes
        results += [_outcome_json(o, side) for o in page.result.outcomes]
    _end_run(ctx, run, outcomes)
    return {"run_id": run.run_id, "value": results}


def _changed(page: PageSync, c: Coupling, record: dict[str, Any], side: str) -> bool | None:
    """Has this side changed since the last sync? (fields flowing from it that have a stored hash)

    None when the pair has never been synced from this side (no hashes to compare with).
    """
    hashes = c.bc_hashes if side == "bc" else c.crm_hashes
    direction = "to_crm" if side == "bc" else "from_crm"
    fields = [f for f in page.m.fields if f.flows(direction) and f.bc and f.crm and f.key in hashes]
    if not fields:
        return None
    return any(value_hash(raw_value(page.m, f, record, side)) != hashes[f.key] for f in fields)


def sync_records(ctx, name: str, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    """Synchronize selected coupled records now, in the chosen (or recommended) direction."""
    m = mapping_or_404(ctx, name)
    b = parse_model(SyncBody, body)
    bc_ids, crm_ids = _ids(b)
    if b.direction != "recommended":
        _require_direction(m, b.direction)
    couplings = _coupled(ctx, m, bc_ids, crm_ids)
    results = [
        {"bc_id": i, "result": "failed", "message": "record is not coupled"}
        for i in bc_ids
        if i not in couplings
    ]
    coupled_crm = {c.crm_id for c in couplings.values()}
    results += [
        {"crm_id": i, "result": "failed", "message": "record is not coupled"}
        for i in crm_ids
        if i not in coupled_crm
    ]
    run = _records_run(ctx, m, trigger)
    probe = _page(ctx, m, "to_crm", run.run_id)
    bc_records = probe.fetch_source([c.bc_id for c in couplings.values()])
    crm_records = _page(ctx, m, "from_crm", run.run_id).fetch_source([c.crm_id for c in couplings.values()])
    plan: dict[str, list[dict[str, Any]]] = {"to_crm": [], "from_crm": []}
    for c in couplings.values():
        bc_rec, crm_rec = bc_records.get(c.bc_id), crm_records.get(c.crm_id)
        direction = b.direction
        if direction == "recommended":
            if bc_rec is None or crm_rec is None:
                direction = "to_crm" if bc_rec is not None and m.allows("to_crm") else "from_crm"
            else:
                bc_changed = m.allows("to_crm") and _changed(probe, c, bc_rec, "bc")
                crm_changed = m.allows("from_crm") and _changed(probe, c, crm_rec, "crm")
                if bc_changed is None and crm_changed is None:
                    results.append(
                        {
                            "bc_id": c.bc_id,
                            "crm_id": c.crm_id,
                            "result": "conflict",
                            "message": "never synchronized: choose to_crm or from_crm",
                        }
                    )
                    continue
                if bc_changed and crm_changed:
                    results.append(
                        {
                            "bc_id": c.bc_id,
                            "crm_id": c.crm_id,
                            "result": "conflict",
                            "message": "changed on both sides since the last sync: choose to_crm or from_crm",
                        }
                    )
                    continue
                if not bc_changed and not crm_changed:
                    results.append({"bc_id": c.bc_id, "crm_id": c.crm_id, "result": "unchanged"})
                    continue
                direction = "to_crm" if bc_changed else "from_crm"
        source = bc_rec if direction == "to_crm" else crm_rec
        if source is None:
            side = "bc" if direction == "to_crm" else "crm"
            results.append(
                {
                    f"{side}_id": c.bc_id if side == "bc" else c.crm_id,
                    "result": "failed",
                    "message": "source record not found",
                }
            )
            continue
        plan[direction].append(source)
    outcomes: list[Outcome] = []
    for direction, records in plan.items():
        if records:
            page = _page(ctx, m, direction, run.run_id)
            page.run(records, force=True)
            _save_errors(ctx, page)
            outcomes += page.result.outcomes
            side = "bc" if direction == "to_crm" else "crm"
            results += [{**_outcome_json(o, side), "direction": direction} for o in page.result.outcomes]
    _end_run(ctx, run, outcomes)
    return {"run_id": run.run_id, "value": results}


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


def match(ctx, name: str, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    """Couple uncoupled source records to their unique match; report ambiguous and unmatched ones."""
    m = mapping_or_404(ctx, name)
    b = parse_model(MatchBody, body)
    groups = _match_groups(m, b.fields)
    direction = "to_crm" if m.allows("to_crm") else "from_crm"
    run = _records_run(ctx, m, trigger) if not b.dry_run else None
    run_id = run.run_id if run else "dry-run"
    matcher = MatchIndex(ctx, m, direction, groups)
    page = _page(
        ctx,
        m,
        direction,
        run_id,
        create_uncoupled=True,
        dry_run=b.dry_run,
        matcher=matcher,
        create_unmatched=b.create_unmatched,
    )
    page.sync_after_couple = False
    link = None
    while True:
        if direction == "to_crm":
            got = ctx.bc.get_page(m.bc_entity, filter=m.bc_filter or None, next_link=link)
        else:
            got = ctx.dataverse.get_page(m.crm_entity, filter=m.crm_filter or None, next_link=link)
        ids = [page.src_id(r) for r in got.records]
        coupled = (ctx.couplings.by_bc if direction == "to_crm" else ctx.couplings.by_crm)(m.name, ids)
        uncoupled = [r for r in got.records if page.src_id(r) not in coupled]
        if uncoupled:
            page.couple_or_create(uncoupled)
        link = got.next_link
        if not link:
            break
    if run:
        _save_errors(ctx, page)
        _end_run(ctx, run, page.result.outcomes)
    side = "bc" if direction == "to_crm" else "crm"
    outcomes = []
    for o in page.result.outcomes:
        result = o.result
        if result == "failed" and o.message and o.message.startswith("ambiguous"):
            result = "ambiguous"
        elif result == "inserted":
            result = "created"
        outcomes.append({**_outcome_json(o, side), "result": result})
    counts = Counter(o["result"] for o in outcomes)
    return {
        "run_id": run.run_id if run else None,
        "dry_run": b.dry_run,
        "direction": direction,
        "counts": {k: counts.get(k, 0) for k in ("coupled", "no_match", "ambiguous", "created", "failed")},
        "value": outcomes,
    }


# --- errors ----------------------------------------------------------------------------------------
def error_filters(ctx, params: dict[str, str]) -> tuple[str | None, str | None]:
    """The ``run_id`` and ``mapping`` of an errors query, checked (400 / 404)."""
    from shared.api.service import check_run_id

    run_id = params.get("run_id") or None
    if run_id:
        check_run_id(run_id)
    mapping = params.get("mapping") or None
    if mapping:
        mapping_or_404(ctx, mapping)
    return run_id, mapping


def list_errors(ctx, params: dict[str, str]) -> dict[str, Any]:
    run_id, mapping = error_filters(ctx, params)
    return {"value": [e.api() for e in ctx.errors.list(run_id, mapping)], "continuation": None}


def retry_errors(ctx, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    b = parse_model(RetryBody, body)
    groups: dict[tuple[str, str], list[str]] = {}
    results: list[dict[str, Any]] = []
    for i, error_id in enumerate(b.ids):
        try:
            parse_error_id(error_id)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(
                400, "InvalidErrorId", f"malformed error id {error_id[:60]!r}", f"ids[{i}]"
            ) from None
        error = ctx.errors.get(error_id)
        if error is None:
            results.append({"id": error_id, "result": "failed", "message": "no such error"})
            continue
        if error.sync_pass in ("to_crm", "from_crm"):
            groups.setdefault((error.mapping, error.sync_pass), []).append(error.source_id)
        else:
            results.append(
                {"id": error_id, "result": "failed", "message": "job-level error: start the sync again"}
            )
    mappings = ctx.mappings.by_name()
    for (name, direction), ids in groups.items():
        m = mappings.get(name)
        if m is None or not m.allows(direction):  # type: ignore[arg-type]
            results += [{"source_id": i, "result": "failed", "message": "mapping changed"} for i in ids]
            continue
        run = _records_run(ctx, m, trigger)
        page = _page(ctx, m, direction, run.run_id, create_uncoupled=True)
        records = page.fetch_source(ids)
        page.run(list(records.values()), force=True)
        _save_errors(ctx, page)
        _end_run(ctx, run, page.result.outcomes)
        side = "bc" if direction == "to_crm" else "crm"
        results += [{**_outcome_json(o, side), "mapping": name} for o in page.result.outcomes]
        results += [
            {f"{side}_id": i, "result": "failed", "message": "record not found"}
            for i in ids
            if i not in records
        ]
    return {"value": results}
