"""Record-level actions (BC's "Couple and Synchronize Records Manually" and "CRM Skipped Records"):
couple, uncouple, create counterparts, synchronize selected records, match-based coupling, skipped
records, broken couplings, error retry. Plain functions over typed arguments, answering typed results;
``shared/api/records.py`` validates the requests and shapes the answers."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from shared.connectors.odata import eq
from shared.errors import SyncServiceError
from shared.mappings import FieldMapping, Mapping
from shared.model.status import Pass, Result
from shared.odata_filter import evaluate, parse
from shared.store.couplings import Coupling
from shared.sync.matching import MatchIndex
from shared.sync.record_runs import Side, record_run
from shared.sync.records import Outcome, PageSync
from shared.sync.values import raw_value, value_hash

if TYPE_CHECKING:
    from shared.sync.context import SyncContext

PAGE = 100  # couplings checked per call (two reads by id per page)
NOT_COUPLED = "record is not coupled"
AMBIGUOUS_MATCH = "AmbiguousMatch"  # the error code PageSync gives a record with several matches


class ActionResult(StrEnum):
    """Per-record answers of record actions beyond what the engine reports (``Result``)."""

    CONFLICT = "conflict"  # sync selected in the recommended direction: the user must choose one
    AMBIGUOUS = "ambiguous"  # match: several candidates
    CREATED = "created"  # match: no candidate, so the counterpart was created


@dataclass(frozen=True)
class RecordResult:
    """One line of a record action's answer (the fields that are set)."""

    result: str  # a Result or an ActionResult
    bc_id: str | None = None
    crm_id: str | None = None
    message: str | None = None
    direction: Pass | None = None
    mapping: str | None = None
    id: str | None = None  # an error id, or a record id of either side
    source_id: str | None = None  # a source record of a mapping that no longer syncs its pass

    @classmethod
    def of(cls, o: Outcome, side: Side, **extra: Any) -> RecordResult:
        """An engine outcome of a record read from ``side``."""
        ids = {side.id_key: o.source_id, side.other.id_key: o.destination_id or None}
        return cls(o.result, message=o.message or None, **ids, **extra)

    @classmethod
    def refused(cls, side: Side, record_id: str, message: str) -> RecordResult:
        return cls(Result.FAILED, message=message, **{side.id_key: record_id})


@dataclass(frozen=True)
class RunReport:
    run_id: str
    results: list[RecordResult]


def _read(ctx: SyncContext, m: Mapping, side: Side, record_id: str) -> dict[str, Any] | None:
    return (
        ctx.bc.get(m.bc_entity, record_id) if side is Side.BC else ctx.dataverse.get(m.crm_entity, record_id)
    )


def _couplings_of(ctx: SyncContext, m: Mapping, side: Side, ids: list[str]) -> dict[str, Coupling]:
    """The couplings of records of ``side``, by their id."""
    return (ctx.couplings.by_bc if side is Side.BC else ctx.couplings.by_crm)(m.name, ids)


def ids_of(c: Coupling) -> dict[Side, str]:
    return {Side.BC: c.bc_id, Side.CRM: c.crm_id}


def coupled(ctx: SyncContext, m: Mapping, bc_ids: list[str], crm_ids: list[str]) -> dict[str, Coupling]:
    """Couplings of the given records of either side, by BC id."""
    found = dict(ctx.couplings.by_bc(m.name, bc_ids))
    for c in ctx.couplings.by_crm(m.name, crm_ids).values():
        found[c.bc_id] = c
    return found


# --- couple, uncouple, skipped -------------------------------------------------------------------
class Refusal(StrEnum):
    ALREADY_COUPLED = "AlreadyCoupled"
    NOT_FOUND = "RecordNotFound"
    OUTSIDE_FILTER = "OutsideFilter"


class CoupleRefused(SyncServiceError):
    """The two records cannot be coupled; ``side`` is the record the refusal is about."""

    def __init__(self, refusal: Refusal, side: Side, message: str):
        super().__init__(message)
        self.refusal, self.side, self.message = refusal, side, message


