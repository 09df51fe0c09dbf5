"""Runs and jobs: start a run, process one queue message (one slice), finish jobs and runs, sweep.

Every step is safe to repeat: messages carry the job's slice number (``seq``) and a message for a
slice that is already done is dropped; job and run rows change only under ETags; a dependent job is
enqueued by whoever flips it from Waiting to Pending, so it is enqueued once.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared import telemetry, usage
from shared.connectors.errors import NotConfigured
from shared.errors import Concurrency, InvalidInput
from shared.mappings import Mapping
from shared.model.status import JobStatus, Recommendation, Result, RunKind, RunStatus
from shared.store import sync_queue
from shared.store.errors import SyncError
from shared.store.etag import Superseded
from shared.store.jobs import DONE, TERMINAL, Job
from shared.store.mapping_state import LeaseHeld
from shared.store.runs import ACTIVE, MappingLocked, Run, new_run_id
from shared.store.tables import iso, now
from shared.sync import probe
from shared.sync.cursor import Cursor
from shared.sync.slices import SliceRunner

if TYPE_CHECKING:
    from shared.sync.context import SyncContext

NOT_DONE = (JobStatus.FAILED, JobStatus.CANCELLED)  # a dependency in these states fails its dependents

log = logging.getLogger("sync.orchestrator")

RETRY_DELAY_SECONDS = 15
INLINE_SECONDS = 60  # an invocation goes on with its job's next slices for up to this long
CONTINUED_INLINE = "continued inline"


class RunConflict(Concurrency):
    """A running run already holds one of the requested mappings."""

    def __init__(self, run_id: str, mappings: list[str]):
        super().__init__(f"run {run_id} is already synchronizing {', '.join(mappings)}")
        self.run_id = run_id
        self.mappings = mappings


class DecisionConflict(Concurrency):
    """The run is not waiting for a decision any more, or was answered the other way meanwhile."""


class UnknownMapping(InvalidInput):
    def __init__(self, name: str):
        super().__init__(f"unknown mapping {name!r}")
        self.name = name


@dataclass
class StartRequest:
    kind: str  # full | modified | mapping | coupling | uncoupling
    trigger: str = "api"
    mappings: list[str] | None = None
    after_full_sync: str = "restore"  # ask | keep | restore
    dry_run: bool = False
    full: bool = False  # for kind=mapping: a full sync of that one mapping
    # A full sync started from the review: per mapping what its job does (absent: a full synchronization).
    recommendations: dict[str, Recommendation] = field(default_factory=dict)


@telemetry.traced_run
def start_run(ctx: SyncContext, request: StartRequest) -> Run:
    """Create the run and its jobs, then enqueue one message per mapping in dependency order."""
    all_mappings = ctx.mappings.all()  # dependency order
    by_name = {m.name: m for m in all_mappings}
    wanted = request.mappings or list(by_name)
    for name in wanted:
        if name not in by_name:
            raise UnknownMapping(name)
    selected = [m for m in all_mappings if m.name in set(wanted)]
    for active in ctx.runs.active():  # also runs that take no locks (record actions, the ribbon)
        overlap = sorted(set(active.mappings) & {m.name for m in selected})
        if overlap:
            raise RunConflict(active.run_id, overlap)
    run_id = new_run_id()
    names_in_order = [m.name for m in selected]
    try:
        ctx.runs.lock(names_in_order, run_id)  # atomic: of simultaneous starters one gets each mapping
    except MappingLocked as held:
        raise RunConflict(held.run_id, [held.mapping]) from None
    try:
        return _create_run(ctx, request, run_id, selected)
    except BaseException:
        ctx.runs.unlock(names_in_order, run_id)
        raise


def _create_run(ctx: SyncContext, request: StartRequest, run_id: str, selected: list[Mapping]) -> Run:
    full = request.kind == "full" or request.full
    run = Run(
        run_id=run_id,
        kind=request.kind,
        trigger=request.trigger,
        mappings=[m.name for m in selected],
        dry_run=request.dry_run,
        after_full_sync=request.after_full_sync if full else "restore",
    )
    if request.trigger == "timer" and run.after_full_sync == "ask":
        run.after_full_sync = "restore"  # a timer run never waits for a human
    if full and not request.dry_run:
        _mark_full_sync(ctx, selected, run_id)
    names = {m.name for m in selected}
    unconfigured = _not_configured(ctx, selected)
    probed = request.kind in ("modified", "mapping") and not full  # runs of changes only
    idle = probe.idle_mappings(ctx, [m for m in selected if m.name not in unconfigured]) if probed else set()
    idle |= set(unconfigured)
    jobs = [
        Job(
            run_id=run.run_id,
            mapping=m.name,
            depends_on=[d for d in m.depends_on if d in names],
            passes=m.passes(),
            cursor=_first_cursor(request.kind, full, request.recommendations.get(m.name)),
        )
        for m in selected
    ]
    nothing = {n for n, r in request.recommendations.items() if r == Recommendation.NO_RECORDS} & names
    for job in jobs:
        if job.mapping in unconfigured:  # never a failure: the mapping waits for its API root
            job.status, job.message = JobStatus.NOT_CONFIGURED, unconfigured[job.mapping]
            job.started_at = job.finished_at = iso(now())
        elif job.mapping in idle:  # nothing new at the source: done without a queue message
            job.status, job.message = JobStatus.SUCCEEDED, "no changes since the last sync"
            job.started_at = job.finished_at = iso(now())
        elif job.mapping in nothing:
            job.status, job.message = JobStatus.SUCCEEDED, "no records on either side: nothing to synchronize"
            job.started_at = job.finished_at = iso(now())
    ctx.jobs.create_many(jobs)
    ctx.runs.create(run)
    if not ctx.runs.holds(list(names), run.run_id):
        # The locks outlived their grace before the run row appeared and another run took one over.
        ctx.runs.update(run.run_id, _cancel_superseded)
        raise RunConflict("another run", sorted(names))
    sync_queue.ensure()
    for job in jobs:
        if job.status == JobStatus.PENDING:
            sync_queue.send(sync_queue.message(run.run_id, job.mapping, 0))
    log.info("run %s started: kind=%s mappings=%s idle=%s", run.run_id, run.kind, run.mappings, sorted(idle))
    if idle | nothing >= names:
        _finish_run(ctx, run.run_id)
        return ctx.runs.get(run.run_id) or run
    return run


def _first_cursor(kind: str, full: bool, recommendation: Recommendation | None) -> dict[str, Any]:
    if kind == RunKind.COUPLING:  # every source record is read; only uncoupled ones are worked on
        return Cursor(full=True, couple=True, match_only=True).stored()
    if not full:
        return {}
    return Cursor(full=True, couple=recommendation == Recommendation.COUPLE_RECORDS).stored()


def _not_configured(ctx: SyncContext, mappings: list[Mapping]) -> dict[str, str]:
    """Mappings whose BC entity has no API root (v2.0 lacks it, BC_API_ROOTS names none): why, by name."""
    return {
        m.name: NotConfigured(m.bc_entity).message for m in mappings if not ctx.bc.configured(m.bc_entity)
    }


def _cancel_superseded(r: Run) -> None:
    r.status, r.finished_at, r.message = (
        RunStatus.CANCELLED,
        iso(now()),
        "superseded: another run took the mappings",
    )


def _mark_full_sync(ctx: SyncContext, mappings: list[Mapping], run_id: str) -> None:
    """A full sync runs on a per-run override of "Synch. Only Coupled Records" (its slices create
    uncoupled records whatever the stored flag says), as BC runs it on a temporary copy of the
    mapping: the stored flag changes only when the decision is applied, so a scheduled sync running
    meanwhile still leaves uncoupled records alone."""
    for m in mappings:
        ctx.states.update(m.name, full_sync_running=True, last_full_run=run_id)


def _apply_decision(ctx: SyncContext, run: Run, keep_cleared: bool) -> None:
    """Keep: turn "Synch. Only Coupled Records" off from now on. Restore: the stored flag was never
    changed, so there is nothing to put back."""
    for name in run.mappings:
        if not ctx.states.get(name).full_sync_running:
            continue
        if keep_cleared:
            ctx.mappings.update(name, _set_only_coupled(False))
        ctx.states.update(name, full_sync_running=False)


def _set_only_coupled(value: bool):
    """A guarded edit of one flag: applied to the freshest row, so a concurrent PATCH is kept."""

    def mutate(m: Mapping) -> Mapping | None:
        return None if m.sync_only_coupled == value else m.model_copy(update={"sync_only_coupled": value})

    return mutate


def decide(ctx: SyncContext, run_id: str, keep_sync_all_records: bool) -> Run:
    """Answer the end-of-full-sync question (keep "only coupled" cleared, or restore it)."""
    run = ctx.runs.get(run_id)
    if run is None:
        raise KeyError(run_id)
    if run.status != RunStatus.AWAITING_DECISION:
        raise DecisionConflict(f"run {run_id} is {run.status}, not AwaitingDecision")

    def claim(r: Run):
        # Under the run's ETag: of two different answers given at once exactly one is recorded.
        if r.status != RunStatus.AWAITING_DECISION:
            raise DecisionConflict(f"run {run_id} is {r.status}, not AwaitingDecision")
        if r.decision is not None and r.decision != keep_sync_all_records:
            raise DecisionConflict(f"run {run_id} was answered keep_sync_all_records={r.decision} meanwhile")
        if r.decision is not None:
            return False  # the same answer again (a retry): finish what it started
        r.decision = keep_sync_all_records

    run = ctx.runs.update(run_id, claim)
    _apply_decision(ctx, run, keep_sync_all_records)

    outcome = _outcome(ctx.jobs.for_run(run_id))

    def mutate(r: Run):
        if r.status != RunStatus.AWAITING_DECISION:
            return False
        r.status, r.decision, r.finished_at = outcome, keep_sync_all_records, r.finished_at or iso(now())

    return ctx.runs.update(run_id, mutate)


def cancel(ctx: SyncContext, run_id: str) -> Run:
    run = ctx.runs.get(run_id)
    if run is None:
        raise KeyError(run_id)
    if run.status in ACTIVE:
        for job in ctx.jobs.for_run(run_id):
            ctx.jobs.update(run_id, job.mapping, _set_status(JobStatus.CANCELLED, "cancelled by request"))
        _finish_run(ctx, run_id)
    return ctx.runs.get(run_id)


def _move(expected: str, new: str):
    """A guarded status change of a run or job: applied only while it is still ``expected``."""

    def mutate(row: Run | Job):
        if row.status != expected:
            return False
        row.status = new

    return mutate


def _set_status(status: str, message: str | None = None):
    def mutate(job: Job):
        if job.status in TERMINAL:
            return False
        job.status, job.finished_at = status, iso(now())
        if message:
            job.message = message

    return mutate


# --- the worker ------------------------------------------------------------------------------------
def handle_message(ctx: SyncContext, body: dict[str, Any], inline_seconds: float = INLINE_SECONDS) -> str:
    """Process one queue message; returns what happened (for logs and tests).

    While the invocation is younger than ``inline_seconds`` it goes on with its job's next slices
    itself — a queue hop saved per slice. Each of them is still enqueued first, delayed by the slice
    claim time, so the job resumes from the queue if this worker dies.
    """
    started = time.monotonic()
    outcome, following = _handle_one(ctx, body, inline=inline_seconds > 0)
    outcomes = [outcome]
    while following is not None:
        inline = time.monotonic() - started < inline_seconds
        try:
            outcome, following = _handle_one(ctx, following, inline=inline)
        except Exception:
            log.exception("slice %s of %s failed inline; retrying it from the queue", following["seq"],
                          following["mapping"])  # fmt: skip
            sync_queue.send(following)
            outcome, following = "failed inline: re-enqueued", None
        outcomes.append(outcome)
    return "; ".join(outcomes)


@telemetry.traced_slice
def _handle_one(ctx: SyncContext, body: dict[str, Any], inline: bool) -> tuple[str, dict[str, Any] | None]:
    """One slice: what happened, and the job's next slice when it is to be done inline."""
    run_id, name, seq = body["run"], body["mapping"], body["seq"]
    run = ctx.runs.get(run_id)
    job = ctx.jobs.get(run_id, name)
    if run is None or job is None:
        return "dropped: unknown run or job", None
    if run.status not in ACTIVE or job.status in TERMINAL:
        return f"dropped: job is {job.status}", None
    if seq != job.seq:
        if seq == job.seq - 1 and job.status == JobStatus.RUNNING:
            # Slice ``seq`` was committed, but its worker may have died before sending the next one
            # (it is sent after the commit): send it again; a duplicate is dropped by this same check.
            sync_queue.send(sync_queue.message(run_id, name, job.seq, job.cursor.get("pass")))
            return f"stale slice {seq}: slice {job.seq} re-sent", None
        return f"dropped: stale slice {seq} (job is at {job.seq})", None
    jobs = {j.mapping: j for j in ctx.jobs.for_run(run_id)}
    deps = [jobs[d] for d in job.depends_on if d in jobs]
    failed = [d.mapping for d in deps if d.status in NOT_DONE]
    if failed:
        ctx.jobs.update(
            run_id, name, _set_status(JobStatus.FAILED, f"dependency {', '.join(failed)} did not succeed")
        )
        _after_job(ctx, run_id)
        return "failed: dependency", None
    if any(d.status not in DONE for d in deps):
        ctx.jobs.update(
            run_id,
            name,
            _move(JobStatus.PENDING, JobStatus.WAITING),
        )
        # A dependency may have finished between our read and the write: re-check, enqueue if so.
        _enqueue_ready(ctx, run_id)
        return "waiting", None
    mapping = ctx.mappings.by_name().get(name)
    if mapping is None:
        ctx.jobs.update(run_id, name, _set_status(JobStatus.FAILED, "mapping no longer exists"))
        _after_job(ctx, run_id)
        return "failed: mapping", None
    holder = uuid.uuid4().hex
    try:
        lease = ctx.states.acquire(name, run_id, holder, ctx.settings.slice_claim_seconds)
    except LeaseHeld as held:
        sync_queue.send(body, delay_seconds=RETRY_DELAY_SECONDS)
        return f"deferred: {held}", None
    try:
        return _run_slice(ctx, run, name, seq, mapping, lease, inline)
    except Exception:
        # Let the message be retried (poison after maxDequeueCount); free the slice for the retry.
        ctx.states.release(ctx.states.get(name), keep_for_run_seconds=ctx.settings.lease_seconds)
        raise


