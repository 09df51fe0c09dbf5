"""Queue trigger: one message = one bounded slice of one mapping's job."""

import json
import logging

import azure.functions as func

from functions.http_util import context
from shared import memory, telemetry
from shared.store import sync_queue
from shared.store.tables import SYNC_QUEUE
from shared.sync import orchestrator

bp = func.Blueprint()
log = logging.getLogger("worker")
MAX_DEQUEUE = 5  # host.json extensions.queues.maxDequeueCount


@bp.queue_trigger(arg_name="msg", queue_name=SYNC_QUEUE, connection="AzureWebJobsStorage")
def sync_worker(msg: func.QueueMessage) -> None:
    try:
        body = sync_queue.parse(msg.get_body().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        log.error("dropping malformed message %s: %s", msg.id, exc)
        return
    try:
        outcome = orchestrator.handle_message(context(), body)
    finally:
        memory.release()  # a slice's pages and records are gone: give their memory back
    rss, peak = memory.usage_mb()
    log.info(
        "run=%s mapping=%s seq=%s: %s (rss %s MB, peak %.0f MB)",
        body["run"],
        body["mapping"],
        body["seq"],
        outcome,
        "?" if rss is None else f"{rss:.0f}",
        peak,
    )


@bp.queue_trigger(arg_name="msg", queue_name=SYNC_QUEUE + "-poison", connection="AzureWebJobsStorage")
def sync_poison(msg: func.QueueMessage) -> None:
    """A slice failed maxDequeueCount times: end its job as Failed with the reason recorded."""
    try:
        body = json.loads(msg.get_body().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        log.error("dropping malformed poison message %s", msg.id)
        return
    if isinstance(body, dict):
        telemetry.poison_message(body)
        reason = f"slice failed {MAX_DEQUEUE} times (the worker log has the exception); moved to poison"
        orchestrator.fail_poisoned(context(), body, reason)