@dataclass(frozen=True)
class Coupled:
    coupling: Coupling
    synced: list[RecordResult] | None  # the outcome of the sync that followed, if one was asked for


def couple(ctx: SyncContext, m: Mapping, bc_id: str, crm_id: str, sync: Pass | None, trigger: str) -> Coupled:
    """Couple two existing records inside the table filters; then sync them in ``sync``'s direction."""
    ids = {Side.BC: bc_id, Side.CRM: crm_id}
    for side, record_id in ids.items():
        if ctx.couplings.get(m.name, **{side.id_key: record_id}):
            message = f"{side.upper()} record {record_id} is already coupled in {m.name}"
            raise CoupleRefused(Refusal.ALREADY_COUPLED, side, message)
    records: dict[Side, dict[str, Any]] = {}
    for side, record_id in ids.items():
        record = _read(ctx, m, side, record_id)
        if record is None:
            entity = m.bc_entity if side is Side.BC else m.crm_entity
            message = f"no {entity} record {record_id} in {side.service}"
            raise CoupleRefused(Refusal.NOT_FOUND, side, message)
        records[side] = record
    # A coupling outside the table filters would never sync (its records are never read): refuse it.
    for side, text in ((Side.BC, m.bc_filter), (Side.CRM, m.crm_filter)):
        if not evaluate(parse(text), records[side]):
            message = f"{side} record is outside {m.name}'s table filter: {text}"
            raise CoupleRefused(Refusal.OUTSIDE_FILTER, side, message)
    bc_ref = records[Side.BC].get(m.bc_ref_field) if m.bc_ref_field else None
    coupling = Coupling(m.name, bc_id, crm_id, bc_ref=bc_ref)
    coupling.last_synced_at = None
    if not ctx.couplings.create(coupling):
        raise CoupleRefused(Refusal.ALREADY_COUPLED, Side.BC, "one of the records was coupled concurrently")
    if sync is None:
        return Coupled(coupling, None)
    source = Side.source_of(sync)
    with record_run(ctx, m, trigger) as run:
        page = run.page(m, sync)
        page.run([records[source]], force=True)
        synced = [RecordResult.of(o, source) for o in run.record(page)]
    return Coupled(ctx.couplings.get(m.name, bc_id=bc_id) or coupling, synced)


def uncouple(ctx: SyncContext, m: Mapping, bc_ids: list[str], crm_ids: list[str]) -> int:
    """Remove the couplings of the given records (the records stay); how many were removed."""
    found = coupled(ctx, m, bc_ids, crm_ids)
    for c in found.values():
        ctx.couplings.delete(c)
    return len(found)


def _restored(c: Coupling) -> Coupling:
    """Out of Skipped Records, with its failures forgotten: the next modified sync retries it first."""
    c.skipped, c.failures, c.last_result, c.last_error = False, 0, Result.FAILED, None
    return c


def restore_skipped(ctx: SyncContext, m: Mapping, bc_ids: list[str], crm_ids: list[str]) -> int:
    """Restore the skipped couplings among the given records; how many were skipped."""
    restored = [_restored(c) for c in coupled(ctx, m, bc_ids, crm_ids).values() if c.skipped]
    if restored:
        ctx.couplings.save_many(restored)
    return len(restored)


def restore_all_skipped(ctx: SyncContext, m: Mapping) -> int:
    """Restore every skipped coupling of the mapping (BC's "Restore All" on CRM Skipped Records)."""
    restored, token = 0, None
    while True:
        page, token = ctx.couplings.list(m.name, where=eq("skipped", True), page_size=100, continuation=token)
        if page:
            ctx.couplings.save_many([_restored(c) for c in page])
            restored += len(page)
        if not token:
            return restored


