"""The entities a mapping may name, and their fields (validation of mappings and filters).

Derived from the services' contracts in ``shared/contracts``: BC entity sets (standard API v2.0 and the
project's own API pages) and Dataverse tables. A mapping naming a field that is not listed is rejected
with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.connectors.option_sets import KEY as OPTION_KEY
from shared.connectors.option_sets import OPTION_SETS
from shared.contracts import bc_entities, dataverse_tables

BC_COMMON = ("id", "lastModifiedDateTime")
LOOKUP_TYPES = ("Lookup", "Owner", "Customer")

BC_ENTITIES: dict[str, tuple[str, ...]] = {
    name: tuple(p for p in entity.properties if p not in BC_COMMON) for name, entity in bc_entities().items()
}


@dataclass(frozen=True)
class CrmEntity:
    entity_set: str
    logical_name: str
    fields: tuple[str, ...]
    # lookup attribute -> (navigation property used in @odata.bind, target entity set)
    lookups: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.logical_name}id"

    def all_fields(self) -> set[str]:
        common = {self.key, "createdon", "modifiedon", "versionnumber", "statecode", "statuscode"}
        lookups = {f"_{name}_value" for name in self.lookups} | {"_modifiedby_value", "_createdby_value"}
        return set(self.fields) | common | lookups | set(self.lookups)


def _crm_entities() -> dict[str, CrmEntity]:
    tables = dataverse_tables()
    set_of = {t.logical_name: t.entity_set for t in tables.values()}
    out = {}
    for entity_set, table in tables.items():
        lookups, fields = {}, []
        for name, prop in table.properties.items():
            if name == table.key:
                continue
            if prop.type in LOOKUP_TYPES and prop.targets:
                target = set_of.get(prop.targets[0], f"{prop.targets[0]}s")
                lookups[name] = (table.bind.get(name, name), target)
            else:
                fields.append(name)
        out[entity_set] = CrmEntity(entity_set, table.logical_name, tuple(fields), lookups)
    # Option sets read as entity sets (shared/connectors/option_sets.py): records {optionid, value, label}.
    for name in OPTION_SETS:
        out[name] = CrmEntity(name, OPTION_KEY.removesuffix("id"), ("value", "label"))
    return out


CRM_ENTITIES: dict[str, CrmEntity] = _crm_entities()


def bc_fields(entity: str) -> set[str]:
    return set(BC_ENTITIES[entity]) | set(BC_COMMON)