def _run_slice(
    ctx, run: Run, name: str, seq: int, mapping: Mapping, lease, inline: bool
) -> tuple[str, dict[str, Any] | None]:
    def claim(j: Job):
        if j.seq != seq or j.status in TERMINAL:
            return False
        if j.status != JobStatus.RUNNING:
            j.status, j.started_at = JobStatus.RUNNING, j.started_at or iso(now())

    job = ctx.jobs.update(run.run_id, name, claim)
    if job is None or job.seq != seq or job.status != JobStatus.RUNNING:
        ctx.states.release(lease, keep_for_run_seconds=ctx.settings.lease_seconds)
        return "dropped: slice already done", None
    if run.status == RunStatus.PENDING:
        ctx.runs.update(
            run.run_id,
            _move(RunStatus.PENDING, RunStatus.RUNNING),
        )
    started = time.monotonic()
    with usage.meter() as meter:
        try:
            result = SliceRunner(ctx, run, job, mapping).run_slice()
        except NotConfigured as exc:  # e.g. salespeoplePurchasers on BC before 26.1
            ctx.jobs.update(run.run_id, name, _set_status(JobStatus.NOT_CONFIGURED, exc.message))
            ctx.states.release(lease)
            _after_job(ctx, run.run_id)
            return "not configured", None
        if result.errors and not run.dry_run:
            ctx.errors.add_many(result.errors)

    def commit(j: Job):
        if j.seq != seq:
            raise Superseded("slice committed by another worker")
        j.add(result.sync_pass, dict(result.counts))
        j.processed += result.processed
        j.errors += len(result.errors)
        j.add_usage(meter.counts())
        j.cursor = result.cursor.stored()
        j.seq = seq + 1
        j.note(result.notes)
        if result.done:
            failed = j.errors or any(c.get(Result.FAILED) for c in j.counters.values())
            j.status = JobStatus.FINISHED_WITH_ERRORS if failed else JobStatus.SUCCEEDED
            j.finished_at = iso(now())
            j.total_estimate = j.processed
        else:
            j.total_estimate = max(j.total_estimate or 0, j.processed + ctx.settings.slice_max_records)

    try:
        ctx.jobs.update(run.run_id, name, commit)
    except Superseded:
        return "dropped: slice committed by another worker", None
    telemetry.slice_finished(ctx, run, name, result, time.monotonic() - started)
    if result.done:
        ctx.states.release(lease)
        _after_job(ctx, run.run_id)
        return "job done", None
    ctx.states.release(lease, keep_for_run_seconds=ctx.settings.lease_seconds)
    following = sync_queue.message(run.run_id, name, seq + 1, result.cursor.sync_pass)
    if inline:
        sync_queue.send(following, delay_seconds=ctx.settings.slice_claim_seconds)
        return CONTINUED_INLINE, following
    sync_queue.send(following)
    return "continued", None