# --- create counterparts ---------------------------------------------------------------------------
def create_counterparts(ctx: SyncContext, m: Mapping, ids: dict[Side, list[str]], trigger: str) -> RunReport:
    """Create the counterparts of uncoupled records, read from each side in its pass, and couple them."""
    results: list[RecordResult] = []
    with record_run(ctx, m, trigger) as run:
        for side, side_ids in ids.items():
            if not side_ids:
                continue
            page = run.page(m, side.outward, create_uncoupled=True)
            records = page.fetch_source(side_ids)
            taken = _couplings_of(ctx, m, side, side_ids)
            for i in side_ids:
                if i not in records:
                    results.append(RecordResult.refused(side, i, "record not found"))
                elif i in taken:
                    results.append(RecordResult.refused(side, i, "record is already coupled"))
            fresh = [records[i] for i in side_ids if i in records and i not in taken]
            if fresh:
                page.create(fresh)
            results += [RecordResult.of(o, side) for o in run.record(page)]
    return RunReport(run.run_id, results)


# --- synchronize selected records ----------------------------------------------------------------
class Seen(StrEnum):
    """A side's record of a coupled pair, against the pair's last sync."""

    MISSING = "missing"
    NEVER_SYNCED = "never_synced"  # no stored hash of a field flowing from this side
    CHANGED = "changed"
    UNCHANGED = "unchanged"


class Hold(StrEnum):
    """Why the recommended direction syncs a pair nowhere (the message of its answer)."""

    NEVER_SYNCED = "never synchronized: choose to_crm or from_crm"
    BOTH_CHANGED = "changed on both sides since the last sync: choose to_crm or from_crm"
    UNCHANGED = "unchanged"


def recommended_direction(bc: Seen, crm: Seen, allowed: Collection[Pass]) -> Pass | Hold:
    """The pass that brings the side changed since the last sync to the other one.

    A side the mapping does not sync from counts as unchanged. With a record missing the surviving
    side is the source: BC when it survives and the mapping syncs from it, else Dataverse (whose sync
    then finds its record missing, or restores the BC one).
    """
    if Seen.MISSING in (bc, crm):
        return Pass.TO_CRM if bc is not Seen.MISSING and Pass.TO_CRM in allowed else Pass.FROM_CRM

    def changed(seen: Seen, sync_pass: Pass) -> bool | None:
        if sync_pass not in allowed:
            return False
        return None if seen is Seen.NEVER_SYNCED else seen is Seen.CHANGED

    bc_changed, crm_changed = changed(bc, Pass.TO_CRM), changed(crm, Pass.FROM_CRM)
    if bc_changed is None and crm_changed is None:
        return Hold.NEVER_SYNCED
    if bc_changed and crm_changed:
        return Hold.BOTH_CHANGED
    if not bc_changed and not crm_changed:
        return Hold.UNCHANGED
    return Pass.TO_CRM if bc_changed else Pass.FROM_CRM


def seen(m: Mapping, c: Coupling, record: dict[str, Any] | None, side: Side) -> Seen:
    """Has ``side``'s record changed since the pair's last sync (the fields flowing from it that have
    a stored hash)?"""
    if record is None:
        return Seen.MISSING
    hashes = c.bc_hashes if side is Side.BC else c.crm_hashes
    fields = [f for f in m.fields if f.flows(side.outward) and f.bc and f.crm and f.key in hashes]
    if not fields:
        return Seen.NEVER_SYNCED
    if any(value_hash(raw_value(m, f, record, side)) != hashes[f.key] for f in fields):
        return Seen.CHANGED
    return Seen.UNCHANGED


