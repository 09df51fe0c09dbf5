"""Field values: normalization for comparison, hashes of last synced values, lookup translation."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from shared.errors import RecordRefused
from shared.mappings import FieldMapping, Mapping
from shared.mappings.entities import CRM_ENTITIES
from shared.odata_filter import parse, properties
from shared.sync.derived import compose_person_name, split_person_name

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"


def normalize(value: Any) -> Any:
    """Equal business values compare equal across the two APIs (1000 == 1000.0, None == "")."""
    if value is None or value == "" or value == EMPTY_GUID:
        return ""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and len(value) == 36 and value.count("-") == 4:
        return value.lower()
    return value


def value_hash(value: Any) -> str:
    raw = json.dumps(normalize(value), sort_keys=True, default=str)
    return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


def crm_read_name(mapping: Mapping, f: FieldMapping) -> str:
    """The attribute a CRM record carries for this field (``_x_value`` for lookups)."""
    entity = CRM_ENTITIES[mapping.crm_entity]
    return f"_{f.crm}_value" if f.crm in entity.lookups else f.crm  # type: ignore[return-value]


def crm_select(mapping: Mapping) -> list[str]:
    """What a CRM read must $select for this mapping: key, modified on/by, state, mapped and filter fields."""
    entity = CRM_ENTITIES[mapping.crm_entity]
    names = {entity.key, "modifiedon", "_modifiedby_value", "statecode"}
    for f in mapping.fields:
        if f.crm and not f.is_constant:
            names |= (
                {"firstname", "lastname"} if f.transform == "person_name" else {crm_read_name(mapping, f)}
            )
    return sorted(names | properties(parse(mapping.crm_filter)))


def raw_value(mapping: Mapping, f: FieldMapping, record: dict[str, Any], side: str) -> Any:
    if side == "bc":
        return record.get(f.bc) if f.bc else None
    if f.transform == "person_name":  # fullname is computed by Dataverse (and its format is an org setting)
        return compose_person_name(record.get("firstname"), record.get("lastname"))
    return record.get(crm_read_name(mapping, f)) if f.crm else None


def equal(a: Any, b: Any, case_sensitive: bool = True) -> bool:
    a, b = normalize(a), normalize(b)
    if not case_sensitive and isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return a == b


class LookupFailed(RecordRefused):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def crm_payload(mapping: Mapping, f: FieldMapping, value: Any) -> dict[str, Any]:
    """The attributes to send to Dataverse for one field: lookups become ``nav@odata.bind``; a person's
    name becomes firstname + lastname; a product state also sets its status reason."""
    entity = CRM_ENTITIES[mapping.crm_entity]
    if f.transform == "person_name":
        first, last = split_person_name(value)
        return {"firstname": first, "lastname": last}
    if f.transform == "product_state":
        return {"statecode": value, "statuscode": PRODUCT_STATUS[value]}
    if f.crm in entity.lookups:
        nav, target = entity.lookups[f.crm]
        return {f"{nav}@odata.bind": (f"/{target}({value})" if value else None)}
    return {f.crm: value}  # type: ignore[dict-item]


# product statecode -> statuscode: Active 0 -> 1, Retired 1 -> 2 (product reference page)
PRODUCT_STATUS = {0: 1, 1: 2}
