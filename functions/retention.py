"""Timer: once a day, delete Runs, Jobs and Errors rows older than RETENTION_DAYS."""

import logging

import azure.functions as func

from functions.http_util import context
from shared.store.retention import purge

bp = func.Blueprint()
log = logging.getLogger("retention")


@bp.timer_trigger(arg_name="timer", schedule="0 17 3 * * *", run_on_startup=False)
def retention(timer: func.TimerRequest) -> None:
    ctx = context()
    deleted = purge(ctx.tables, ctx.settings.retention_days)
    log.info("retention: deleted rows older than %s days: %s", ctx.settings.retention_days, deleted)