def sync_selected(
    ctx: SyncContext,
    m: Mapping,
    bc_ids: list[str],
    crm_ids: list[str],
    direction: Pass | None,
    trigger: str,
) -> RunReport:
    """Synchronize selected coupled records now, in ``direction`` (None: the recommended one)."""
    couplings = coupled(ctx, m, bc_ids, crm_ids)
    coupled_crm = {c.crm_id for c in couplings.values()}
    results = [
        RecordResult.refused(Side.BC, i, "record is not coupled") for i in bc_ids if i not in couplings
    ]
    results += [
        RecordResult.refused(Side.CRM, i, "record is not coupled") for i in crm_ids if i not in coupled_crm
    ]
    with record_run(ctx, m, trigger) as run:
        bc_records = run.page(m, Pass.TO_CRM).fetch_source([c.bc_id for c in couplings.values()])
        crm_records = run.page(m, Pass.FROM_CRM).fetch_source([c.crm_id for c in couplings.values()])
        plan: dict[Pass, list[dict[str, Any]]] = {Pass.TO_CRM: [], Pass.FROM_CRM: []}
        for c in couplings.values():
            records = {Side.BC: bc_records.get(c.bc_id), Side.CRM: crm_records.get(c.crm_id)}
            chosen = direction or recommended_direction(
                seen(m, c, records[Side.BC], Side.BC), seen(m, c, records[Side.CRM], Side.CRM), m.passes()
            )
            if chosen is Hold.UNCHANGED:
                results.append(RecordResult(Result.UNCHANGED, c.bc_id, c.crm_id))
            elif isinstance(chosen, Hold):
                results.append(RecordResult(ActionResult.CONFLICT, c.bc_id, c.crm_id, chosen.value))
            elif (source := records[Side.source_of(chosen)]) is None:
                side = Side.source_of(chosen)
                results.append(RecordResult.refused(side, ids_of(c)[side], "source record not found"))
            else:
                plan[chosen].append(source)
        for sync_pass, sources in plan.items():
            if sources:
                page = run.page(m, sync_pass)
                page.run(sources, force=True)
                side = Side.source_of(sync_pass)
                results += [RecordResult.of(o, side, direction=sync_pass) for o in run.record(page)]
    return RunReport(run.run_id, results)


# --- match-based coupling --------------------------------------------------------------------------
MATCH_COUNTS = (Result.COUPLED, Result.NO_MATCH, ActionResult.AMBIGUOUS, ActionResult.CREATED, Result.FAILED)


@dataclass(frozen=True)
class MatchReport:
    run_id: str | None  # None: a dry run, which records no run
    direction: Pass
    results: list[RecordResult]

    def counts(self) -> dict[str, int]:
        return {k: sum(1 for r in self.results if r.result == k) for k in MATCH_COUNTS}


def _source_pages(ctx: SyncContext, m: Mapping, side: Side) -> Iterator[list[dict[str, Any]]]:
    """Every record of ``side`` inside the mapping's table filter, page by page."""
    link = None
    while True:
        if side is Side.BC:
            got = ctx.bc.get_page(m.bc_entity, filter=m.bc_filter or None, next_link=link)
        else:
            got = ctx.dataverse.get_page(m.crm_entity, filter=m.crm_filter or None, next_link=link)
        yield got.records
        link = got.next_link
        if not link:
            return


def _match_all(ctx: SyncContext, m: Mapping, page: PageSync, side: Side) -> list[RecordResult]:
    """Couple (or create) every uncoupled source record, page by page, without syncing values."""
    page.sync_after_couple = False
    for records in _source_pages(ctx, m, side):
        taken = _couplings_of(ctx, m, side, [page.src_id(r) for r in records])
        uncoupled = [r for r in records if page.src_id(r) not in taken]
        if uncoupled:
            page.couple_or_create(uncoupled)
    ambiguous = {e.source_id for e in page.result.errors if e.code == AMBIGUOUS_MATCH}
    results = []
    for o in page.result.outcomes:
        result: str = o.result
        if result == Result.FAILED and o.source_id in ambiguous:
            result = ActionResult.AMBIGUOUS
        elif result == Result.INSERTED:
            result = ActionResult.CREATED
        results.append(RecordResult.of(Outcome(o.source_id, result, o.destination_id, o.message), side))
    return results


