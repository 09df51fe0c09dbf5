"""OData literals: the one place values become query text (quotes doubled, GUIDs and times validated)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


def literal(value: Any) -> str:
    """An OData literal for ``value``; raises ValueError for anything that cannot be one safely.

    Strings are quoted with inner quotes doubled; ``uuid.UUID`` is a bare GUID (validate str ids
    with ``guid``); datetimes must be timezone-aware (naive ones are rejected, not guessed) and are
    sent as UTC with milliseconds, e.g. ``2024-01-01T00:00:00.000Z``; NaN/infinity are rejected.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("NaN and infinity have no OData literal")
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


OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le")


def _field(name: str) -> str:
    # Field names come from mappings, not users, but are still checked: they are never quoted.
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"invalid field name {name!r}")
    return name


def cmp(field: str, op: str, value: Any) -> str:
    """``field <op> <literal>`` with ``op`` one of eq ne gt ge lt le."""
    if op not in OPERATORS:
        raise ValueError(f"invalid operator {op!r}")
    return f"{_field(field)} {op} {literal(value)}"


def eq(field: str, value: Any) -> str:
    return cmp(field, "eq", value)


def and_(*conditions: str) -> str:
    """Conditions (built by this module) joined with ``and``, each parenthesised; empty ones dropped."""
    return _join("and", conditions)


def or_(*conditions: str) -> str:
    return _join("or", conditions)


def _join(op: str, conditions: tuple[str, ...]) -> str:
    parts = [c for c in conditions if c]
    if len(parts) == 1:
        return parts[0]
    return f" {op} ".join(f"({c})" for c in parts)


def any_of(field: str, ids: list[str]) -> str:
    """``field eq <guid> or ...`` for a list of ids (validated)."""
    return " or ".join(f"{field} eq {guid(i)}" for i in ids)


def query_params(
    select: list[str] | None = None, filter: str | None = None, orderby: str | None = None
) -> dict:
    """The `$select`/`$filter`/`$orderby` query parameters both APIs take."""
    params = {}
    if select:
        params["$select"] = ",".join(select)
    if filter:
        params["$filter"] = filter
    if orderby:
        params["$orderby"] = orderby
    return params
