"""Values checked against the destination's published contract before they are sent.

A bulk write to either service is refused whole, or record by record with bisection, when one value
breaks a rule; checking first gives one clear per-record error that names the field and the limit, and
the rest of the page is written in one request. Rules come from ``shared/contracts``: text lengths,
option values, related tables (BC country/region codes) and Dataverse minimums. Dataverse refuses
negative prices, costs and quantities; BC allows them, and BC's own integration sends them as 0 —
so does this one, and says so in the job's notes.
"""

from __future__ import annotations

from typing import Any

from shared.contracts import Property, bc_entities, dataverse_tables
from shared.errors import RecordRefused


class ValueRefused(RecordRefused):
    """The destination would refuse this value: ``field`` names the destination field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _bc_property(entity: str, field: str) -> Property | None:
    contract = bc_entities().get(entity)
    return contract.properties.get(field) if contract else None


def _country(prop: Property | None) -> bool:
    return bool(prop and prop.relation and prop.relation.startswith("countriesRegions"))


def convert_bc(entity: str, field: str, value: Any, derived) -> Any:
    """The value as BC stores it where the two sides spell it differently: a country's name becomes its
    Country/Region code. Anything it cannot convert is returned as it is (check_bc refuses it)."""
    if isinstance(value, str) and value and _country(_bc_property(entity, field)):
        return derived.country_code(value) or value
    return value


def check_bc(entity: str, field: str, value: Any, derived) -> None:
    """Raise ValueRefused if BC would refuse ``value`` for ``entity.field``."""
    prop = _bc_property(entity, field)
    text = _text(value)
    if prop is None or not text:
        return
    if _country(prop) and derived.country_code(text) != text:
        raise ValueRefused(
            field,
            f"{field} {text[:40]!r} is not a country/region code of Business Central (countriesRegions)",
        )
    if prop.max_length is not None and len(text) > prop.max_length:
        raise ValueRefused(
            field,
            f"{field} is {len(text)} characters; Business Central {entity}.{field} holds at most "
            f"{prop.max_length}",
        )
    if prop.enum and text not in prop.enum:
        raise ValueRefused(field, f"{field} {text!r} is not one of {', '.join(map(repr, prop.enum))}")


def check_crm(entity_set: str, field: str, value: Any) -> tuple[Any, str | None]:
    """(value to send to Dataverse, note) — numbers below the minimum are raised to it — or ValueRefused."""
    table = dataverse_tables().get(entity_set)
    prop = table.properties.get(field) if table else None
    if prop is None or value is None:
        return value, None
    text = _text(value)
    if text is not None and prop.max_length is not None and len(text) > prop.max_length:
        raise ValueRefused(
            field,
            f"{field} is {len(text)} characters; Dataverse {table.logical_name}.{field} holds at most "
            f"{prop.max_length}",
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        if prop.minimum is not None and value < prop.minimum:
            return prop.minimum if isinstance(value, float) else int(
                prop.minimum
            ), f"{field} below {prop.minimum:g}"
        if prop.maximum is not None and value > prop.maximum:
            raise ValueRefused(field, f"{field} {value} is above Dataverse's maximum {prop.maximum:g}")
    return value, None


def missing_required(entity_set: str, fields: dict[str, Any]) -> list[str]:
    """Fields Dataverse requires on create that ``fields`` (CRM name -> value) leaves empty."""
    table = dataverse_tables().get(entity_set)
    if table is None:
        return []
    return [name for name in table.required_on_create if fields.get(name) in (None, "")]


def missing_required_bc(entity: str, fields: dict[str, Any]) -> list[str]:
    contract = bc_entities().get(entity)
    if contract is None:
        return []
    required = [p.name for p in contract.properties.values() if p.required]
    return [name for name in required if fields.get(name) in (None, "")]
