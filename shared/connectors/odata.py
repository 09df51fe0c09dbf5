"""OData literals and conditions: the one place values become query text (quotes doubled, GUIDs,
dates and times validated), for the services' ``$filter`` and the store's table filters alike.

Callers build conditions here (``eq``, ``cmp``, ``since``, ``any_of``, ``call``) and join them with
``and_``/``or_``; a mapping's own filter text (validated by shared/odata_filter.py when saved) is the
only other text that joins them.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from typing import Any


def literal(value: Any) -> str:
    """An OData literal for ``value``; raises ValueError for anything that cannot be one safely.

    Strings are quoted with inner quotes doubled; ``uuid.UUID`` is a bare GUID (validate str ids
    with ``guid``); datetimes must be timezone-aware (naive ones are rejected, not guessed) and are
    sent as UTC with milliseconds, e.g. ``2024-01-01T00:00:00.000Z`` (a stored timestamp keeps its own
    precision: ``timestamp``); dates are ``2024-01-01``; NaN/infinity are rejected.
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
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ValueError(f"no OData literal for {type(value).__name__}")


def guid(value: Any) -> str:
    """A validated GUID literal (bare, lower case, as both APIs expect in filters and keys); raises
    ValueError for anything that is not a GUID."""
    return str(uuid.UUID(str(value)))


def canonical_guid(text: Any) -> str | None:
    """``text`` lower-cased if it is a GUID in its 8-4-4-4-12 form, else None (braces, no dashes, not a
    GUID): the form the HTTP API accepts for ids."""
    if not isinstance(text, str) or len(text) != 36:
        return None
    try:
        return guid(text)
    except ValueError:
        return None


_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})")


def timestamp(value: str | datetime) -> str:
    """A DateTimeOffset literal. A string (a stored watermark, a service's own timestamp) is checked to be
    one and kept as written, so its precision is neither rounded nor padded."""
    if isinstance(value, datetime):
        return literal(value)
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise ValueError(f"not an ISO 8601 timestamp with offset: {value!r}")
    datetime.fromisoformat(value[:19])  # month 13, hour 25 …: ValueError
    return value


OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le")


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED = {*OPERATORS, "and", "or", "not", "true", "false", "null"}


def _field(name: str) -> str:
    # Field names come from mappings, not users, but are still checked: they are never quoted, so a
    # name is an ASCII identifier and not a word the filter grammar reserves.
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in RESERVED:
        raise ValueError(f"invalid field name {name!r}")
    return name


def cmp(field: str, op: str, value: Any) -> str:
    """``field <op> <literal>`` with ``op`` one of eq ne gt ge lt le."""
    if op not in OPERATORS:
        raise ValueError(f"invalid operator {op!r}")
    return f"{_field(field)} {op} {literal(value)}"


def eq(field: str, value: Any) -> str:
    return cmp(field, "eq", value)


def since(field: str, when: str | datetime) -> str:
    """``field ge <timestamp>``: records changed at or after a watermark."""
    return f"{_field(field)} ge {timestamp(when)}"


FUNCTIONS = ("startswith", "endswith", "contains")


def call(function: str, field: str, value: str) -> str:
    """``startswith(field,'value')`` (or endswith, contains) with the value quoted."""
    if function not in FUNCTIONS:
        raise ValueError(f"invalid function {function!r}")
    if not isinstance(value, str):
        raise ValueError(f"{function} takes a string, not {type(value).__name__}")
    return f"{function}({_field(field)},{literal(value)})"


def and_(*conditions: str | None) -> str:
    """Conditions (built by this module) joined with ``and``, each parenthesised; empty ones dropped."""
    return _join("and", conditions)


def or_(*conditions: str | None) -> str:
    return _join("or", conditions)


def _join(op: str, conditions: tuple[str | None, ...]) -> str:
    parts = [c for c in conditions if c]
    if len(parts) == 1:
        return parts[0]
    return f" {op} ".join(f"({c})" for c in parts)


def any_of(field: str, ids: list[str]) -> str:
    """``field eq <guid> or ...`` for a list of ids (validated)."""
    name = _field(field)
    return " or ".join(f"{name} eq {guid(i)}" for i in ids)


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