def fail_poisoned(ctx: SyncContext, body: dict[str, Any], reason: str) -> None:
    """A message that kept failing: end its job as Failed with the reason, then move the run on."""
    run_id, name = body.get("run"), body.get("mapping")
    if not run_id or not name:
        return
    ctx.jobs.update(run_id, name, _set_status(JobStatus.FAILED, reason[:1000]))
    ctx.errors.add_many([SyncError(run_id, name, body.get("pass") or "job", "job", None, reason[:4000])])
    state = ctx.states.get(name)
    if state.lease_run == run_id:
        ctx.states.release(state)
    _after_job(ctx, run_id)


def _after_job(ctx: SyncContext, run_id: str) -> None:
    _enqueue_ready(ctx, run_id)
    _finish_run(ctx, run_id)


def _enqueue_ready(ctx: SyncContext, run_id: str) -> None:
    """Enqueue Waiting jobs whose dependencies all succeeded; fail those whose dependency failed."""
    jobs = {j.mapping: j for j in ctx.jobs.for_run(run_id)}
    for job in jobs.values():
        if job.status != JobStatus.WAITING:
            continue
        deps = [jobs[d] for d in job.depends_on if d in jobs]
        if any(d.status in NOT_DONE for d in deps):
            ctx.jobs.update(
                run_id, job.mapping, _set_status(JobStatus.FAILED, "a dependency did not succeed")
            )
            continue
        if all(d.status in DONE for d in deps):
            job.status = JobStatus.PENDING
            if not ctx.jobs.save_if_unchanged(
                job
            ):  # ETag: of two finishers, exactly one flips it and enqueues
                continue
            sync_queue.send(sync_queue.message(run_id, job.mapping, job.seq))


