"""Run and mapping operations behind the HTTP API. Validates input; raises ApiError for bad requests."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.api import limits
from shared.api.errors import ApiError, from_validation
from shared.connectors.errors import BadRequest, ConnectorError
from shared.mappings import FieldMapping, Mapping, MappingError, validate_mappings
from shared.model.status import Recommendation, RunKind
from shared.store.mapping_defs import MappingConflict
from shared.sync import orchestrator, review
from shared.sync.orchestrator import DecisionConflict, RunConflict, StartRequest, UnknownMapping

if TYPE_CHECKING:
    from shared.sync.context import SyncContext

RUN_ID = re.compile(r"^\d{13}-[0-9a-f]{6}$")
MAPPING_NAME = re.compile(r"^[A-Z0-9][A-Z0-9 _-]{0,63}$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FullSyncBody(_Body):
    mappings: list[str] | None = Field(default=None, max_length=100)
    after_full_sync: Literal["ask", "keep", "restore"] = "ask"
    dry_run: bool = False
    recommended: bool = False  # each job does what the review recommends (couple, synchronize, nothing)


class ModifiedSyncBody(_Body):
    mappings: list[str] | None = Field(default=None, max_length=100)


class MappingSyncBody(_Body):
    full: bool = False
    after_full_sync: Literal["ask", "keep", "restore"] = "ask"
    dry_run: bool = False
    recommended: bool = False


class DecisionBody(_Body):
    keep_sync_all_records: bool


class MappingPatch(_Body):
    direction: Literal["Bidirectional", "ToIntegrationTable", "FromIntegrationTable"] | None = None
    sync_only_coupled: bool | None = None
    conflict_detection: Literal["Field", "Record"] | None = None
    sync_after_coupling: bool | None = None
    create_new_if_no_match: bool | None = None
    bc_filter: str | None = Field(default=None, max_length=2000)
    crm_filter: str | None = Field(default=None, max_length=2000)
    depends_on: list[str] | None = None
    update_conflict: Literal["None", "SendUpdateToIntegration", "GetUpdateFromIntegration"] | None = None
    deletion_conflict: Literal["None", "RemoveCoupling", "RestoreRecords"] | None = None
    fields: list[dict[str, Any]] | None = Field(default=None, max_length=200)


def parse_model(model: type[BaseModel], data: dict[str, Any]):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc) from None


def check_run_id(run_id: str) -> str:
    if not RUN_ID.match(run_id or ""):
        raise ApiError(400, "InvalidRunId", f"malformed run id {run_id[:80]!r}", "run_id")
    return run_id


def mapping_or_404(ctx: SyncContext, name: str) -> Mapping:
    if not MAPPING_NAME.match(name or ""):
        raise ApiError(400, "InvalidMappingName", f"malformed mapping name {name[:80]!r}", "name")
    mapping = ctx.mappings.by_name().get(name)
    if mapping is None:
        raise ApiError(404, "UnknownMapping", f"no mapping named {name!r}", "name")
    return mapping


def _start(ctx: SyncContext, request: StartRequest) -> dict[str, Any]:
    limits.check(ctx, limits.DRY_RUNS if request.dry_run else limits.RUN_STARTS)
    try:
        run = orchestrator.start_run(ctx, request)
    except UnknownMapping as exc:
        raise ApiError(400, "UnknownMapping", str(exc), "mappings") from None
    except RunConflict as exc:
        raise ApiError(409, "RunInProgress", str(exc), "mappings") from None
    return {"run_id": run.run_id, "status_url": f"/api/runs/{run.run_id}", "status": run.status}


def _recommendations(ctx: SyncContext, names: list[str] | None, wanted: bool) -> dict[str, Recommendation]:
    if not wanted:
        return {}
    chosen = [m for m in ctx.mappings.all() if names is None or m.name in names]
    return {m.name: review.recommend(ctx, m)[0] for m in chosen}


def start_full(ctx: SyncContext, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    b = parse_model(FullSyncBody, body)
    recs = _recommendations(ctx, b.mappings, b.recommended)
    return _start(
        ctx, StartRequest("full", trigger, b.mappings, b.after_full_sync, b.dry_run, recommendations=recs)
    )


def start_modified(ctx: SyncContext, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    b = parse_model(ModifiedSyncBody, body)
    return _start(ctx, StartRequest("modified", trigger, b.mappings))


def start_mapping(ctx: SyncContext, name: str, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    mapping_or_404(ctx, name)
    b = parse_model(MappingSyncBody, body)
    recs = _recommendations(ctx, [name], b.recommended)
    request = StartRequest(
        "mapping", trigger, [name], b.after_full_sync, b.dry_run, full=b.full, recommendations=recs
    )
    return _start(ctx, request)


class BackgroundJobBody(_Body):
    dry_run: bool = False


def start_coupling(ctx: SyncContext, name: str, body: dict[str, Any], trigger: str = "api") -> dict[str, Any]:
    """Match-based coupling of the mapping's uncoupled records as a background run (kind coupling), with
    the mapping's options: sync after coupling, create new if unable to find a match."""
    mapping_or_404(ctx, name)
    b = parse_model(BackgroundJobBody, body)
    return _start(ctx, StartRequest(RunKind.COUPLING, trigger, [name], "restore", b.dry_run))


