"""Mapping validation (clear, field-named errors) and the dependency DAG."""

from __future__ import annotations

from collections.abc import Iterable

from shared.contracts import bc_entities, dataverse_tables
from shared.errors import InvalidInput
from shared.mappings.entities import BC_ENTITIES, CRM_ENTITIES, bc_fields
from shared.mappings.model import Mapping
from shared.model.status import Pass
from shared.odata_filter import FilterError, compile_filter


class MappingError(InvalidInput):
    """A mapping (or set of mappings) is invalid. ``field`` names the offending part."""

    def __init__(self, message: str, field: str | None = None, mapping: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.mapping = mapping


def _check_one(m: Mapping, names: dict[str, Mapping]) -> None:
    def fail(message: str, field: str) -> None:
        raise MappingError(f"{m.name}: {message}", field=field, mapping=m.name)

    if m.bc_entity not in BC_ENTITIES:
        fail(f"unknown Business Central entity {m.bc_entity!r}", "bc_entity")
    if m.crm_entity not in CRM_ENTITIES:
        fail(f"unknown Dataverse entity set {m.crm_entity!r}", "crm_entity")
    if m.create_new_if_no_match and m.direction == "FromIntegrationTable":
        # As BC's Match Based Coupling Criteria page: the option exists only where BC records are the source.
        fail("create_new_if_no_match needs a direction that syncs toward Dataverse", "create_new_if_no_match")
    bc_known = bc_fields(m.bc_entity)
    crm = CRM_ENTITIES[m.crm_entity]
    crm_known = crm.all_fields()
    for attr, text, known in (("bc_filter", m.bc_filter, bc_known), ("crm_filter", m.crm_filter, crm_known)):
        try:
            compile_filter(text, known)
        except FilterError as exc:
            fail(f"invalid {attr}: {exc}", attr)
    if m.bc_ref_field and m.bc_ref_field not in bc_known:
        fail(f"unknown bc_ref_field {m.bc_ref_field!r}", "bc_ref_field")
    for dep in m.depends_on:
        if dep not in names:
            fail(f"depends on unknown mapping {dep!r}", "depends_on")
        if dep == m.name:
            fail("a mapping cannot depend on itself", "depends_on")
    for i, f in enumerate(m.fields):
        where = f"fields[{i}]"
        if f.bc is None and f.crm is None:
            fail(f"{where} names neither a BC nor a CRM field", where)
        if f.bc is not None and f.bc not in bc_known:
            fail(f"{where}: unknown BC field {f.bc!r} of {m.bc_entity}", f"{where}.bc")
        if f.crm is not None and f.crm not in crm_known:
            fail(f"{where}: unknown CRM field {f.crm!r} of {m.crm_entity}", f"{where}.crm")
        if f.is_constant and f.bc is not None and f.crm is not None:
            fail(f"{where}: a constant names only the destination field", f"{where}.constant")
        if f.match_priority is not None and (f.bc is None or f.crm is None):
            fail(f"{where}: a match field needs both a BC and a CRM field", f"{where}.match_priority")
        _check_writable(m, f, where, fail)
        if f.transform is not None:
            _check_transform(m, f, where, fail)
        if f.lookup is not None:
            related = names.get(f.lookup)
            if related is None:
                fail(f"{where}: lookup to missing mapping {f.lookup!r}", f"{where}.lookup")
            if f.transform == "option_value":
                _check_option_lookup(m, f, related, where, fail)
            elif f.crm not in crm.lookups:
                fail(f"{where}: {f.crm!r} is not a lookup field of {m.crm_entity}", f"{where}.crm")
            target = crm.lookups[f.crm][1] if f.transform != "option_value" else related.crm_entity
            if target != related.crm_entity and not (f.transform == "base_uom" and target == "uoms"):
                fail(f"{where}: {f.crm!r} points at {target}, not at {related.crm_entity}", f"{where}.lookup")
            keys = ["id", related.bc_ref_field]
            if related.bc_entity == "customers":
                keys.append(COMPANY_CONTACT)
            if f.bc_lookup_key not in keys:
                fail(
                    f"{where}: bc_lookup_key {f.bc_lookup_key!r} is not one of "
                    f"{', '.join(repr(k) for k in keys if k)} for {f.lookup}",
                    f"{where}.bc_lookup_key",
                )
            if f.lookup not in transitive_dependencies(m.name, names):
                fail(f"{where}: lookup via {f.lookup!r} needs {f.lookup!r} in depends_on", "depends_on")


COMPANY_CONTACT = "companyContact"  # the BC value is the number of the customer's company contact


def _check_writable(m: Mapping, f, where: str, fail) -> None:
    """A field that flows must land on a property the destination lets clients write."""
    if m.allows(Pass.TO_CRM) and f.flows(Pass.TO_CRM) and f.crm and f.transform != "person_name":
        table = dataverse_tables().get(m.crm_entity)
        prop = table.properties.get(f.crm) if table is not None else None
        if prop is not None and prop.read_only:
            fail(f"{where}: {f.crm!r} is read-only in Dataverse", f"{where}.crm")
    if m.allows(Pass.FROM_CRM) and f.flows(Pass.FROM_CRM) and f.bc and f.transform != "new_code":
        prop = bc_entities()[m.bc_entity].properties.get(f.bc)
        if prop is not None and prop.read_only:
            fail(f"{where}: {f.bc!r} is read-only in Business Central", f"{where}.bc")


TO_CRM_ONLY = ("exchange_rate", "or_code", "decimal_places", "base_uom", "product_state")


def _check_transform(m: Mapping, f, where: str, fail) -> None:
    t, field = f.transform, f"{where}.transform"
    table = dataverse_tables().get(m.crm_entity)
    crm_props = table.properties if table is not None else {}
    if t == "person_name" and not (f.crm == "fullname" and {"firstname", "lastname"} <= set(crm_props)):
        fail(f"{where}: person_name maps a BC name to fullname of a table with firstname/lastname", field)
    if t in TO_CRM_ONLY and f.flows(Pass.FROM_CRM):
        fail(f"{where}: {t} only flows to Dataverse (direction ToIntegrationTable)", field)
    if t == "exchange_rate" and (f.bc != "code" or m.bc_entity != "currencies"):
        fail(f"{where}: exchange_rate needs the BC currency code (currencies.code)", field)
    if t == "base_uom" and not (f.lookup and f.crm == "defaultuomid"):
        fail(f"{where}: base_uom resolves a unit group lookup into defaultuomid", field)
    if t == "product_state" and f.crm != "statecode":
        fail(f"{where}: product_state writes statecode", field)
    if t == "option_value" and not f.lookup:
        fail(f"{where}: option_value translates through an option mapping (set lookup)", field)
    if t == "new_code" and (f.flows(Pass.TO_CRM) or not f.bc or f.match_priority is not None):
        fail(f"{where}: new_code makes a BC code from a CRM value (direction FromIntegrationTable)", field)


def _check_option_lookup(m: Mapping, f, related: Mapping, where: str, fail) -> None:
    """An option field names a choice column whose option set is the related (option) mapping's table."""
    table = dataverse_tables().get(m.crm_entity)
    prop = table.properties.get(f.crm or "") if table is not None else None
    if prop is None or prop.type != "Picklist":
        fail(f"{where}: option_value needs a choice (Picklist) column of {m.crm_entity}", f"{where}.crm")
    if related.crm_entity != f"{m.crm_entity}.{f.crm}":
        fail(
            f"{where}: {f.crm!r} takes options of {m.crm_entity}.{f.crm}, not of {related.crm_entity}",
            f"{where}.lookup",
        )


def transitive_dependencies(name: str, names: dict[str, Mapping]) -> set[str]:
    seen: set[str] = set()
    stack = list(names[name].depends_on) if name in names else []
    while stack:
        dep = stack.pop()
        if dep not in seen and dep in names:
            seen.add(dep)
            stack.extend(names[dep].depends_on)
    return seen


def topological_order(mappings: Iterable[Mapping]) -> list[str]:
    """Dependency order; ties keep the given order (so the seed order is reproduced)."""
    mappings = list(mappings)
    position = {m.name: i for i, m in enumerate(mappings)}
    pending = {m.name: {d for d in m.depends_on if d in position} for m in mappings}
    order: list[str] = []
    while pending:
        ready = sorted((n for n, deps in pending.items() if not deps), key=position.__getitem__)
        if not ready:
            cycle = " -> ".join(sorted(pending))
            raise MappingError(f"dependency cycle among: {cycle}", field="depends_on")
        name = ready[0]
        order.append(name)
        del pending[name]
        for deps in pending.values():
            deps.discard(name)
    return order


def validate_mappings(mappings: Iterable[Mapping]) -> list[Mapping]:
    """Validate a whole set (names unique, each mapping, no cycles); returns it in dependency order."""
    mappings = list(mappings)
    names: dict[str, Mapping] = {}
    for m in mappings:
        if m.name in names:
            raise MappingError(f"duplicate mapping name {m.name!r}", field="name", mapping=m.name)
        names[m.name] = m
    order = topological_order(mappings)
    for m in mappings:
        _check_one(m, names)
    return [names[n] for n in order]
