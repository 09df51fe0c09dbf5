"""The Mappings table: the editable mapping definitions, seeded from the defaults on first use."""

from __future__ import annotations

import contextlib
import json

from azure.core.exceptions import ResourceExistsError

from shared.mappings import Mapping, default_mappings, validate_mappings
from shared.store import table_wire
from shared.store.tables import MAPPINGS, Tables

PK = "mapping"


class MappingStore:
    def __init__(self, tables: Tables):
        self.table = tables.client(MAPPINGS)

    def _write(self, mappings: list[Mapping]) -> None:
        ops = [
            (
                "merge",
                {"PartitionKey": PK, "RowKey": m.name, "position": i, "definition": m.model_dump_json()},
            )
            for i, m in enumerate(mappings)
        ]
        stale = {
            e["RowKey"] for e in self.table.query_entities("PartitionKey eq 'mapping'", select=["RowKey"])
        }
        ops += [
            ("delete", {"PartitionKey": PK, "RowKey": name}) for name in stale - {m.name for m in mappings}
        ]
        table_wire.submit(self.table, ops)

    def all(self) -> list[Mapping]:
        """All mappings in dependency order (seeding the defaults when the table is empty)."""
        rows = sorted(self.table.query_entities("PartitionKey eq 'mapping'"), key=lambda e: e["position"])
        if not rows:
            defaults = default_mappings()
            with contextlib.suppress(ResourceExistsError):
                self._write(defaults)
            return validate_mappings(defaults)
        return validate_mappings(Mapping.model_validate(json.loads(e["definition"])) for e in rows)

    def by_name(self) -> dict[str, Mapping]:
        return {m.name: m for m in self.all()}

    def replace(self, mapping: Mapping) -> Mapping:
        """Save one edited mapping after validating the whole set with it (MappingError otherwise)."""
        current = self.all()
        updated = [mapping if m.name == mapping.name else m for m in current]
        validate_mappings(updated)
        self._write(updated)
        return mapping

    def reset(self) -> list[Mapping]:
        defaults = default_mappings()
        self._write(defaults)
        return validate_mappings(defaults)
