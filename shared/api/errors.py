"""API errors: a 4xx status with ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

MAX_BODY_BYTES = 1_000_000
MAX_JSON_DEPTH = 32  # the deepest body the API takes is 4 levels; deeper input is refused before parsing
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, retry_after: int | None = None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after  # seconds, sent as Retry-After (429)

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


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (brackets inside strings ignored)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_json_body(raw: bytes, required: bool = False) -> dict[str, Any]:
    """The request body as a JSON object ({} when empty and not required)."""
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "BodyTooLarge", f"request body exceeds {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        if required:
            raise ApiError(400, "MissingBody", "a JSON object body is required")
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "MalformedJson", "request body is not UTF-8") from None
    if json_depth(text) > MAX_JSON_DEPTH:
        raise ApiError(400, "NestedTooDeep", f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "MalformedJson", f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "InvalidBody", "request body must be a JSON object")
    return data
