"""Per-record sync of one page of source records (docs/ARCHITECTURE.md §2), in one direction (a "pass").

``PageSync.run(records)`` decides for every source record — unchanged, update, conflict, deletion
conflict, skip, match-and-couple, create-and-couple — then writes the destination in bulk, then the
couplings, and returns counters and errors. Everything it does is idempotent: re-running a page after
a crash at any point neither duplicates records nor loses changes.
"""

from __future__ import annotations

import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shared.connectors.errors import ConnectorError
from shared.errors import RecordRefused
from shared.mappings import FieldMapping, Mapping
from shared.model.status import CouplingResult, Pass, Result
from shared.store.couplings import Coupling
from shared.store.errors import SyncError
from shared.store.planned import PlannedPair
from shared.store.tables import iso, now
from shared.sync.checks import ValueRefused
from shared.sync.decide import FieldView, Verdict, decide
from shared.sync.derived import DerivationFailed, decimal_places
from shared.sync.endpoint import ID_CHUNK as ID_CHUNK
from shared.sync.endpoint import NewRecord, endpoints
from shared.sync.endpoint import bc_create_id as bc_create_id
from shared.sync.endpoint import crm_create_id as crm_create_id
from shared.sync.lookups import translate
from shared.sync.values import (
    LookupFailed,
    equal,
    normalize,
    value_hash,
)


def refusal(exc: Exception) -> tuple[str, str]:
    """(message, code) of a per-record refusal."""
    if isinstance(exc, LookupFailed):
        return f"lookup failed: {exc.message}", "LookupFailed"
    if isinstance(exc, ValueRefused):
        return exc.message, "ValueRefused"
    return str(getattr(exc, "message", exc)), "NotComputable"


@dataclass
class Outcome:
    """What happened to one source record."""

    source_id: str
    result: str  # inserted | modified | unchanged | skipped | failed | coupled | uncoupled
    destination_id: str | None = None
    message: str | None = None


@dataclass
class PageResult:
    counts: Counter = field(default_factory=Counter)
    errors: list[SyncError] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    notes: Counter = field(default_factory=Counter)  # e.g. "price below 0" -> records sent as 0
    planned: list[PlannedPair] = field(default_factory=list)  # dry run: the couplings it would make

    def add(self, other: PageResult) -> None:
        """Take in the result of a page synced on this page's behalf (a record restored in the other pass)."""
        self.counts.update(other.counts)
        self.errors += other.errors
        self.outcomes += other.outcomes
        self.notes.update(other.notes)
        self.planned += other.planned


