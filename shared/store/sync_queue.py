"""The sync-mappings queue: one small JSON message per slice of a mapping's job."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from azure.core.exceptions import ResourceExistsError

from shared import telemetry
from shared.store.clients import queue
from shared.store.tables import SYNC_QUEUE

VERSION = 1


def message(run_id: str, mapping: str, seq: int, sync_pass: str | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"run": run_id, "mapping": mapping, "seq": seq, "pass": sync_pass, "v": VERSION}
    trace = telemetry.message_trace(run_id, mapping)
    if trace:  # optional: the run's and job's trace context (W3C traceparent); readers never need it
        msg["trace"] = trace
    return msg


def parse(body: str) -> dict[str, Any]:
    """Validate a queue message body; ValueError for anything that is not ours."""
    data = json.loads(body)
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise ValueError("not a sync message (missing or unknown version)")
    if not isinstance(data.get("run"), str) or not isinstance(data.get("mapping"), str):
        raise ValueError("sync message needs 'run' and 'mapping'")
    if not isinstance(data.get("seq"), int):
        raise ValueError("sync message needs an integer 'seq'")
    return data


def ensure() -> None:
    with contextlib.suppress(ResourceExistsError):
        queue(SYNC_QUEUE).create_queue()


def send(msg: dict[str, Any], delay_seconds: int = 0) -> None:
    queue(SYNC_QUEUE).send_message(json.dumps(msg), visibility_timeout=delay_seconds or None)