def _finish_run(ctx: SyncContext, run_id: str) -> None:
    jobs = ctx.jobs.for_run(run_id)
    if not all(j.status in TERMINAL for j in jobs):
        return
    run = ctx.runs.get(run_id)
    if run is None or run.status not in ACTIVE:
        return
    status = _final_status(run, jobs)
    if status != RunStatus.AWAITING_DECISION and not run.dry_run and _was_full(jobs):
        # Before the run shows as finished, so whoever sees it finished sees the flag settled.
        _apply_decision(ctx, run, keep_cleared=run.after_full_sync == "keep")

    flipped: list[bool] = []  # whether the write that stuck was ours (mutate may run per ETag retry)

    def mutate(r: Run):
        flipped.clear()
        if r.status not in ACTIVE:
            return False
        r.status, r.finished_at = status, iso(now())
        flipped.append(True)

    finished = ctx.runs.update(run_id, mutate)
    if flipped and finished is not None:
        telemetry.run_finished(finished, jobs)


def _final_status(run: Run, jobs: list[Job]) -> str:
    statuses = {j.status for j in jobs}
    if JobStatus.CANCELLED in statuses:  # a cancel request wins over jobs that failed before it
        return RunStatus.CANCELLED
    if JobStatus.FAILED in statuses:
        return RunStatus.FAILED
    if (
        run.kind in ("full", "mapping")
        and not run.dry_run
        and run.after_full_sync == "ask"
        and _was_full(jobs)
    ):
        return RunStatus.AWAITING_DECISION
    return _outcome(jobs)


