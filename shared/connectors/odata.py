"""OData literals: the one place values become query text (quotes doubled, GUIDs and times validated)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


def literal(value: Any) -> str:
    """An OData literal for ``value``; raises ValueError for anything that cannot be one safely."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous: give a timezone-aware datetime")
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ValueError(f"no OData literal for {type(value).__name__}")


def guid(value: str) -> str:
    """A validated GUID literal (bare, as both APIs expect in filters and keys)."""
    return str(uuid.UUID(str(value)))


def eq(field: str, value: Any) -> str:
    if not field.replace("_", "").isalnum():
        raise ValueError(f"invalid field name {field!r}")
    return f"{field} eq {literal(value)}"


def any_of(field: str, ids: list[str]) -> str:
    """``field eq <guid> or ...`` for a list of ids (validated)."""
    return " or ".join(f"{field} eq {guid(i)}" for i in ids)
