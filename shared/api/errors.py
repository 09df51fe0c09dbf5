"""API errors: a 4xx status with ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

MAX_BODY_BYTES = 1_000_000


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


def from_validation(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or None
    message = first.get("msg", "invalid value")
    if field:
        message = f"{field}: {message}"
    return ApiError(400, "InvalidBody", message, field)


def parse_json_body(raw: bytes, required: bool = False) -> dict[str, Any]:
    """The request body as a JSON object ({} when empty and not required)."""
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "BodyTooLarge", f"request body exceeds {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        if required:
            raise ApiError(400, "MissingBody", "a JSON object body is required")
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "MalformedJson", f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "InvalidBody", "request body must be a JSON object")
    return data
