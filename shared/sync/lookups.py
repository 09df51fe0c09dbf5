"""Lookup fields translated through the couplings of the related mapping (currency, owner, parent account,
unit …), and ``translate``: a source value into the destination's (lookups, option sets, value maps).

Each worker process keeps an index of a related mapping's couplings, read in full once. A value the
index does not know is not a reason to read the whole mapping again — at 100k customers that is a
quarter of a million coupling rows per slice, in Azure as much as here:

- a BC or CRM **id** (most lookups, among them a contact's parent account) is read by that id from the
  coupling store: one or two point reads, and the answer joins the index; an id found uncoupled is not
  asked again in the same slice;
- a **code or number** (salesperson code, unit of measure) cannot be read by key, so the index is read
  again in full, at most once per slice: those mappings are small.

Either way a related record coupled a moment ago, by another worker or a record action, is found.

An index holds GUIDs as 128-bit integers (44 bytes, where the string takes 85) and the codes only of
mappings looked up by code: 120,000 customer couplings cost about 35 MB rather than 75 MB.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from shared import usage
from shared.mappings import FieldMapping, Mapping
from shared.mappings.validation import COMPANY_CONTACT
from shared.model.status import Pass
from shared.store.couplings import Coupling, CouplingStore
from shared.sync.values import LookupFailed, normalize

Id = int | str  # a GUID as its integer, any other id as it is


def _pack(record_id: str) -> Id:
    try:
        guid = uuid.UUID(record_id)
    except ValueError:
        return record_id
    return guid.int if str(guid) == record_id else record_id  # only the canonical form comes back as is


def _unpack(packed: Id | None) -> str | None:
    return str(uuid.UUID(int=packed)) if isinstance(packed, int) else packed


@dataclass
class CouplingIndex:
    """The couplings of one related mapping, as lookups translate through them (ids packed)."""

    with_refs: bool = False
    crm_by_bc: dict[Id, Id] = field(default_factory=dict)
    bc_by_crm: dict[Id, Id] = field(default_factory=dict)
    bc_by_ref: dict[str, Id] = field(default_factory=dict)
    ref_by_bc: dict[Id, str] = field(default_factory=dict)

    def add(self, bc_id: str, crm_id: str, bc_ref: Any) -> None:
        bc, crm = _pack(bc_id), _pack(crm_id)
        self.crm_by_bc[bc] = crm
        self.bc_by_crm[crm] = bc
        if self.with_refs and bc_ref is not None:
            self.bc_by_ref[str(bc_ref)] = bc
            self.ref_by_bc[bc] = str(bc_ref)

    def crm_id(self, bc_id: str) -> str | None:
        return _unpack(self.crm_by_bc.get(_pack(bc_id)))

    def bc_id(self, crm_id: str) -> str | None:
        return _unpack(self.bc_by_crm.get(_pack(crm_id)))

    def bc_id_of_ref(self, ref: str) -> str | None:
        return _unpack(self.bc_by_ref.get(ref))

    def ref(self, bc_id: str) -> str | None:
        return self.ref_by_bc.get(_pack(bc_id))


class LookupResolver:
    """Translates lookup values through the couplings of related mappings (see the module docstring).
    One resolver serves one slice; the indexes it reads are shared by the process."""

    _cache: dict[tuple[str, str], CouplingIndex] = {}
    _lock = threading.Lock()

    def __init__(self, couplings: CouplingStore, namespace: str, derived=None):
        self.couplings = couplings
        self.namespace = namespace  # table prefix: tests share a process across storage prefixes
        self.derived = derived  # shared.sync.derived.Derived: company contacts of customers
        self._reloaded: set[str] = set()
        self._uncoupled: set[tuple[str, str, str]] = set()  # (mapping, side, id) read and not found

    def _load(self, mapping: str, with_refs: bool = False) -> CouplingIndex:
        usage.add("lookup_index_loads")
        index = CouplingIndex(with_refs=with_refs)
        for bc_id, crm_id, bc_ref in self.couplings.lookup_keys(mapping):
            index.add(bc_id, crm_id, bc_ref)
        with self._lock:
            self._cache[(self.namespace, mapping)] = index
        return index

    def _index(self, mapping: str, with_refs: bool = False) -> CouplingIndex:
        index = self._cache.get((self.namespace, mapping))
        if index is None or (with_refs and not index.with_refs):
            index = self._load(mapping, with_refs or (index is not None and index.with_refs))
        return index

    def _coupling(self, mapping: str, side: str, record_id: str) -> Coupling | None:
        """The coupling of this BC (``side`` "bc") or CRM id, read from the store; None when uncoupled."""
        if (mapping, side, record_id) in self._uncoupled:
            return None
        usage.add("lookup_point_reads")
        c = self.couplings.get(mapping, **{f"{side}_id": record_id})
        if c is None:
            self._uncoupled.add((mapping, side, record_id))
            return None
        self._index(mapping).add(c.bc_id, c.crm_id, c.bc_ref)
        return c

    def crm_id_of(self, mapping: str, bc_id: str) -> str | None:
        found = self._index(mapping).crm_id(bc_id)
        if found is None and (c := self._coupling(mapping, "bc", bc_id)):
            found = c.crm_id
        return found

    def bc_id_of(self, mapping: str, crm_id: str) -> str | None:
        found = self._index(mapping).bc_id(crm_id)
        if found is None and (c := self._coupling(mapping, "crm", crm_id)):
            found = c.bc_id
        return found

    def bc_id_of_ref(self, mapping: str, ref: str) -> str | None:
        found = self._index(mapping, with_refs=True).bc_id_of_ref(ref)
        if found is None and mapping not in self._reloaded:
            self._reloaded.add(mapping)
            found = self._load(mapping, with_refs=True).bc_id_of_ref(ref)
        return found

    def ref_of(self, mapping: str, bc_id: str) -> str | None:
        found = self._index(mapping, with_refs=True).ref(bc_id)
        if found is None and (c := self._coupling(mapping, "bc", bc_id)) and c.bc_ref is not None:
            found = str(c.bc_ref)
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
            crm_id = self.crm_id_of(f.lookup, customer)
        elif f.bc_lookup_key == "id":
            crm_id = self.crm_id_of(f.lookup, key)
        else:
            bc_id = self.bc_id_of_ref(f.lookup, key)
            crm_id = self.crm_id_of(f.lookup, bc_id) if bc_id else None
        if crm_id is None:
            raise LookupFailed(f"{f.bc} {bc_value!r} is not coupled in mapping {f.lookup}")
        return crm_id

    def to_bc(self, f: FieldMapping, crm_value: Any) -> Any:
        """CRM lookup id -> the BC value the field holds (related record's id or code/number)."""
        if normalize(crm_value) == "":
            return None if f.bc_lookup_key == "id" else ""
        crm_id = str(crm_value).lower()
        bc_id = self.bc_id_of(f.lookup, crm_id)
        if bc_id is None:
            raise LookupFailed(f"{f.crm} {crm_value} is not coupled in mapping {f.lookup}")
        if f.bc_lookup_key == "id":
            return bc_id
        if f.bc_lookup_key == COMPANY_CONTACT:
            number = self.derived.company_contact_of_customer(bc_id)
            if number is None:
                raise LookupFailed(f"customer {bc_id} of {f.crm} {crm_value} has no company contact")
            return number
        ref = self.ref_of(f.lookup, bc_id)
        if ref is None:
            raise LookupFailed(f"{f.lookup} record {bc_id} has no {f.bc_lookup_key}")
        return ref


class PlannedLookups(LookupResolver):
    """A dry run's lookups: the real couplings first, then the ones its earlier jobs would create."""

    def __init__(self, real: LookupResolver, planned, run_id: str):
        super().__init__(real.couplings, real.namespace, real.derived)
        self.real, self.planned, self.run_id = real, planned, run_id
        self._planned: dict[str, CouplingIndex] = {}

    def _planned_index(self, mapping: str) -> CouplingIndex:
        if mapping not in self._planned:
            index = CouplingIndex(with_refs=True)
            for bc_id, crm_id, bc_ref in self.planned.pairs(self.run_id, mapping):
                index.add(bc_id, crm_id, bc_ref)
            self._planned[mapping] = index
        return self._planned[mapping]

    def crm_id_of(self, mapping: str, bc_id: str) -> str | None:
        return self.real.crm_id_of(mapping, bc_id) or self._planned_index(mapping).crm_id(bc_id)

    def bc_id_of(self, mapping: str, crm_id: str) -> str | None:
        return self.real.bc_id_of(mapping, crm_id) or self._planned_index(mapping).bc_id(crm_id)

    def bc_id_of_ref(self, mapping: str, ref: str) -> str | None:
        return self.real.bc_id_of_ref(mapping, ref) or self._planned_index(mapping).bc_id_of_ref(ref)

    def ref_of(self, mapping: str, bc_id: str) -> str | None:
        return self.real.ref_of(mapping, bc_id) or self._planned_index(mapping).ref(bc_id)


def translate(mapping: Mapping, f: FieldMapping, value: Any, sync_pass: str, resolver: LookupResolver) -> Any:
    """Source value -> destination value for one field (lookups, value maps)."""
    if f.value_map:
        if sync_pass == Pass.TO_CRM:
            return f.value_map.get(str(value), value)
        reverse = {str(v): k for k, v in f.value_map.items()}
        return reverse.get(str(value), value)
    if f.lookup:
        try:
            if f.transform == "option_value":
                return _option(mapping, f, value, sync_pass, resolver)
            return resolver.to_crm(f, value) if sync_pass == Pass.TO_CRM else resolver.to_bc(f, value)
        except LookupFailed:
            if f.clear_on_fail:
                return None
            raise
    return value


def _option(mapping: Mapping, f: FieldMapping, value: Any, sync_pass: str, resolver: LookupResolver) -> Any:
    """A choice column through its option mapping: BC record <-> coupled option <-> the option's value."""
    option_set = f"{mapping.crm_entity}.{f.crm}"
    if sync_pass == Pass.TO_CRM:
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
