"""The Mappings table: the editable mapping definitions, seeded from the defaults on first use.

One row per mapping. An edit writes only its own row, guarded by that row's ETag (If-Match), so two
edits can never silently overwrite each other: an edit that lost the race is re-applied to the fresh
row when the winner changed other properties, and refused (MappingConflict) when the winner changed
the same ones.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.errors import Concurrency
from shared.mappings import Mapping, default_mappings, validate_mappings
from shared.store import table_wire
from shared.store.tables import MAPPINGS, Tables

PK = "mapping"
ATTEMPTS = 20


class MappingConflict(Concurrency):
    """The mapping changed between the caller's read and its write, in the properties it edits."""

    def __init__(self, name: str, properties: list[str]):
        what = ", ".join(properties) if properties else "the mapping"
        super().__init__(f"mapping {name} was changed by someone else meanwhile ({what}); read it again")
        self.name = name
        self.properties = properties


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

    def _seed(self) -> None:
        """Insert the defaults in one transaction; if any row exists already, someone else seeded."""
        ops = [
            (
                "create",
                {"PartitionKey": PK, "RowKey": m.name, "position": i, "definition": m.model_dump_json()},
            )
            for i, m in enumerate(default_mappings())
        ]
        with contextlib.suppress(table_wire.TransactionFailed, ResourceExistsError):
            table_wire.submit(self.table, ops)

    def _rows(self) -> list[dict]:
        rows = sorted(self.table.query_entities("PartitionKey eq 'mapping'"), key=lambda e: e["position"])
        if not rows:
            self._seed()
            rows = sorted(self.table.query_entities("PartitionKey eq 'mapping'"), key=lambda e: e["position"])
        return rows

    def all(self) -> list[Mapping]:
        """All mappings in dependency order (seeding the defaults when the table is empty)."""
        return validate_mappings(Mapping.model_validate(json.loads(e["definition"])) for e in self._rows())

    def by_name(self) -> dict[str, Mapping]:
        return {m.name: m for m in self.all()}

    def update(self, name: str, mutate: Callable[[Mapping], Mapping | None]) -> Mapping | None:
        """Apply ``mutate(fresh mapping) -> new mapping`` (None = leave it) to one row under its ETag.

        Re-reads and re-applies when another writer got there first. Returns the saved mapping
        (None when there is no such mapping); MappingError when the set is invalid with it;
        MappingConflict when ``mutate`` raises it or the row keeps changing.
        """
        for _ in range(ATTEMPTS):
            rows = self._rows()
            current = [Mapping.model_validate(json.loads(e["definition"])) for e in rows]
            index = next((i for i, m in enumerate(current) if m.name == name), None)
            if index is None:
                return None
            updated = mutate(current[index])
            if updated is None or updated == current[index]:
                return current[index]
            validate_mappings([updated if i == index else m for i, m in enumerate(current)])
            row = rows[index]
            entity = {
                "PartitionKey": PK,
                "RowKey": name,
                "position": row["position"],
                "definition": updated.model_dump_json(),
            }
            try:
                self.table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # another edit (or a reset) won: read again
            return updated
        raise MappingConflict(name, [])

    def replace(self, mapping: Mapping, base: Mapping | None = None) -> Mapping:
        """Save one edited mapping after validating the whole set with it (MappingError otherwise).

        ``base`` is the mapping as the caller read it before editing. If the stored row differs from
        it, the caller's changes (the properties where ``mapping`` differs from ``base``) are applied
        to the stored row instead, unless the stored row changed one of them too: MappingConflict.
        Without ``base`` the mapping is written as given over whatever is stored.
        """
        fields = list(Mapping.model_fields)
        edited = [k for k in fields if base is not None and getattr(mapping, k) != getattr(base, k)]

        def mutate(fresh: Mapping) -> Mapping:
            if base is None or fresh == base:
                return mapping
            clash = [k for k in edited if getattr(fresh, k) != getattr(base, k)]
            if clash:
                raise MappingConflict(mapping.name, clash)
            return Mapping.model_validate(
                {**fresh.model_dump(), **{k: mapping.model_dump()[k] for k in edited}}
            )

        saved = self.update(mapping.name, mutate)
        if saved is None:
            raise MappingConflict(mapping.name, ["name"])
        return saved

    def reset(self) -> list[Mapping]:
        defaults = default_mappings()
        self._write(defaults)
        return validate_mappings(defaults)