def start_uncoupling(
    ctx: SyncContext, name: str, body: dict[str, Any], trigger: str = "api"
) -> dict[str, Any]:
    """Remove every coupling of the mapping as a background run (kind uncoupling); the records stay."""
    mapping_or_404(ctx, name)
    b = parse_model(BackgroundJobBody, body)
    return _start(ctx, StartRequest(RunKind.UNCOUPLING, trigger, [name], "restore", b.dry_run))


def full_sync_review(ctx: SyncContext) -> dict[str, Any]:
    """Per mapping (dependency order) the recommendation and the last full sync's status per direction."""
    return {"value": [line.api() for line in review.review(ctx, ctx.mappings.all())]}


def run_detail(ctx: SyncContext, run_id: str) -> dict[str, Any]:
    run = ctx.runs.get(check_run_id(run_id))
    if run is None:
        raise ApiError(404, "UnknownRun", f"no run {run_id}", "run_id")
    order = {name: i for i, name in enumerate(run.mappings)}
    jobs = sorted(ctx.jobs.for_run(run_id), key=lambda j: order.get(j.mapping, 99))
    out = run.api()
    out["jobs"] = [j.api() for j in jobs]
    processed = sum(j.processed for j in jobs)
    estimate = sum(j.total_estimate or 0 for j in jobs)
    out["processed"] = processed
    out["total_estimate"] = estimate
    out["errors"] = sum(j.errors for j in jobs)
    return out


def list_runs(ctx: SyncContext, limit: str | None, continuation: str | None) -> dict[str, Any]:
    try:
        n = int(limit) if limit else 20
    except ValueError:
        raise ApiError(400, "InvalidLimit", "limit must be an integer", "limit") from None
    if not 1 <= n <= 200:
        raise ApiError(400, "InvalidLimit", "limit must be between 1 and 200", "limit")
    try:
        runs, token = ctx.runs.list(n, continuation)
    except ValueError:
        raise ApiError(400, "InvalidContinuation", "malformed continuation token", "continuation") from None
    return {"value": [r.api() for r in runs], "continuation": token}


