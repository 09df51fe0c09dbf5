"""The Full Synchronization Review: per mapping, what a first synchronization should do, and how the
last full synchronization went in each direction.

The recommendation follows GetInitialSynchRecommendation of BC's table 5373 "CRM Full Synch. Review
Line" (BC's AL source, microsoft/BCApps):
salespeople are always fully synchronized; currencies are coupled unless Dataverse holds only its base
currency (exchange rate 1); a Dataverse unit group table holding at most its default group counts as
empty; otherwise both sides empty is "no records", both holding records is "couple records" (match,
don't create twins), one side empty is "full synchronization". Emptiness respects the mapping's table
filters, read with one one-record page per side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.connectors.errors import NotConfigured
from shared.mappings import Mapping
from shared.mappings.entities import CRM_ENTITIES
from shared.model.status import JobStatus, Recommendation, ReviewStatus
from shared.store.jobs import Job

if TYPE_CHECKING:
    from shared.sync.context import SyncContext

ALWAYS_FULL = {"systemusers"}  # SALESPEOPLE: BC exits with "Full Synchronization" unconditionally
ONE_IS_EMPTY = {"uomschedules"}  # Dataverse's default unit group is not data of the tenant's own


@dataclass
class ReviewLine:
    mapping: Mapping
    recommendation: Recommendation
    bc_records: bool
    crm_records: bool
    bc_configured: bool
    last_run: str | None
    status: dict[str, ReviewStatus]  # per pass of the mapping
    job: Job | None

    def api(self) -> dict[str, Any]:
        m = self.mapping
        return {
            "mapping": m.name,
            "direction": m.direction,
            "depends_on": m.depends_on,
            "sync_only_coupled": m.sync_only_coupled,
            "recommendation": self.recommendation,
            "bc_has_records": self.bc_records,
            "crm_has_records": self.crm_records,
            "bc_configured": self.bc_configured,
            "last_full_sync": {
                "run_id": self.last_run,
                "job_status": self.job.status if self.job else None,
                **{p: str(s) for p, s in self.status.items()},
                "counters": {p: self.job.counters[p] for p in self.status} if self.job else None,
            },
        }


def _bc_has_records(ctx: SyncContext, m: Mapping) -> tuple[bool, bool]:
    """(has records, entity configured)"""
    try:
        page = ctx.bc.get_page(m.bc_entity, filter=m.bc_filter or None, select=["id"], page_size=1)
    except NotConfigured:
        return False, False
    return bool(page.records), True


def _crm_sample(
    ctx: SyncContext, m: Mapping, size: int, extra: list[str] | None = None
) -> list[dict[str, Any]]:
    key = CRM_ENTITIES[m.crm_entity].key
    select = [key, *(extra or [])]
    return ctx.dataverse.get_page(
        m.crm_entity, filter=m.crm_filter or None, select=select, page_size=size
    ).records


def recommend(ctx: SyncContext, m: Mapping) -> tuple[Recommendation, bool, bool, bool]:
    """(recommendation, BC has records, Dataverse has records, BC entity configured)"""
    bc_any, configured = _bc_has_records(ctx, m)
    if m.crm_entity in ALWAYS_FULL:
        return Recommendation.FULL_SYNC, bc_any, bool(_crm_sample(ctx, m, 1)), configured
    if m.crm_entity == "transactioncurrencies":
        rows = _crm_sample(ctx, m, 2, ["exchangerate"])
        only_base = len(rows) == 1 and float(rows[0].get("exchangerate") or 0) == 1.0
        rec = Recommendation.FULL_SYNC if only_base else Recommendation.COUPLE_RECORDS
        return rec, bc_any, bool(rows), configured
    if m.crm_entity in ONE_IS_EMPTY:
        crm_any = len(_crm_sample(ctx, m, 2)) > 1
    else:
        crm_any = bool(_crm_sample(ctx, m, 1))
    if not bc_any and not crm_any:
        rec = Recommendation.NO_RECORDS
    elif bc_any and crm_any:
        rec = Recommendation.COUPLE_RECORDS
    else:
        rec = Recommendation.FULL_SYNC
    return rec, bc_any, crm_any, configured


def pass_status(job: Job | None, sync_pass: str) -> ReviewStatus:
    """BC's review line status of one direction: Error when the job failed or any record failed."""
    if job is None or job.status == JobStatus.NOT_CONFIGURED:
        return ReviewStatus.NONE
    if job.status in (JobStatus.PENDING, JobStatus.WAITING, JobStatus.RUNNING):
        return ReviewStatus.IN_PROCESS
    if job.status in (JobStatus.FAILED, JobStatus.CANCELLED) or job.counters[sync_pass].get("failed"):
        return ReviewStatus.ERROR
    return ReviewStatus.SUCCESS


def review(ctx: SyncContext, mappings: list[Mapping]) -> list[ReviewLine]:
    lines = []
    for m in mappings:
        rec, bc_any, crm_any, configured = recommend(ctx, m)
        last = ctx.states.get(m.name).last_full_run
        job = ctx.jobs.get(last, m.name) if last else None
        status = {p: pass_status(job, p) for p in m.passes()}
        lines.append(ReviewLine(m, rec, bc_any, crm_any, configured, last, status, job))
    return lines
