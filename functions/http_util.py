"""Request/response plumbing shared by the HTTP blueprints: JSON in, JSON out, errors as 4xx JSON."""

from __future__ import annotations

import functools
import json
import logging
import threading
from typing import Any

import azure.functions as func

from shared.api import limits
from shared.api.auth import ADMIN, caller_id, check_user
from shared.api.errors import ApiError, parse_json_body
from shared.connectors.errors import ConnectorError
from shared.sync.context import SyncContext

log = logging.getLogger("http")
_context: SyncContext | None = None
_context_lock = threading.Lock()


def context() -> SyncContext:
    """One SyncContext per process (connection pools and token caches are reused). Published only
    once its tables exist: concurrent first requests otherwise query a table not yet created."""
    global _context
    if _context is None:
        with _context_lock:
            if _context is None:
                ctx = SyncContext()
                ctx.tables.ensure()
                _context = ctx
    return _context


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, default=str), status_code=status, mimetype="application/json", headers=headers
    )


def body_of(req: func.HttpRequest, required: bool = False) -> dict[str, Any]:
    return parse_json_body(req.get_body() or b"", required)


def api(handler=None, *, roles: tuple[str, ...] = ADMIN):
    """Check the Entra token (entra mode; ``roles`` = app roles that may call the route), then turn
    ApiError into its 4xx JSON, upstream failures into 502, anything else into a logged 500."""
    if handler is None:
        return functools.partial(api, roles=roles)

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            claims = check_user(context().settings, req.headers, roles)
            key = req.headers.get("x-functions-key") or req.params.get("code") or ""
            limits.current_caller.set(caller_id(claims, key))  # rate limits count per caller
            return handler(req)
        except ApiError as exc:
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            if exc.status == 401:
                headers = {**(headers or {}), "WWW-Authenticate": 'Bearer error="invalid_token"'}
            return json_response(exc.body(), exc.status, headers)
        except ConnectorError as exc:
            log.warning("upstream error in %s: %s %s", handler.__name__, exc.service, exc.code)
            body = {"error": {"code": "UpstreamError", "message": f"{exc.service}: {exc.message}"}}
            return json_response(body, 502)
        except Exception:
            log.exception("unhandled error in %s", handler.__name__)
            return json_response({"error": {"code": "InternalError", "message": "internal error"}}, 500)

    return wrapper
