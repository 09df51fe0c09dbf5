"""The PlannedCouplings table: the couplings a dry run would create, so the dry runs of dependent
mappings resolve their lookups as the real run would (a contact's company that the CUSTOMER job would
create or match is not reported as "not coupled").

PartitionKey = run id (retention deletes it with the run), RowKey = ``<mapping>|<bc id>``; properties
crm_id and bc_ref (the code/number, when known before the write). Written only by dry runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from shared.store import table_wire
from shared.store.tables import PLANNED, TRANSACTION_LIMIT, Tables, chunks


class PlannedPair(NamedTuple):
    bc_id: str
    crm_id: str
    bc_ref: str | None = None


class PlannedCouplings:
    def __init__(self, tables: Tables):
        self.table = tables.client(PLANNED)

    def add(self, run_id: str, mapping: str, pairs: Iterable[PlannedPair]) -> None:
        """Upserts (a slice retried after a crash writes the same rows again)."""
        rows = [
            {"PartitionKey": run_id, "RowKey": f"{mapping}|{p.bc_id}", "crm_id": p.crm_id, "bc_ref": p.bc_ref}
            for p in pairs
        ]
        for chunk in chunks(rows, TRANSACTION_LIMIT):
            self.table.submit_transaction([("upsert", row) for row in chunk])

    def pairs(self, run_id: str, mapping: str) -> list[PlannedPair]:
        rows = table_wire.query(
            self.table,
            "PartitionKey eq @run and RowKey gt @lo and RowKey lt @hi",
            {"run": run_id, "lo": f"{mapping}|", "hi": f"{mapping}}}"},  # "}" sorts after every id character
            select=["RowKey", "crm_id", "bc_ref"],
        )
        return [PlannedPair(r["RowKey"].split("|", 1)[1], r["crm_id"], r.get("bc_ref")) for r in rows]