def _outcome(jobs: list[Job]) -> RunStatus:
    """How a run whose jobs all ran to their end finished: with failed records, or cleanly."""
    if any(j.status == JobStatus.FINISHED_WITH_ERRORS for j in jobs):
        return RunStatus.FINISHED_WITH_ERRORS
    return RunStatus.SUCCEEDED


def _was_full(jobs: list[Job]) -> bool:
    return any(j.cursor.get("full") for j in jobs)


# --- the sweeper ---------------------------------------------------------------------------------
def sweep(ctx: SyncContext) -> list[str]:
    """Re-enqueue stalled jobs: Running past their lease, or Waiting with all dependencies done."""
    actions = []
    for run in ctx.runs.active():
        jobs = {j.mapping: j for j in ctx.jobs.for_run(run.run_id)}
        for job in jobs.values():
            if job.status == JobStatus.RUNNING:
                state = ctx.states.get(job.mapping)
                if not state.lease_active():
                    sync_queue.send(sync_queue.message(run.run_id, job.mapping, job.seq))
                    actions.append(f"re-enqueued {run.run_id}/{job.mapping} (lease expired)")
        before = {n for n, j in jobs.items() if j.status == JobStatus.WAITING}
        _enqueue_ready(ctx, run.run_id)
        after = {j.mapping for j in ctx.jobs.for_run(run.run_id) if j.status == JobStatus.WAITING}
        actions += [f"re-enqueued {run.run_id}/{n} (dependencies done)" for n in sorted(before - after)]
        _finish_run(ctx, run.run_id)
    return actions