def match(
    ctx: SyncContext,
    m: Mapping,
    groups: list[list[FieldMapping]],
    *,
    dry_run: bool,
    create_unmatched: bool,
    trigger: str,
) -> MatchReport:
    """Couple uncoupled source records to their unique match by ``groups`` (priority by priority),
    in the mapping's first direction; report ambiguous and unmatched ones."""
    sync_pass = Pass.TO_CRM if m.allows(Pass.TO_CRM) else Pass.FROM_CRM
    side = Side.source_of(sync_pass)
    options = {"create_uncoupled": True, "dry_run": dry_run, "create_unmatched": create_unmatched}
    if dry_run:
        matcher = MatchIndex(ctx, m, sync_pass, groups)
        page = PageSync(ctx, m, sync_pass, run_id="dry-run", matcher=matcher, **options)
        return MatchReport(None, sync_pass, _match_all(ctx, m, page, side))
    with record_run(ctx, m, trigger) as run:
        page = run.page(m, sync_pass, matcher=MatchIndex(ctx, m, sync_pass, groups), **options)
        results = _match_all(ctx, m, page, side)
        run.record(page)
    return MatchReport(run.run_id, sync_pass, results)


# --- error retry -----------------------------------------------------------------------------------
def retry_errors(ctx: SyncContext, error_ids: list[str], trigger: str) -> list[RecordResult]:
    """Sync again the source records of the given errors, one run per mapping and pass."""
    groups: dict[tuple[str, Pass], list[str]] = {}
    results: list[RecordResult] = []
    for error_id in error_ids:
        error = ctx.errors.get(error_id)
        if error is None:
            results.append(RecordResult(Result.FAILED, message="no such error", id=error_id))
        elif error.sync_pass in (Pass.TO_CRM, Pass.FROM_CRM):
            groups.setdefault((error.mapping, Pass(error.sync_pass)), []).append(error.source_id)
        else:
            message = "job-level error: start the sync again"
            results.append(RecordResult(Result.FAILED, message=message, id=error_id))
    mappings = ctx.mappings.by_name()
    for (name, sync_pass), ids in groups.items():
        m = mappings.get(name)
        if m is None or not m.allows(sync_pass):
            results += [RecordResult(Result.FAILED, message="mapping changed", source_id=i) for i in ids]
            continue
        side = Side.source_of(sync_pass)
        with record_run(ctx, m, trigger) as run:
            page = run.page(m, sync_pass, create_uncoupled=True)
            records = page.fetch_source(ids)
            page.run(list(records.values()), force=True)
            results += [RecordResult.of(o, side, mapping=name) for o in run.record(page)]
        results += [RecordResult.refused(side, i, "record not found") for i in ids if i not in records]
    return results


# --- one counterpart (the ribbon) ------------------------------------------------------------------
def create_in_bc(ctx: SyncContext, m: Mapping, crm_record: dict[str, Any], trigger: str) -> Outcome | None:
    """Create and couple the BC counterpart of one Dataverse record; the run fails unless it was
    created by this call."""
    with record_run(ctx, m, trigger) as run:
        page = run.page(m, Pass.FROM_CRM, create_uncoupled=True)
        page.create([crm_record])
        outcomes = run.record(page)
        outcome = outcomes[0] if outcomes else None
        if outcome is None or outcome.result != Result.INSERTED:
            run.fail(outcome.message if outcome else None)
    return outcome


# --- broken couplings (a record deleted on either side) -------------------------------------------
BOTH = "both"


@dataclass
class Broken:
    coupling: Coupling
    missing: Side | Literal["both"]

    def api(self) -> dict[str, Any]:
        return {"bc_id": self.coupling.bc_id, "crm_id": self.coupling.crm_id, "missing": self.missing}


def _reader(ctx: SyncContext, m: Mapping, sync_pass: Pass, run_id: str) -> PageSync:
    return PageSync(ctx, m, sync_pass, run_id=run_id, create_uncoupled=True)


