"""Reachability checks used by /api/health and the portal's overview."""

from __future__ import annotations

import time
from typing import Any

from shared.store import clients


def _timed(check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure means "unreachable"; the message says why
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def check_health() -> dict[str, Any]:
    """Check tables and queues of the app's storage account. Never raises."""
    try:
        # Fail fast: a health probe must answer in seconds, not after the SDK's long retry policy.
        fast = {
            "retry_total": 0,
            "retry_connect": 0,
            "retry_read": 0,
            "connection_timeout": 3,
            "read_timeout": 5,
        }
        tables = clients.table_service(**fast)
        queues = clients.queue_service(**fast)
    except Exception as exc:
        error = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"status": "unhealthy", "storage": {"tables": error, "queues": error}}
    storage = {
        "tables": _timed(lambda: next(iter(tables.list_tables(results_per_page=1)), None)),
        "queues": _timed(lambda: next(iter(queues.list_queues(results_per_page=1)), None)),
    }
    healthy = all(part["ok"] for part in storage.values())
    return {"status": "ok" if healthy else "unhealthy", "storage": storage}