def decide(ctx: SyncContext, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
    b = parse_model(DecisionBody, body)
    run = ctx.runs.get(check_run_id(run_id))
    if run is None:
        raise ApiError(404, "UnknownRun", f"no run {run_id}", "run_id")
    if run.status != "AwaitingDecision":
        raise ApiError(409, "NoDecisionPending", f"run {run_id} is {run.status}, not AwaitingDecision")
    try:
        return orchestrator.decide(ctx, run_id, b.keep_sync_all_records).api()
    except DecisionConflict as exc:
        raise ApiError(409, "NoDecisionPending", str(exc)) from None


def cancel(ctx: SyncContext, run_id: str) -> dict[str, Any]:
    run = ctx.runs.get(check_run_id(run_id))
    if run is None:
        raise ApiError(404, "UnknownRun", f"no run {run_id}", "run_id")
    return orchestrator.cancel(ctx, run_id).api()


def mapping_json(ctx: SyncContext, mapping: Mapping) -> dict[str, Any]:
    out = mapping.model_dump()
    state = ctx.states.get(mapping.name)
    out["state"] = {
        "bc_watermark": state.bc_watermark,
        "crm_change_tracking": bool(state.crm_delta_link),
        "crm_watermark": state.crm_watermark,
        "full_sync_running": state.full_sync_running,
        "held_by_run": state.lease_run if state.lease_active() else None,
    }
    return out


def list_mappings(ctx: SyncContext) -> dict[str, Any]:
    return {"value": [mapping_json(ctx, m) for m in ctx.mappings.all()], "continuation": None}


def get_mapping(ctx: SyncContext, name: str) -> dict[str, Any]:
    return mapping_json(ctx, mapping_or_404(ctx, name))


def patch_mapping(ctx: SyncContext, name: str, body: dict[str, Any]) -> dict[str, Any]:
    current = mapping_or_404(ctx, name)
    patch = parse_model(MappingPatch, body)
    changes = patch.model_dump(exclude_none=True)
    if not changes:
        raise ApiError(400, "EmptyPatch", "nothing to change: give at least one mapping property")
    if "fields" in changes:
        try:
            changes["fields"] = [FieldMapping.model_validate(f) for f in changes["fields"]]
        except ValidationError as exc:
            err = from_validation(exc)
            raise ApiError(400, err.code, f"fields: {err.message}", "fields") from None
    try:
        updated = Mapping.model_validate({**current.model_dump(), **changes})
        validate_mappings([updated if m.name == name else m for m in ctx.mappings.all()])
        probe_filters(ctx, current, updated)
        updated = ctx.mappings.replace(updated, base=current)
    except ValidationError as exc:
        raise from_validation(exc) from None
    except MappingError as exc:
        raise ApiError(400, "InvalidMapping", exc.message, exc.field) from None
    except MappingConflict as exc:
        raise ApiError(409, "MappingChanged", str(exc), ", ".join(exc.properties) or None) from None
    return mapping_json(ctx, updated)


def probe_filters(ctx: SyncContext, before: Mapping, after: Mapping) -> None:
    """Ask the service whether it takes a changed filter (one record read): 400 naming it if not.

    Our parser accepts what the OData grammar allows; the service may still refuse a filter (a type
    mismatch, a function the entity does not support), and a stored filter it refuses would fail
    every later sync.
    """

    def bc(f: str):
        return ctx.bc.get_page(after.bc_entity, filter=f, page_size=1)

    def crm(f: str):
        return ctx.dataverse.get_page(after.crm_entity, filter=f, page_size=1)

    for field, old, new, read in (
        ("bc_filter", before.bc_filter, after.bc_filter, bc),
        ("crm_filter", before.crm_filter, after.crm_filter, crm),
    ):
        if not new.strip() or new == old:
            continue
        try:
            read(new)
        except BadRequest as exc:
            service = "Business Central" if field == "bc_filter" else "Dataverse"
            raise ApiError(
                400, "FilterRefused", f"{field} {new!r} was refused by {service}: {exc.message}", field
            ) from None
        except ConnectorError as exc:
            if exc.code != "NotConfigured":  # no API root for the entity yet: nothing to ask
                raise


def reset_mappings(ctx: SyncContext) -> dict[str, Any]:
    active = ctx.runs.active()
    if active:
        raise ApiError(409, "RunInProgress", f"run {active[0].run_id} is running; reset after it ends")
    return {"value": [m.model_dump() for m in ctx.mappings.reset()], "continuation": None}


def schedule(ctx: SyncContext) -> dict[str, Any]:
    """The NCRONTAB schedule of the modified sync and when it fires next (UTC)."""
    from datetime import UTC, datetime

    from croniter import croniter

    expression = ctx.settings.sync_schedule
    fields = expression.split()
    if len(fields) != 6:
        raise ApiError(500, "BadSchedule", f"SYNC_SCHEDULE must have 6 fields, got {expression!r}")
    # NCRONTAB puts seconds first; croniter takes them last.
    cron = croniter(" ".join(fields[1:] + fields[:1]), datetime.now(UTC))
    return {"schedule": expression, "next_run": cron.get_next(datetime).isoformat().replace("+00:00", "Z")}
