"""Typed connector errors carrying the service's own code and message."""

from __future__ import annotations

from typing import Any

from shared.errors import SyncServiceError


class ConnectorError(SyncServiceError):
    def __init__(self, service: str, status: int | None, code: str | None, message: str):
        super().__init__(f"{service} {status} {code or ''}: {message}".strip())
        self.service = service
        self.status = status
        self.code = code
        self.message = message


class NotFound(ConnectorError):
    pass


class Conflict(ConnectorError):
    """BC: the record changed since it was read (409 Request_EntityChanged)."""


class PreconditionFailed(ConnectorError):
    """Dataverse: If-Match did not match (412)."""


class Duplicate(ConnectorError):
    """The record (or its key) already exists (Dataverse 0x80040237, BC Internal_EntityWithSameKeyExists)."""


class Throttled(ConnectorError):
    pass


class Unauthorized(ConnectorError):
    pass


class Transient(ConnectorError):
    """5xx or a broken connection that outlived the retry budget."""


class BadRequest(ConnectorError):
    pass


class NotConfigured(ConnectorError):
    """The entity has no API root here: v2.0 lacks it and BC_API_ROOTS does not name one."""

    def __init__(self, entity: str):
        super().__init__(
            "bc",
            None,
            "NotConfigured",
            f"Business Central API v2.0 has no {entity!r}: publish the project's API page (bc-extension/) "
            f"and set BC_API_ROOTS={entity}=bcsync/crm/v1.0",
        )
        self.entity = entity


DUPLICATE_CODES = {"0x80040237", "Internal_EntityWithSameKeyExists", "0x80040333"}


def parse_error(service: str, status: int, body: Any) -> ConnectorError:
    """Map a service error response to a typed error (both services use {"error": {"code", "message"}})."""
    code, message = None, ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        message = body["error"].get("message") or ""
    elif isinstance(body, str):
        message = body[:500]
    if code in DUPLICATE_CODES:
        return Duplicate(service, status, code, message)
    kind = {
        400: BadRequest,
        401: Unauthorized,
        403: Unauthorized,
        404: NotFound,
        409: Conflict,
        412: PreconditionFailed,
        429: Throttled,
    }.get(status)
    if kind is None:
        kind = Transient if status >= 500 else BadRequest
    return kind(service, status, code, message or f"HTTP {status}")
