"""Timer: the scheduled "synchronize modified records" run, and the sweeper for stalled jobs."""

import logging

import azure.functions as func

from functions.http_util import context
from shared import telemetry
from shared.sync import orchestrator
from shared.sync.orchestrator import RunConflict, StartRequest

bp = func.Blueprint()
log = logging.getLogger("scheduler")


@bp.timer_trigger(arg_name="timer", schedule="%SYNC_SCHEDULE%", run_on_startup=False)
def scheduled_sync(timer: func.TimerRequest) -> None:
    with telemetry.timer_span():
        _scheduled_sync(timer)


def _scheduled_sync(timer: func.TimerRequest) -> None:
    ctx = context()
    for action in orchestrator.sweep(ctx):
        log.warning("sweeper: %s", action)
    if ctx.runs.active():
        log.info("scheduled sync skipped: a run is in progress")
        return
    try:
        run = orchestrator.start_run(ctx, StartRequest("modified", "timer"))
    except RunConflict as exc:
        log.info("scheduled sync skipped: %s", exc)
        return
    log.info("scheduled modified sync started: run %s (past_due=%s)", run.run_id, timer.past_due)
