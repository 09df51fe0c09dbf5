"""Field values: normalization for comparison, hashes of last synced values, lookup translation."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from shared.errors import RecordRefused
from shared.mappings import FieldMapping, Mapping
from shared.mappings.entities import CRM_ENTITIES
from shared.mappings.validation import COMPANY_CONTACT
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


@dataclass
class CouplingIndex:
    """All couplings of one (small or medium) mapping, for translating lookup values."""

    crm_by_bc: dict[str, str] = field(default_factory=dict)
    bc_by_crm: dict[str, str] = field(default_factory=dict)
    bc_by_ref: dict[str, str] = field(default_factory=dict)
    ref_by_bc: dict[str, str] = field(default_factory=dict)
    loaded_at: float = 0.0


class LookupResolver:
    """Translates lookup values through the couplings of related mappings.

    Indexes are cached per process and reloaded once per slice on a miss, so a related record coupled
    a moment ago (by another worker) is still found.
    """

    _cache: dict[tuple[str, str], CouplingIndex] = {}
    _lock = threading.Lock()

    def __init__(self, couplings, namespace: str, derived=None):
        self.couplings = couplings
        self.namespace = namespace  # table prefix: tests share a process across storage prefixes
        self.derived = derived  # shared.sync.derived.Derived: company contacts of customers
        self._reloaded: set[str] = set()

    def _load(self, mapping: str) -> CouplingIndex:
        index = CouplingIndex(loaded_at=time.monotonic())
        for bc_id, crm_id, bc_ref in self.couplings.lookup_keys(mapping):
            index.crm_by_bc[bc_id] = crm_id
            index.bc_by_crm[crm_id] = bc_id
            if bc_ref is not None:
                index.bc_by_ref[str(bc_ref)] = bc_id
                index.ref_by_bc[bc_id] = str(bc_ref)
        with self._lock:
            self._cache[(self.namespace, mapping)] = index
        return index

    def _index(self, mapping: str, refresh: bool = False) -> CouplingIndex:
        key = (self.namespace, mapping)
        if refresh and mapping not in self._reloaded:
            self._reloaded.add(mapping)
            return self._load(mapping)
        index = self._cache.get(key)
        return index if index is not None else self._load(mapping)

    def _find(self, mapping: str, getter) -> Any:
        found = getter(self._index(mapping))
        if found is None:
            found = getter(self._index(mapping, refresh=True))
        return found

    def with_planned(self, planned, run_id: str) -> LookupResolver:
        """This resolver, falling back to the couplings dry run ``run_id`` planned (PlannedCouplings)."""
        return PlannedLookups(self, planned, run_id)

    def to_crm(self, f: FieldMapping, bc_value: Any) -> str | None:
        """BC value (id, code or number of the related record) -> coupled CRM id, or None if empty."""
        if normalize(bc_value) == "":
            return None
        key = str(bc_value).lower() if f.bc_lookup_key == "id" else str(bc_value)
        if f.bc_lookup_key == COMPANY_CONTACT:
            customer = self.derived.customer_of_company_contact(key)
            if customer is None:
                raise LookupFailed(f"{f.bc} {bc_value!r} is not the company contact of a customer")
            crm_id = self._find(f.lookup, lambda ix: ix.crm_by_bc.get(customer))
        elif f.bc_lookup_key == "id":
            crm_id = self._find(f.lookup, lambda ix: ix.crm_by_bc.get(key))
        else:
            crm_id = self._find(f.lookup, lambda ix: ix.crm_by_bc.get(ix.bc_by_ref.get(key, "")))
        if crm_id is None:
            raise LookupFailed(f"{f.bc} {bc_value!r} is not coupled in mapping {f.lookup}")
        return crm_id

    def to_bc(self, f: FieldMapping, crm_value: Any) -> Any:
        """CRM lookup id -> the BC value the field holds (related record's id or code/number)."""
        if normalize(crm_value) == "":
            return None if f.bc_lookup_key == "id" else ""
        crm_id = str(crm_value).lower()
        bc_id = self._find(f.lookup, lambda ix: ix.bc_by_crm.get(crm_id))
        if bc_id is None:
            raise LookupFailed(f"{f.crm} {crm_value} is not coupled in mapping {f.lookup}")
        if f.bc_lookup_key == "id":
            return bc_id
        if f.bc_lookup_key == COMPANY_CONTACT:
            number = self.derived.company_contact_of_customer(bc_id)
            if number is None:
                raise LookupFailed(f"customer {bc_id} of {f.crm} {crm_value} has no company contact")
            return number
        ref = self._find(f.lookup, lambda ix: ix.ref_by_bc.get(bc_id))
        if ref is None:
            raise LookupFailed(f"{f.lookup} record {bc_id} has no {f.bc_lookup_key}")
        return ref


class PlannedLookups(LookupResolver):
    """A dry run's lookups: the real couplings first, then the ones its earlier jobs would create."""

    def __init__(self, real: LookupResolver, planned, run_id: str):
        super().__init__(real.couplings, real.namespace, real.derived)
        self.real, self.planned, self.run_id = real, planned, run_id
        self._planned: dict[str, CouplingIndex] = {}

    def _find(self, mapping: str, getter) -> Any:
        found = self.real._find(mapping, getter)
        if found is None:
            if mapping not in self._planned:
                index = CouplingIndex(loaded_at=time.monotonic())
                for bc_id, crm_id, bc_ref in self.planned.pairs(self.run_id, mapping):
                    index.crm_by_bc[bc_id], index.bc_by_crm[crm_id] = crm_id, bc_id
                    if bc_ref is not None:
                        index.bc_by_ref[bc_ref], index.ref_by_bc[bc_id] = bc_id, bc_ref
                self._planned[mapping] = index
            found = getter(self._planned[mapping])
        return found


def translate(mapping: Mapping, f: FieldMapping, value: Any, sync_pass: str, resolver: LookupResolver) -> Any:
    """Source value -> destination value for one field (lookups, value maps)."""
    if f.value_map:
        if sync_pass == "to_crm":
            return f.value_map.get(str(value), value)
        reverse = {str(v): k for k, v in f.value_map.items()}
        return reverse.get(str(value), value)
    if f.lookup:
        try:
            if f.transform == "option_value":
                return _option(mapping, f, value, sync_pass, resolver)
            return resolver.to_crm(f, value) if sync_pass == "to_crm" else resolver.to_bc(f, value)
        except LookupFailed:
            if f.clear_on_fail:
                return None
            raise
    return value


def _option(mapping: Mapping, f: FieldMapping, value: Any, sync_pass: str, resolver: LookupResolver) -> Any:
    """A choice column through its option mapping: BC record <-> coupled option <-> the option's value."""
    option_set = f"{mapping.crm_entity}.{f.crm}"
    if sync_pass == "to_crm":
        option_id = resolver.to_crm(f, value)
        if option_id is None:
            return None
        number = resolver.derived.option_value(option_set, option_id)
        if number is None:
            raise LookupFailed(f"{f.bc} {value!r} is coupled to an option {option_set} no longer has")
        return number
    if normalize(value) == "":
        return resolver.to_bc(f, None)
    found = resolver.derived.option(option_set, value)
    if found is None:
        raise LookupFailed(f"{f.crm} {value} is not an option of {option_set}")
    option_id, label = found
    try:
        return resolver.to_bc(f, option_id)
    except LookupFailed:
        raise LookupFailed(
            f"{f.crm} option {value} ({label!r}) is not coupled in mapping {f.lookup}"
        ) from None


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
