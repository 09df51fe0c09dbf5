"""One bounded slice of a mapping's job: read one source page, sync it, return the next cursor.

A job walks its passes (to_crm, then from_crm for bidirectional mappings); each pass of a modified
sync first retries the couplings that failed last time, then pages through the changed records
(BC: ``lastModifiedDateTime ge watermark``; CRM: change tracking, or ``modifiedon`` when tracking
is unavailable). Watermarks and delta links are saved only when a pass has finished, i.e. after every
write they cover.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.connectors import odata
from shared.connectors.errors import BadRequest, ConnectorError
from shared.mappings import Mapping
from shared.model.status import Pass, Result, RunKind
from shared.odata_filter import evaluate, parse
from shared.store.errors import SyncError
from shared.store.tables import iso, parse_iso
from shared.sync.cursor import Cursor
from shared.sync.records import PageSync
from shared.sync.values import crm_select

if TYPE_CHECKING:
    from shared.sync.context import SyncContext

log = logging.getLogger("sync.slice")


@dataclass
class SliceResult:
    sync_pass: str
    counts: Counter = field(default_factory=Counter)
    errors: list[SyncError] = field(default_factory=list)
    processed: int = 0
    cursor: Cursor = field(default_factory=Cursor)
    done: bool = False
    notes: list[str] = field(default_factory=list)  # for the job's log (message)


def _and(*clauses: str | None) -> str | None:
    return odata.and_(*clauses) or None


class SliceRunner:
    def __init__(self, ctx: SyncContext, run, job, mapping: Mapping):
        self.ctx = ctx
        self.run = run
        self.job = job
        self.m = mapping
        self.cursor = Cursor.of(job.cursor)
        self.full = run.kind == "full" or self.cursor.full
        self.cursor.full = self.full
        self.page_size = ctx.settings.slice_max_records

    def page_sync(self, sync_pass: str) -> PageSync:
        # A full sync creates for uncoupled records whatever the stored "Synch. Only Coupled Records"
        # says (a per-run override); couple mode creates only what the mapping's match options allow.
        create = self.full or not self.m.sync_only_coupled
        page = PageSync(
            self.ctx,
            self.m,
            sync_pass,
            run_id=self.run.run_id,
            create_uncoupled=create,
            dry_run=self.run.dry_run,
        )
        if self.cursor.couple:
            page.create_unmatched = self.m.create_new_if_no_match
            page.sync_after_couple = self.m.sync_after_coupling
        page.sync_coupled = not self.cursor.match_only
        return page

    def passes(self) -> list[str]:
        """A coupling job goes once over the BC side (the CRM side where BC cannot be read from), as BC's
        match-based coupling runs over its own table; other jobs take every pass of the mapping."""
        if self.cursor.match_only:
            return [Pass.TO_CRM if self.m.allows(Pass.TO_CRM) else Pass.FROM_CRM]
        return list(self.m.passes())

    def run_slice(self) -> SliceResult:
        if self.run.kind == RunKind.UNCOUPLING:
            return self._uncouple_slice()
        cursor = self.cursor
        if cursor.sync_pass is None:
            cursor = cursor.start(self.passes()[0])
        sync_pass = cursor.sync_pass
        self.ctx.new_slice()
        page = self.page_sync(sync_pass)
        result = SliceResult(sync_pass)
        if cursor.phase == "retry":
            records, cursor.retry_after = self._failed_records(sync_pass, cursor.retry_after)
            if records:
                page.run(records, force=True)
            result.processed = len(records)
            if cursor.retry_after is None:
                cursor.phase = "main"
        elif sync_pass == Pass.TO_CRM:
            self._bc_page(page, cursor, result)
        else:
            self._crm_page(page, cursor, result)
        result.counts, result.errors = page.result.counts, page.result.errors
        if self.run.dry_run and page.result.planned:
            self.ctx.planned.add(self.run.run_id, self.m.name, page.result.planned)
        result.notes += [
            f"{n} record(s): {what} sent as the Dataverse minimum (as BC's integration does)"
            for what, n in sorted(page.result.notes.items())
        ]
        if cursor.tracking_restarted:
            cursor.tracking_restarted = False
            result.notes.append(
                "the stored change-tracking link was refused (expired after the organization's "
                "ExpireChangeTrackingInDays): tracking restarted, changes since "
                f"{cursor.gap_since or 'the beginning'} synced by modifiedon"
            )
        if cursor.phase == "main" and cursor.pass_done:
            self._finish_pass(sync_pass, cursor)
            self.ctx.drop_matcher(self.m.name, sync_pass, self.run.run_id)
            passes = self.passes()
            i = passes.index(sync_pass)
            if i + 1 < len(passes):
                cursor = cursor.start(passes[i + 1])
            else:
                result.done = True
        result.cursor = cursor
        return result

    def _uncouple_slice(self) -> SliceResult:
        """One page of the mapping's couplings removed; the records stay on both sides (BC's Uncoupling
        job). A page retried after a crash goes on from the same continuation: what is gone is not read."""
        sync_pass = self.m.passes()[0]
        result = SliceResult(sync_pass)
        page, token = self.ctx.couplings.list(
            self.m.name, page_size=self.page_size, continuation=self.cursor.link
        )
        if not self.run.dry_run:
            for c in page:
                self.ctx.couplings.delete(c)
        result.counts[Result.UNCOUPLED] += len(page)
        result.processed = len(page)
        result.cursor = Cursor(sync_pass=sync_pass, link=token, pass_done=token is None)
        result.done = token is None
        return result

    # --- sources -----------------------------------------------------------------------------------
    def _failed_records(self, sync_pass: str, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the records that failed last time (failed couplings and uncoupled records whose
        create failed), in id order after ``after``; and the id to go on after, None when it was the last
        page. Paged by id, not by position: a record retried with success leaves the list."""
        side = "bc" if sync_pass == Pass.TO_CRM else "crm"
        failed = self.ctx.couplings.failed_couplings(self.m.name)
        src_ids = {bc_id if side == "bc" else crm_id for bc_id, crm_id in failed}
        src_ids |= set(self.ctx.couplings.failed_uncoupled(self.m.name, side))
        todo = sorted(i for i in src_ids if after is None or i > after)
        ids = todo[: self.page_size]
        if not ids:
            return [], None
        records = list(self.page_sync(sync_pass).fetch_source(ids).values())
        return records, (ids[-1] if len(todo) > len(ids) else None)

    def _bc_page(self, page: PageSync, cursor: Cursor, result: SliceResult) -> None:
        state = self.ctx.states.get(self.m.name)
        watermark = None if self.full or self.m.reads_all_records else state.bc_watermark
        # ge, not gt: BC stamps milliseconds, so a record sharing the watermark's millisecond is read again
        # (and found unchanged) rather than missed.
        since = odata.since("lastModifiedDateTime", watermark) if watermark else None
        got = self.ctx.bc.get_page(
            self.m.bc_entity,
            filter=_and(self.m.bc_filter, since),
            page_size=self.page_size,
            next_link=cursor.link,
        )
        page.run(got.records)
        result.processed = len(got.records)
        cursor.observe([r.get("lastModifiedDateTime") for r in got.records])
        cursor.link, cursor.pass_done = got.next_link, got.next_link is None

    def _changes(self, cursor: Cursor, state) -> Any:
        """One page of Dataverse changes; None when the table is not change-tracked (use modifiedon).

        A stored delta link the service refuses — expired after ExpireChangeTrackingInDays (7 by
        default) — is dropped and tracking starts again; the restart reads every record once, and only
        those modified since the last sync (the gap) are synced.
        """
        select = crm_select(self.m)
        link = cursor.link or (None if self.full else state.crm_delta_link)
        stored = link is not None and not cursor.link
        try:
            return self.ctx.dataverse.get_changes(self.m.crm_entity, select=select, link=link)
        except ConnectorError as exc:
            if (
                stored
                and exc.status is not None
                and 400 <= exc.status < 500
                and exc.status not in (401, 403, 429)
            ):
                log.warning("delta link of %s refused (%s): restarting change tracking", self.m.name, exc)
                self.ctx.states.update(self.m.name, crm_delta_link=None)
                cursor.crm_mode, cursor.gap_since = "restart", state.crm_watermark
                cursor.tracking_restarted = True
                try:
                    return self.ctx.dataverse.get_changes(self.m.crm_entity, select=select, link=None)
                except BadRequest:
                    return None
            if isinstance(exc, BadRequest):
                log.warning(
                    "change tracking unavailable for %s (%s); using modifiedon", self.m.crm_entity, exc
                )
                return None
            raise

    def _crm_page(self, page: PageSync, cursor: Cursor, result: SliceResult) -> None:
        state = self.ctx.states.get(self.m.name)
        flt = parse(self.m.crm_filter)
        if cursor.crm_mode != "modifiedon":
            got = self._changes(cursor, state)
            if got is None:
                cursor.crm_mode = "modifiedon"
            else:
                records = [r for r in got.records if evaluate(flt, r)]
                gap = parse_iso(cursor.gap_since)
                if gap is not None:  # a restarted tracking reads everything: sync only the gap
                    records = [r for r in records if (parse_iso(r.get("modifiedon")) or gap) >= gap]
                page.run(records)
                if got.deleted_ids:
                    page.handle_source_deleted([i.lower() for i in got.deleted_ids])
                result.processed = len(records) + len(got.deleted_ids)
                cursor.observe([r.get("modifiedon") for r in got.records])
                cursor.link, cursor.pass_done = got.next_link, got.next_link is None
                cursor.delta_link = got.delta_link
                return
        watermark = None if self.full else state.crm_watermark
        since = odata.since("modifiedon", watermark) if watermark else None
        got = self.ctx.dataverse.get_page(
            self.m.crm_entity,
            select=crm_select(self.m),
            filter=_and(self.m.crm_filter, since),
            page_size=self.page_size,
            next_link=cursor.link if cursor.crm_mode == "modifiedon" else None,
        )
        page.run(got.records)
        result.processed = len(got.records)
        cursor.observe([r.get("modifiedon") for r in got.records])
        cursor.link, cursor.pass_done = got.next_link, got.next_link is None

    def _finish_pass(self, sync_pass: str, cursor: Cursor) -> None:
        """Move the watermark / delta link forward: every write of the pass is committed by now."""
        if self.run.dry_run or cursor.match_only:  # a coupling job synced no change of coupled records
            return
        started = parse_iso(self.job.started_at)
        changes: dict[str, Any] = {}
        if sync_pass == Pass.TO_CRM:
            seen = parse_iso(cursor.max_seen)
            if self.m.reads_all_records:  # every record was read: what changes after the start is new
                changes["bc_watermark"] = iso(started)
            elif seen is not None or self.full:
                candidates = [t for t in (started, seen) if t is not None]
                changes["bc_watermark"] = iso(min(candidates))
        else:
            # Kept with a delta link too: it is where a refused delta link's gap starts.
            seen = parse_iso(cursor.max_seen)
            if seen is not None or self.full:
                changes["crm_watermark"] = iso(min(t for t in (started, seen) if t is not None))
            if cursor.crm_mode != "modifiedon" and cursor.delta_link:
                changes["crm_delta_link"] = cursor.delta_link
        if changes:
            self.ctx.states.update(self.m.name, **changes)