class PageSync:
    """Syncs one page of source records of one mapping in one pass."""

    def __init__(
        self,
        ctx,
        mapping: Mapping,
        sync_pass: str,
        *,
        run_id: str,
        create_uncoupled: bool,
        dry_run: bool = False,
        matcher=None,
        create_unmatched: bool = True,
    ):
        self.ctx = ctx
        self.m = mapping
        self.p = sync_pass
        self.run_id = run_id
        self.create_uncoupled = create_uncoupled
        self.dry_run = dry_run
        self.matcher = matcher  # match criteria other than the mapping's (the match action)
        self.create_unmatched = create_unmatched
        self.sync_after_couple = True  # the match action couples without writing values
        self.sync_coupled = True  # a coupling job leaves coupled records as they are
        self.source, self.destination = endpoints(ctx, mapping, sync_pass)
        moving = [f for f in mapping.fields if f.flows(sync_pass) and not f.is_constant and f.bc and f.crm]
        self.flow = [f for f in moving if f.transform != "new_code"]
        self.on_create = [f for f in moving if f.transform == "new_code"]  # sent once, when created
        self.constants = [f for f in mapping.fields if f.flows(sync_pass) and f.is_constant]
        self.result = PageResult()
        # A dry run also resolves lookups through what the same dry run planned for the related mappings.
        self.lookups = ctx.lookups.with_planned(ctx.planned, run_id) if dry_run else ctx.lookups
        self._noted: set[tuple[str, str]] = set()
        self._fresh: dict[str, Outcome] = {}  # source id -> the "coupled" outcome of a pair coupled now

    # --- helpers -----------------------------------------------------------------------------
    def src_id(self, record: dict[str, Any]) -> str:
        return self.source.record_id(record)

    def dst_id(self, record: dict[str, Any]) -> str:
        return self.destination.record_id(record)

    def src_value(self, f: FieldMapping, record: dict[str, Any]) -> Any:
        """The source value the stored hashes are of; for a rate, the rate itself (it changes while the
        currency record does not)."""
        if f.transform == "exchange_rate":
            try:
                return self.ctx.derived.exchange_rate(self.source.value(f, record))
            except DerivationFailed:
                return None
        return self.source.value(f, record)

    def translated(self, f: FieldMapping, record: dict[str, Any]) -> Any:
        """The value ``f`` gives the destination: computed, translated through lookups, and made acceptable
        to the destination where BC's own integration does so (a negative price becomes 0, a country
        name its code). Raises one of RecordRefused."""
        t = f.transform
        if t == "exchange_rate":
            return self.ctx.derived.exchange_rate(self.source.value(f, record))
        value = self.src_value(f, record)
        if t == "or_code":
            value = value if normalize(value) != "" else record.get("code")
        elif t == "decimal_places":
            value = decimal_places(value)
        value = translate(self.m, f, value, self.p, self.lookups)
        if f.lookup and f.keep_if_empty and normalize(value) == "":
            raise _KeepField
        if t == "base_uom" and value:
            base = self.ctx.derived.base_uom(value)
            if base is None and not f.clear_on_fail:
                raise LookupFailed(f"unit group {value} has no base unit")
            value = base
        elif t == "product_state":
            value = 1 if value else 0
        value, note = self.destination.accept(f, value)
        if note and (key := (self.src_id(record), note)) not in self._noted:
            self._noted.add(key)
            self.result.notes[note] += 1
        return value

    def checked(self, values: dict[FieldMapping, Any]) -> None:
        """Raise ValueRefused if the destination would refuse one of these values (lengths, options)."""
        self.destination.check(values)

    def payload(self, values: dict[FieldMapping, Any], with_constants: bool) -> dict[str, Any]:
        body: dict[str, Any] = {}
        fields = list(values.items())
        if with_constants:
            fields += [(f, f.constant) for f in self.constants]
        for f, value in fields:
            body.update(self.destination.payload(f, value))
        return body

    def fail(
        self, source_id: str, dest_id: str | None, message: str, code: str | None = None, exc=None
    ) -> None:
        if source_id in self._fresh:
            self._unfresh(source_id)
        stack = "".join(traceback.format_exception(exc)) if exc is not None else None
        self.result.errors.append(
            SyncError(self.run_id, self.m.name, self.p, source_id, dest_id, message, stack=stack, code=code)
        )
        self.result.outcomes.append(Outcome(source_id, Result.FAILED, dest_id, message))
        self.result.counts[Result.FAILED] += 1

    def done(
        self, source_id: str, result: str, dest_id: str | None = None, message: str | None = None
    ) -> None:
        if source_id in self._fresh:  # just coupled: its sync after coupling adds no second outcome
            if result in (Result.MODIFIED, Result.UNCHANGED):
                return
            self._unfresh(source_id)
        self.result.outcomes.append(Outcome(source_id, result, dest_id, message))
        self.result.counts[result] += 1

    def _unfresh(self, source_id: str) -> None:
        """A just-coupled record whose sync then failed: its one outcome is the failure."""
        coupled = self._fresh.pop(source_id)
        self.result.outcomes.remove(coupled)
        self.result.counts[Result.COUPLED] -= 1

    def _may_write(self, f: FieldMapping, record: dict[str, Any]) -> bool:
        """False for a keep-if-empty lookup whose source value resolves to nothing: it is never written,
        so its change alone must not cost a read of the destination (e.g. a CRM owner with no salesperson)."""
        if not (f.lookup and f.keep_if_empty):
            return True
        try:
            self.translated(f, record)
        except _KeepField:
            return False
        except RecordRefused:
            return True
        return True

    def values_for(self, record: dict[str, Any]) -> dict[FieldMapping, Any]:
        """Translated values of every flowing field; fields marked keep-if-empty may be left out."""
        out = {}
        for f in self.flow:
            try:
                out[f] = self.translated(f, record)
            except _KeepField:
                continue
        return out

    # --- destination reads ---------------------------------------------------------------------
    def fetch_destination(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return self.destination.read(ids)

    # --- the page ------------------------------------------------------------------------------
    def run(self, records: list[dict[str, Any]], force: bool = False) -> PageResult:
        """Sync ``records`` (already filtered). ``force`` re-checks coupled records even if unchanged."""
        by_id = {self.src_id(r): r for r in records}
        couplings = self.source.couplings(list(by_id))
        changed: list[tuple[dict[str, Any], Coupling, list[FieldMapping]]] = []
        uncoupled: list[dict[str, Any]] = []
        for sid, record in by_id.items():
            c = couplings.get(sid)
            if c is None:
                uncoupled.append(record)
                continue
            did = self.destination.coupling_id(c)
            if c.skipped:
                self.done(sid, Result.SKIPPED, did, "record is in Skipped Records")
                continue
            if not self.sync_coupled:
                self.done(sid, Result.UNCHANGED, did, "already coupled")
                continue
            if (
                c.last_job == self.run_id
                and c.last_result == CouplingResult.FAILED
                and self.p == Pass.FROM_CRM
            ):
                # Already failed (and its error recorded) in this run's to_crm pass: count it once more
                # as skipped so the counters still add up to the records seen, without a second error.
                self.done(sid, Result.SKIPPED, did, "failed in this run's BC→CRM pass")
                continue
            stored = self.source.hashes(c)
            src_changed = [
                f
                for f in self.flow
                if value_hash(self.src_value(f, record)) != stored.get(f.key) and self._may_write(f, record)
            ]
            if not src_changed and not force and c.last_result != CouplingResult.FAILED:
                self.done(sid, Result.UNCHANGED, did)
                continue
            changed.append((record, c, src_changed or self.flow))
        if changed:
            self._sync_coupled(changed)
        if uncoupled:
            if self.create_uncoupled:
                self._uncoupled_with_memory(uncoupled)
            else:
                for record in uncoupled:  # as BC: left out, not counted as skipped
                    self.done(self.src_id(record), Result.LEFT_OUT)
        return self.result

    def _uncoupled_with_memory(self, records: list[dict[str, Any]]) -> None:
        """Match/create uncoupled records, remembering failures (retried first next time; the same error
        twice puts the record in Skipped Records) — a failed create has no coupling to hold that."""
        ids = [self.src_id(r) for r in records]
        known = {} if self.dry_run else self.ctx.couplings.failures(self.m.name, self.source.side, ids)
        todo = []
        for record, sid in zip(records, ids, strict=True):
            if known.get(sid, {}).get("skipped"):
                self.done(sid, Result.SKIPPED, None, "record is in Skipped Records")
            else:
                todo.append(record)
        start = len(self.result.outcomes)
        self.couple_or_create(todo)
        if self.dry_run:
            return
        failed, cleared = {}, []
        for o in self.result.outcomes[start:]:
            if o.result == Result.FAILED:
                before = known.get(o.source_id, {})
                count = before.get("failures", 0) + 1
                repeated = before.get("message") == o.message and count >= 2
                failed[o.source_id] = {
                    "message": (o.message or "")[:1000],
                    "failures": count,
                    "skipped": repeated,
                }
            elif o.source_id in known:
                cleared.append(o.source_id)
        if failed:
            self.ctx.couplings.save_failures(self.m.name, self.source.side, failed)
        if cleared:
            self.ctx.couplings.clear_failures(self.m.name, self.source.side, cleared)

    # --- coupled records -----------------------------------------------------------------------
    def _sync_coupled(
        self,
        changed: list[tuple[dict[str, Any], Coupling, list[FieldMapping]]],
        dest: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """``dest``: destination records the caller holds already (just matched); the rest are read."""
        dest = dict(dest or {})
        missing = [
            self.destination.coupling_id(c)
            for _, c, _ in changed
            if self.destination.coupling_id(c) not in dest
        ]
        if missing:
            dest.update(self.fetch_destination(missing))
        updates: list[tuple[dict[str, Any], Coupling, dict[FieldMapping, Any], dict[str, Any]]] = []
        saves: list[Coupling] = []
        for record, c, src_changed in changed:
            sid, did = self.src_id(record), self.destination.coupling_id(c)
            target = dest.get(did)
            if target is None:
                self._deletion_conflict(record, c)
                continue
            try:
                values = self.values_for(record)
            except RecordRefused as exc:
                self._record_failure(c, sid, did, *refusal(exc))
                continue
            decision = decide(
                self._views(record, c, target, values, src_changed),
                self.destination.hashes(c),
                policy=self.m.update_conflict,
                whole=self.m.conflict_detection == "Record" and self.m.direction == "Bidirectional",
                dst_side=self.destination.side,
            )
            if decision.verdict == Verdict.CONFLICT:
                what = (
                    "the record" if self.m.conflict_detection == "Record" else self._names(decision.conflicts)
                )
                message = f"update conflict: {what} changed on both sides since the last sync"
                self._record_failure(c, sid, did, message, "Conflict")
                continue
            writes = {f: values[f] for f in self.flow if f.key in decision.writes}
            try:
                self.checked(writes)
            except ValueRefused as exc:
                self._record_failure(c, sid, did, *refusal(exc))
                continue
            self._set_hashes(c, decision.src_hashes, decision.dst_hashes)
            self._mark_success(c, record, target)
            if writes:
                updates.append((record, c, writes, target))
            else:
                saves.append(c)
                self.done(sid, Result.UNCHANGED, did)
        if updates:
            self._write_updates(updates)
        if saves and not self.dry_run:
            self.ctx.couplings.save_many(saves)

    def _views(self, record, c: Coupling, target, values, src_changed) -> list[FieldView]:
        """The flowing fields of one coupled record as ``decide`` sees them."""
        stored_src, stored_dst = self.source.hashes(c), self.destination.hashes(c)
        moved = set(src_changed)
        views = []
        for f in self.flow:
            dst_value = self.destination.value(f, target)
            views.append(
                FieldView(
                    key=f.key,
                    bidirectional=f.direction == "Bidirectional",
                    src_hash=value_hash(self.src_value(f, record)),
                    stored_src=stored_src.get(f.key),
                    dst_hash=value_hash(dst_value),
                    stored_dst=stored_dst.get(f.key),
                    src_changed=f in moved,
                    writable=f in values,
                    differs=f in values and not equal(values[f], dst_value),
                    write_hash=value_hash(values[f]) if f in values else None,
                )
            )
        return views

    def _names(self, keys: tuple[str, ...]) -> str:
        by_key = {f.key: f for f in self.flow}
        return ", ".join(f"{by_key[k].bc}/{by_key[k].crm}" for k in keys)

    def _set_hashes(self, c: Coupling, new_src: dict[str, str], new_dst: dict[str, Any]) -> None:
        """Merge the source's hashes (fields that do not flow keep theirs); replace the destination's."""
        self.source.hashes(c).update(new_src)
        self.destination.set_hashes(c, new_dst)

    def _mark_success(self, c: Coupling, record: dict[str, Any], target: dict[str, Any] | None) -> None:
        c.last_result, c.failures, c.last_error = CouplingResult.SUCCESS, 0, None
        c.last_job, c.last_synced_at = self.run_id, iso(now())
        self.source.stamp(c, record)
        self.destination.stamp(c, target)

    def _record_failure(
        self, c: Coupling, sid: str, did: str | None, message: str, code: str, exc=None
    ) -> None:
        """Fail a coupled record; the same error twice in a row puts it in Skipped Records."""
        repeated = (
            c.last_result in (CouplingResult.FAILED, CouplingResult.SKIPPED) and c.last_error == message
        )
        c.failures += 1
        c.last_result = CouplingResult.FAILED
        c.last_job = self.run_id
        if repeated and c.failures >= 2:
            c.skipped, c.last_result = True, CouplingResult.SKIPPED
        c.last_error = message
        if not self.dry_run:
            self.ctx.couplings.save_many([c])
        self.fail(sid, did, message, code, exc)

    def _write_updates(self, updates) -> None:
        if self.dry_run:
            for record, c, _, _ in updates:
                self.done(self.src_id(record), Result.MODIFIED, self.destination.coupling_id(c))
            return
        errors = self.destination.update_many([(c, self.payload(w, False), t) for _, c, w, t in updates])
        ok: list[Coupling] = []
        for i, (record, c, _, _) in enumerate(updates):
            sid = self.src_id(record)
            if i in errors:
                self._reload_failed(c)
                self._record_failure(
                    c, sid, self.destination.coupling_id(c), _message(errors[i]), _code(errors[i])
                )
            else:
                ok.append(c)
                self.done(sid, Result.MODIFIED, self.destination.coupling_id(c))
        if ok:
            self.ctx.couplings.save_many(ok)

    def _reload_failed(self, c: Coupling) -> None:
        """A failed write must not advance the stored hashes: reload the coupling as it was."""
        stored = self.ctx.couplings.get(self.m.name, bc_id=c.bc_id)
        if stored is not None:
            c.bc_hashes, c.crm_hashes = stored.bc_hashes, stored.crm_hashes

    # --- deletion conflicts --------------------------------------------------------------------
    def _deletion_conflict(self, record: dict[str, Any], c: Coupling) -> None:
        sid, did = self.src_id(record), self.destination.coupling_id(c)
        policy = self.m.deletion_conflict
        if policy == "None":
            self._record_failure(c, sid, did, "the coupled record was deleted", "CounterpartDeleted")
            return
        if not self.dry_run:
            self.ctx.couplings.delete(c)
        if policy == "RemoveCoupling":
            self.done(sid, Result.UNCOUPLED, did, "coupled record was deleted; coupling removed")
            return
        self.create([record])  # RestoreRecords: recreate the counterpart and couple it

    def handle_source_deleted(self, deleted_ids: list[str]) -> None:
        """Source records deleted (CRM change tracking): apply the deletion-conflict policy to couplings."""
        couplings = self.source.couplings(deleted_ids)
        policy = self.m.deletion_conflict
        for sid, c in couplings.items():
            did = self.destination.coupling_id(c)
            if policy == "RemoveCoupling":
                if not self.dry_run:
                    self.ctx.couplings.delete(c)
                self.done(sid, Result.UNCOUPLED, did, "record was deleted; coupling removed")
            elif policy == "RestoreRecords":
                if not self.dry_run:
                    self.ctx.couplings.delete(c)
                self._restore_from_survivor(did)
            else:
                self.fail(sid, did, "the record was deleted but is still coupled", "SourceDeleted")

    def _restore_from_survivor(self, survivor_id: str) -> None:
        """The surviving side wins: recreate the deleted record from it in the other pass."""
        restore = PageSync(
            self.ctx,
            self.m,
            self.source.toward,
            run_id=self.run_id,
            create_uncoupled=True,
            dry_run=self.dry_run,
        )
        survivor = restore.fetch_source([survivor_id]).get(survivor_id)
        if survivor is not None:
            restore.create([survivor])
        self.result.add(restore.result)

    def fetch_source(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return self.source.read(ids)

    # --- uncoupled records: match, then create ----------------------------------------------------
    def couple_or_create(self, records: list[dict[str, Any]]) -> None:
        """Couple each uncoupled record to its unique match; create the counterparts of the unmatched."""
        to_create = []
        matcher = self.matcher or self.ctx.matcher(self.m, self.p, self.run_id)
        couples: list[tuple[dict[str, Any], dict[str, Any]]] = []
        found: list[tuple[dict[str, Any], list[list[dict[str, Any]] | None] | None]] = []
        for record in records:
            try:
                found.append((record, matcher.candidate_groups(record, self)))
            except RecordRefused as exc:
                self.fail(self.src_id(record), None, *refusal(exc))
        ids = list({self.dst_id(c) for _, groups in found for g in groups or [] for c in g or []})
        coupled = self.destination.couplings(ids)
        # Priority by priority over the whole page (a unique match by number before one by name), as BC's
        # criteria: a priority whose match is ambiguous, or coupled to another record, falls through.
        open_ = [(r, g) for r, g in found if g is not None]
        to_create += [r for r, g in found if g is None]  # no match criteria
        chosen: set[str] = set()  # destination records taken by this page
        ambiguous: dict[str, list[dict[str, Any]]] = {}
        for level in range(len(matcher.groups)):
            still = []
            for record, groups in open_:
                sid = self.src_id(record)
                free = [
                    c
                    for c in groups[level] or []
                    if self.dst_id(c).lower() not in chosen
                    and (
                        (h := coupled.get(self.dst_id(c).lower())) is None
                        or self.source.coupling_id(h) == sid
                    )
                ]
                if len(free) == 1:
                    chosen.add(self.dst_id(free[0]).lower())
                    couples.append((record, free[0]))
                    continue
                if len(free) > 1:
                    ambiguous.setdefault(sid, free)
                still.append((record, groups))
            open_ = still
        for record, _ in open_:
            sid = self.src_id(record)
            if sid in ambiguous:
                ids_text = ", ".join(self.dst_id(c) for c in ambiguous[sid][:5])
                message = f"ambiguous match: {len(ambiguous[sid])} records match ({ids_text})"
                self.fail(sid, None, message, "AmbiguousMatch")
            else:
                to_create.append(record)
        matched = self._stage_matched(couples, matcher, coupled)
        created = self._stage_creates(to_create) if to_create and self.create_unmatched else None
        if not self.create_unmatched:
            for record in to_create:
                self.done(self.src_id(record), Result.NO_MATCH)
        # The page's new couplings, matched and created, are stored by one bulk write: a transaction per
        # partition holds the rows of both, instead of one each.
        new = [c for _, _, c in matched] + (created.couplings if created else [])
        stored = self.ctx.couplings.create_many(new) if new else []
        if matched:
            self._couple_matched(matched, stored[: len(matched)], couples, matcher)
        if created:
            self._couple_created(created, stored[len(matched) :])

    def _stage_matched(self, pairs, matcher, taken: dict[str, Coupling]) -> list[tuple[Any, Any, Coupling]]:
        """The couplings to store for matched ``pairs`` (record, match): (record, match, coupling).
        ``taken``: the couplings the matched destination records had when the page was matched."""
        new: list[tuple[dict[str, Any], dict[str, Any], Coupling]] = []
        for record, target in pairs:
            sid, did = self.src_id(record), self.dst_id(target)
            holder = taken.get(did)
            if holder is not None and self.source.coupling_id(holder) == sid:  # coupled so a moment ago
                self.done(sid, Result.UNCHANGED, did, "coupled concurrently")
                continue
            if did in taken or matcher.claim(did) is False:
                self.fail(sid, did, "match is already coupled to another record", "AlreadyCoupled")
                continue
            bc_id, crm_id = self.source.pair(sid, did)
            new.append((record, target, Coupling(self.m.name, bc_id, crm_id, last_job=self.run_id)))
        if self.dry_run:
            for record, target, c in new:
                self.done(self.src_id(record), Result.COUPLED, self.dst_id(target))
                self._plan(c.bc_id, c.crm_id, self.source.pair(record, target)[0])
            return []
        return new

    def _couple_matched(self, new, stored: list[bool], pairs, matcher) -> None:
        """The outcomes of the matched couplings ``new`` (``stored``: whether each was), then their sync."""
        coupled = []
        for (record, target, c), ok in zip(new, stored, strict=True):
            if ok:
                self.done(self.src_id(record), Result.COUPLED, self.dst_id(target))
                self._fresh[self.src_id(record)] = self.result.outcomes[-1]
                coupled.append((record, c, self.flow))
            else:
                self.fail(
                    self.src_id(record), self.dst_id(target), "record is already coupled", "AlreadyCoupled"
                )
        # Newly coupled pairs are synced right away (source values win for the fields that flow); each
        # keeps its one outcome, "coupled" (see done), or "failed" when that sync fails.
        if coupled and self.sync_after_couple:
            held = {self.dst_id(t): t for _, t in pairs if matcher.whole(self.dst_id(t))}
            self._sync_coupled(coupled, held)
        self._fresh.clear()

    def create(self, records: list[dict[str, Any]]) -> None:
        """Create the counterparts of uncoupled records and couple them (a per-record error when refused)."""
        created = self._stage_creates(records)
        if created:
            self._couple_created(created, self.ctx.couplings.create_many(created.couplings))

    def _stage_creates(self, records: list[dict[str, Any]]) -> _Created | None:
        """Create the counterparts of ``records``; the couplings to store for them (None: none to store)."""
        creatable = []
        for record in records:
            sid = self.src_id(record)
            try:
                values = self.values_for(record)
                self.checked(values)
                missing = self._missing_on_create(values)
            except RecordRefused as exc:
                self.fail(sid, None, *refusal(exc))
                continue
            if missing:
                side = self.destination.label
                self.fail(sid, None, f"{side} requires {', '.join(missing)} to create the record", "Required")
                continue
            creatable.append((record, values))
        if not creatable:
            return None
        if self.dry_run:
            for record, _ in creatable:
                sid = self.src_id(record)
                self.done(sid, Result.INSERTED, None, "would be created")
                # The ids creates use are known now; a BC number is not.
                bc_id, crm_id = self.source.pair(sid, self.destination.create_id(sid))
                self._plan(bc_id, crm_id, self.source.pair(record, None)[0])
            return None
        return self._create_counterparts(creatable)

    def _plan(self, bc_id: str, crm_id: str, bc_record: dict[str, Any] | None) -> None:
        ref = bc_record.get(self.m.bc_ref_field) if bc_record and self.m.bc_ref_field else None
        self.result.planned.append(PlannedPair(bc_id, crm_id, None if ref is None else str(ref)))

    def _missing_on_create(self, values: dict[FieldMapping, Any]) -> list[str]:
        return self.destination.missing(values, self.constants, self.on_create)

    def _new_coupling(
        self, record, values, target: dict[str, Any] | None, bc_id: str, crm_id: str
    ) -> Coupling:
        c = Coupling(self.m.name, bc_id, crm_id)
        new_src = {f.key: value_hash(self.src_value(f, record)) for f in self.flow}
        new_dst = {f.key: value_hash(v) for f, v in values.items()}
        self._set_hashes(c, new_src, new_dst)
        self._mark_success(c, record, target)
        return c

    def _create_counterparts(
        self, creatable: list[tuple[dict[str, Any], dict[FieldMapping, Any]]]
    ) -> _Created | None:
        # A new product is a Draft whatever the body says: its state is set once it exists.
        states = [f for f in self.flow if f.transform == "product_state"]
        rows = [
            NewRecord(
                self.src_id(record),
                self.payload({f: v for f, v in values.items() if f not in states}, True),
                {f: self.src_value(f, record) for f in self.on_create},
            )
            for record, values in creatable
        ]
        results = self.destination.create_many(rows)
        couplings, sources = [], []
        created: list[tuple[Coupling, dict[str, Any] | None, dict[str, Any], dict[FieldMapping, Any]]] = []
        for (record, values), row, r in zip(creatable, rows, results, strict=True):
            if not r.ok:
                self.fail(row.source_id, r.id, _message(r.error), _code(r.error))
                continue
            bc_id, crm_id = self.source.pair(row.source_id, r.id)
            couplings.append(self._new_coupling(record, values, r.record, bc_id, crm_id))
            sources.append(row.source_id)
            created.append((couplings[-1], r.record, record, values))
        if states:
            targets = {self.destination.coupling_id(c): values.get(states[0]) for c, _, _, values in created}
            self._set_states(couplings, states, targets)
        # The write-back sets the hashes the couplings are stored with.
        write_back = self._write_back_bodies([(c, target, record) for c, target, record, _ in created])
        return _Created(couplings, sources, write_back) if couplings else None

    def _couple_created(self, created: _Created, stored: list[bool]) -> None:
        """The outcomes of the couplings of new records (``stored``: whether each was), then the
        write-back of those stored (never for a record coupled elsewhere)."""
        couplings = created.couplings
        lost = [c.bc_id for c, ok in zip(couplings, stored, strict=True) if not ok]
        winners = self.ctx.couplings.by_bc(self.m.name, lost) if lost else {}
        won = set()
        for c, sid, ok in zip(couplings, created.sources, stored, strict=True):
            did = self.destination.coupling_id(c)
            if ok:
                won.add(c.bc_id)
                self.done(sid, Result.INSERTED, did)
            elif (w := winners.get(c.bc_id)) is not None and w.crm_id == c.crm_id:
                # A concurrent action (a record action, another worker) created and coupled the same pair.
                self.done(sid, Result.UNCHANGED, did, "created and coupled concurrently")
            else:
                self.fail(sid, did, "created, but the record was coupled concurrently", "AlreadyCoupled")
        self._write_back([row for row in created.write_back if row[0].bc_id in won])

    def _set_states(
        self, couplings: list[Coupling], states: list[FieldMapping], targets: dict[str, Any]
    ) -> None:
        """Publish new products (Draft -> Active) and retire those whose BC record is blocked, as BC's own
        integration does (CRMSynchHelper.SetCRMProductStateToActive / ToRetired)."""
        for target in (0, 1):  # every new product is published first; a blocked one is then retired
            rows = [c for c in couplings if target == 0 or targets.get(self.destination.coupling_id(c)) == 1]
            if not rows:
                continue
            bodies = [
                {
                    self.destination.key: self.destination.coupling_id(c),
                    **self.destination.payload(states[0], target),
                }
                for c in rows
            ]
            errors = self.destination.update_many(
                [(c, body, {}) for c, body in zip(rows, bodies, strict=True)]
            )
            for i in errors:  # forget the state's hashes: the next sync sets it again
                for f in states:
                    self.source.hashes(rows[i]).pop(f.key, None)
                    self.destination.hashes(rows[i]).pop(f.key, None)

    def _write_back_bodies(self, created) -> list[tuple[Coupling, dict[str, Any], list[FieldMapping]]]:
        """Values a service gives the records it creates (BC: the new customer number into accountnumber)
        go back to the source right away, so one full sync leaves both sides converged. ``created``:
        (coupling, the new record, its source record)."""
        back = self.source.toward  # the pass from the destination to the source
        owned = [
            f
            for f in self.m.fields
            if f.bc and f.crm and not f.is_constant and f.flows(back) and not f.flows(self.p)
        ]
        out: list[tuple[Coupling, dict[str, Any], list[FieldMapping]]] = []
        if not owned or not self.destination.assigns_values:
            return out
        # The values the new records were given, as the other pass would send them (lookups, computed values).
        reverse = PageSync(self.ctx, self.m, back, run_id=self.run_id, create_uncoupled=False)
        for c, target, record in created:
            body: dict[str, Any] = {}
            written: list[FieldMapping] = []
            for f in owned:
                try:
                    value = reverse.translated(f, target)
                except (_KeepField, RecordRefused):
                    continue
                current = self.source.value(f, record)
                send = normalize(value) != "" and not equal(value, current)
                self.destination.hashes(c)[f.key] = value_hash(reverse.src_value(f, target))
                self.source.hashes(c)[f.key] = value_hash(value if send else current)
                if send:
                    body.update(self.source.payload(f, value))
                    written.append(f)
            if body:
                out.append((c, body, written))
        return out

    def _write_back(self, pending: list[tuple[Coupling, dict[str, Any], list[FieldMapping]]]) -> None:
        """Send the write-back of couplings this slice won (never for a record coupled elsewhere)."""
        if not pending:
            return
        errors = self.source.update_many([(c, body, {}) for c, body, _ in pending])
        unsent = []
        for i in errors:  # not written: forget the hashes so the next sync sends these values again
            c, _, written = pending[i]
            for f in written:
                self.destination.hashes(c).pop(f.key, None)
            unsent.append(c)
        if unsent:
            self.ctx.couplings.save_many(unsent)


@dataclass
class _Created:
    """Counterparts created for a page, waiting for their couplings to be stored."""

    couplings: list[Coupling]
    sources: list[str]  # the source id of each
    write_back: list[tuple[Coupling, dict[str, Any], list[FieldMapping]]]


class _KeepField(Exception):
    """An empty lookup on a field that must keep its destination value (e.g. ownerid)."""


def _message(error: Any) -> str:
    if isinstance(error, ConnectorError):
        return f"{error.code or error.status}: {error.message}" if error.code else error.message
    return str(error)


def _code(error: Any) -> str | None:
    return getattr(error, "code", None)