def find_broken(
    ctx: SyncContext, m: Mapping, couplings: list[Coupling], run_id: str = "check"
) -> list[Broken]:
    """The couplings among ``couplings`` whose BC or Dataverse record no longer exists."""
    if not couplings:
        return []
    bc = _reader(ctx, m, Pass.TO_CRM, run_id).fetch_source([c.bc_id for c in couplings])
    crm = _reader(ctx, m, Pass.FROM_CRM, run_id).fetch_source([c.crm_id for c in couplings])
    out = []
    for c in couplings:
        gone = [side for side, found in ((Side.BC, c.bc_id in bc), (Side.CRM, c.crm_id in crm)) if not found]
        if gone:
            out.append(Broken(c, BOTH if len(gone) == 2 else gone[0]))
    return out


def broken_page(ctx: SyncContext, m: Mapping, continuation: str | None) -> tuple[list[Broken], str | None]:
    """One page of the mapping's couplings checked; the broken ones and the next page's token."""
    page, token = ctx.couplings.list(m.name, page_size=PAGE, continuation=continuation)
    return find_broken(ctx, m, page), token


def repair(
    ctx: SyncContext, m: Mapping, broken: list[Broken], action: Literal["restore", "delete"], run_id: str
) -> list[Outcome]:
    """``restore``: re-create the deleted record from the surviving one and couple them again (only
    where the mapping syncs toward the deleted side). ``delete``: delete the surviving record and the
    coupling. A coupling with both records gone is just removed."""
    outcomes: list[Outcome] = []
    for b in broken:
        c = b.coupling
        if b.missing == BOTH:
            ctx.couplings.delete(c)
            outcomes.append(Outcome(c.bc_id, Result.UNCOUPLED, c.crm_id, "both records were deleted"))
            continue
        survivor = Side(b.missing).other
        survivor_id = ids_of(c)[survivor]
        if action == "restore":
            if not m.allows(survivor.outward):
                message = f"{m.name} does not sync toward {survivor.other.service}"
                outcomes.append(Outcome(survivor_id, Result.FAILED, None, message))
                continue
            ctx.couplings.delete(c)
            page = _reader(ctx, m, survivor.outward, run_id)
            record = page.fetch_source([survivor_id]).get(survivor_id)
            if record is None:
                outcomes.append(Outcome(survivor_id, Result.FAILED, None, "the surviving record is gone too"))
                continue
            page.create([record])
            if page.result.errors:
                ctx.errors.add_many(page.result.errors)
            outcomes += page.result.outcomes
        else:
            if survivor is Side.BC:
                ctx.bc.delete(m.bc_entity, survivor_id)
            else:
                ctx.dataverse.delete(m.crm_entity, survivor_id)
            ctx.couplings.delete(c)
            outcomes.append(Outcome(survivor_id, Result.DELETED, None, "deleted with its coupling"))
    return outcomes


@dataclass(frozen=True)
class Repaired:
    run_id: str
    refused: list[RecordResult]  # selected records with no broken coupling
    outcomes: list[Outcome]


def repair_selected(
    ctx: SyncContext,
    m: Mapping,
    bc_ids: list[str],
    crm_ids: list[str],
    action: Literal["restore", "delete"],
    trigger: str,
) -> Repaired:
    """Repair the broken couplings among the given records (see ``repair``), in one run."""
    found = coupled(ctx, m, bc_ids, crm_ids)
    broken = {b.coupling.bc_id: b for b in find_broken(ctx, m, list(found.values()))}
    refused = [
        RecordResult(Result.FAILED, c.bc_id, c.crm_id, "both records exist")
        for c in found.values()
        if c.bc_id not in broken
    ]
    known = {c.bc_id for c in found.values()} | {c.crm_id for c in found.values()}
    refused += [
        RecordResult(Result.FAILED, message=NOT_COUPLED, id=i) for i in [*bc_ids, *crm_ids] if i not in known
    ]
    with record_run(ctx, m, trigger) as run:
        outcomes = repair(ctx, m, list(broken.values()), action, run.run_id)
        run.outcomes += outcomes
    return Repaired(run.run_id, refused, outcomes)
