"""Request/response plumbing shared by the HTTP blueprints: JSON in, JSON out, errors as 4xx JSON."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import azure.functions as func

from shared.api.errors import ApiError, parse_json_body
from shared.connectors.errors import ConnectorError
from shared.sync.context import SyncContext

log = logging.getLogger("http")
_context: SyncContext | None = None


def context() -> SyncContext:
    """One SyncContext per process (connection pools and token caches are reused)."""
    global _context
    if _context is None:
        _context = SyncContext()
        _context.tables.ensure()
    return _context


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, default=str), status_code=status, mimetype="application/json", headers=headers
    )


def body_of(req: func.HttpRequest, required: bool = False) -> dict[str, Any]:
    return parse_json_body(req.get_body() or b"", required)


def api(handler):
    """Turn ApiError into its 4xx JSON, upstream failures into 502, anything else into a logged 500."""

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return handler(req)
        except ApiError as exc:
            return json_response(exc.body(), exc.status)
        except ConnectorError as exc:
            log.warning("upstream error in %s: %s %s", handler.__name__, exc.service, exc.code)
            body = {"error": {"code": "UpstreamError", "message": f"{exc.service}: {exc.message}"}}
            return json_response(body, 502)
        except Exception:
            log.exception("unhandled error in %s", handler.__name__)
            return json_response({"error": {"code": "InternalError", "message": "internal error"}}, 500)

    return wrapper
