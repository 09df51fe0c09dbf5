"""Before a modified run: which mappings can have work at all?

One BC ``$batch`` and one Dataverse ``$batch`` ask every mapping's source for a few records changed
since its watermark / delta link. A mapping whose answers hold nothing new — no record, or only records
whose coupling already holds that very modified-on (our own writes, or the record at the watermark's
millisecond) — finishes at once: no queue message, no lease, no per-mapping reads. Any doubt counts as
work: no watermark yet, failures waiting for a retry, a full answer page, or a probe that failed.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from shared.connectors.bc import BatchOp
from shared.connectors.errors import ConnectorError
from shared.connectors.odata import and_, cmp, or_, since
from shared.mappings import Mapping
from shared.mappings.entities import CRM_ENTITIES
from shared.model.status import CouplingResult, Pass
from shared.odata_filter import evaluate, parse
from shared.store.mapping_state import MappingState
from shared.store.tables import parse_iso

if TYPE_CHECKING:
    from shared.sync.context import SyncContext

log = logging.getLogger("sync.probe")
PROBE_TOP = 20  # records asked per mapping and side; a full page always counts as work


def idle_mappings(ctx: SyncContext, mappings: list[Mapping]) -> set[str]:
    """Names of the mappings a modified run can skip (their sources hold nothing new)."""
    candidates: dict[str, tuple[Mapping, MappingState]] = {}
    for m in mappings:
        state = ctx.states.get(m.name)
        passes = m.passes()
        if Pass.TO_CRM in passes and not state.bc_watermark:
            continue
        if Pass.FROM_CRM in passes and not (state.crm_delta_link or state.crm_watermark):
            continue
        if _has_retries(ctx, m):
            continue
        candidates[m.name] = (m, state)
    if not candidates:
        return set()
    try:
        busy = _bc_busy(ctx, [c for c in candidates.values() if Pass.TO_CRM in c[0].passes()])
        busy |= _crm_busy(ctx, [c for c in candidates.values() if Pass.FROM_CRM in c[0].passes()])
    except ConnectorError as exc:
        log.warning("change probe failed (%s): every mapping runs", exc)
        return set()
    except Exception:  # a probe must never stop a run from starting: run everything instead
        log.exception("change probe failed: every mapping runs")
        return set()
    return set(candidates) - busy


def _has_retries(ctx: SyncContext, m: Mapping) -> bool:
    return ctx.couplings.has_retries(m.name, ["bc" if p == Pass.TO_CRM else "crm" for p in m.passes()])


def _bc_busy(ctx: SyncContext, items: list[tuple[Mapping, MappingState]]) -> set[str]:
    if not items:
        return set()
    ops = [
        BatchOp(
            "GET",
            m.bc_entity,
            query={
                "$filter": and_(m.bc_filter, since("lastModifiedDateTime", state.bc_watermark)),
                "$select": "id,lastModifiedDateTime",
                "$top": str(PROBE_TOP),
            },
        )
        for m, state in items
    ]
    rated = [(m, state) for m, state in items if m.reads_all_records]
    ops += [_rates_since(state.bc_watermark) for _, state in rated]
    answers = ctx.bc.batch(ops)
    busy = set()
    for (m, _), answer in zip(rated, answers[len(items) :], strict=True):
        rows = (answer.body or {}).get("value") if answer.error is None else None
        if rows is None or rows:  # a rate was entered, changed or has started since the last sync
            busy.add(m.name)
    for (m, _), answer in zip(items, answers[: len(items)], strict=True):
        rows = (answer.body or {}).get("value") if answer.error is None else None
        if rows is None or len(rows) >= PROBE_TOP:
            busy.add(m.name)
            continue
        synced = ctx.couplings.by_bc(m.name, [r["id"] for r in rows])
        if any(
            not _same(synced.get(r["id"].lower()), "bc_modified", r["lastModifiedDateTime"]) for r in rows
        ):
            busy.add(m.name)
    return busy


def _rates_since(watermark: str) -> BatchOp:
    """Exchange rates entered or changed since ``watermark``, or whose starting date came since."""
    day, today = date.fromisoformat(watermark[:10]), datetime.now(UTC).date()
    started = and_(cmp("startingDate", "gt", day), cmp("startingDate", "le", today))
    flt = or_(since("lastModifiedDateTime", watermark), started)
    return BatchOp("GET", "currencyExchangeRates", query={"$filter": flt, "$select": "id", "$top": "1"})


def _crm_busy(ctx: SyncContext, items: list[tuple[Mapping, MappingState]]) -> set[str]:
    if not items:
        return set()
    requests = []
    for m, state in items:
        entity = CRM_ENTITIES[m.crm_entity]
        if state.crm_delta_link:
            prefer = f"odata.track-changes,odata.maxpagesize={PROBE_TOP}"
            requests.append((state.crm_delta_link, {"Prefer": prefer}))
        else:
            flt = and_(m.crm_filter, since("modifiedon", state.crm_watermark))
            query = {"$select": f"{entity.key},modifiedon", "$top": str(PROBE_TOP), "$filter": flt}
            requests.append((f"{m.crm_entity}?{urlencode(query, quote_via=quote)}", {}))
    busy = set()
    for (m, _), (status, body) in zip(items, ctx.dataverse.batch_get(requests), strict=True):
        rows = body.get("value") if status == 200 and isinstance(body, dict) else None
        if rows is None or len(rows) >= PROBE_TOP or body.get("@odata.nextLink"):
            busy.add(m.name)
            continue
        if any(
            r.get("reason") == "deleted" or "$deletedEntity" in str(r.get("@odata.context", "")) for r in rows
        ):
            busy.add(m.name)
            continue
        key, flt = CRM_ENTITIES[m.crm_entity].key, parse(m.crm_filter)
        rows = [r for r in rows if evaluate(flt, r)]
        synced = ctx.couplings.by_crm(m.name, [r[key] for r in rows])
        if any(not _same(synced.get(r[key].lower()), "crm_modified", r.get("modifiedon")) for r in rows):
            busy.add(m.name)
    return busy


def _same(coupling: Any, attribute: str, modified: str | None) -> bool:
    """The coupling was synced with exactly this version of the record."""
    if coupling is None or coupling.last_result != CouplingResult.SUCCESS or not modified:
        return False
    return parse_iso(getattr(coupling, attribute)) == parse_iso(modified)
