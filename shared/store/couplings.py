"""The Couplings table: two rows per coupling (``bc_<id>`` and ``crm_<id>``) in the mapping's partition.

Both rows carry the whole coupling and are written in one transaction, so a coupling exists on both
sides or on neither; rows are inserted with ``create`` so a record can be coupled at most once per
mapping (the store, not the caller, guarantees one-to-one). Pending-create journal rows
(``pend_<random>``, one per batch of CRM ids) journal BC creates so a retried slice never makes a twin.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared import usage
from shared.store.tables import COUPLINGS, TRANSACTION_LIMIT, Tables, chunks

BC, CRM, PENDING, FAIL = "bc_", "crm_", "pend_", "fail_"
PENDING_IDS = 800  # ids per journal row: 800 GUIDs fit the 32K-character limit of a string property
_READ_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="coupling-read")


@dataclass
class Coupling:
    mapping: str
    bc_id: str
    crm_id: str
    bc_ref: str | None = None  # the BC value other mappings look this record up by (number/code)
    bc_modified: str | None = None  # lastModifiedDateTime of the BC record when last synced
    crm_modified: str | None = None  # modifiedon of the CRM record when last synced
    bc_hashes: dict[str, str] = field(default_factory=dict)  # field key -> hash of last synced BC value
    crm_hashes: dict[str, str] = field(default_factory=dict)
    last_result: str = "success"  # success | failed | skipped
    failures: int = 0
    skipped: bool = False
    last_error: str | None = None
    last_job: str | None = None
    last_synced_at: str | None = None

    def api(self) -> dict[str, Any]:
        """The coupling as the HTTP API shows it."""
        keys = (
            "mapping",
            "bc_id",
            "crm_id",
            "last_result",
            "skipped",
            "failures",
            "last_synced_at",
            "last_error",
        )
        return {k: getattr(self, k) for k in keys}

    def _entity(self, row_key: str) -> dict[str, Any]:
        data = asdict(self)
        data["bc_hashes"] = json.dumps(self.bc_hashes, separators=(",", ":"))
        data["crm_hashes"] = json.dumps(self.crm_hashes, separators=(",", ":"))
        data.pop("mapping")
        return {
            "PartitionKey": self.mapping,
            "RowKey": row_key,
            **{k: v for k, v in data.items() if v is not None},
        }

    def rows(self) -> list[dict[str, Any]]:
        return [self._entity(BC + self.bc_id), self._entity(CRM + self.crm_id)]

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> Coupling:
        names = cls.__dataclass_fields__
        data = {k: v for k, v in entity.items() if k in names}
        data["mapping"] = entity["PartitionKey"]
        data["bc_hashes"] = json.loads(entity.get("bc_hashes") or "{}")
        data["crm_hashes"] = json.loads(entity.get("crm_hashes") or "{}")
        return cls(**data)


class CouplingStore:
    def __init__(self, tables: Tables):
        self.table: TableClient = tables.client(COUPLINGS)

    # --- reads -------------------------------------------------------------------------------
    def get(self, mapping: str, *, bc_id: str | None = None, crm_id: str | None = None) -> Coupling | None:
        row = BC + bc_id.lower() if bc_id else CRM + (crm_id or "").lower()
        try:
            return Coupling.from_entity(self.table.get_entity(mapping, row))
        except ResourceNotFoundError:
            return None

    def _get_many(self, mapping: str, prefix: str, ids: list[str]) -> dict[str, Coupling]:
        ids = sorted({i.lower() for i in ids})
        if not ids:
            return {}
        if len(ids) > 40:
            # One range query over the page's span, filtered to the ids asked for: pages of GUIDs are
            # scattered in RowKey order, so the span can be wide; only use it for big pages.
            query = "PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi"
            params = {"pk": mapping, "lo": prefix + ids[0], "hi": prefix + ids[-1]}
            wanted = set(ids)
            found = {}
            for e in self.table.query_entities(query, parameters=params):
                key = e["RowKey"][len(prefix) :]
                if key in wanted:
                    found[key] = Coupling.from_entity(e)
            return found
        futures = {
            i: _READ_POOL.submit(usage.carry(self.get), mapping, **{prefix[:-1] + "_id": i}) for i in ids
        }
        return {i: c for i, f in futures.items() if (c := f.result()) is not None}

    def by_bc(self, mapping: str, bc_ids: list[str]) -> dict[str, Coupling]:
        return self._get_many(mapping, BC, bc_ids)

    def by_crm(self, mapping: str, crm_ids: list[str]) -> dict[str, Coupling]:
        return self._get_many(mapping, CRM, crm_ids)

    def list(
        self, mapping: str, *, where: str | None = None, page_size: int = 100, continuation: str | None = None
    ) -> tuple[list[Coupling], str | None]:
        """A page of couplings (one row per coupling: the ``bc_`` rows) and a continuation token."""
        query = "PartitionKey eq @pk and RowKey ge 'bc_' and RowKey lt 'bc`'"
        if where:
            query += f" and ({where})"
        pages = self.table.query_entities(
            query, parameters={"pk": mapping}, results_per_page=page_size
        ).by_page(continuation_token=json.loads(continuation) if continuation else None)
        page = next(pages, [])
        items = [Coupling.from_entity(e) for e in page]
        token = pages.continuation_token
        return items, json.dumps(token) if token else None

    def iter_all(self, mapping: str, where: str | None = None):
        query = "PartitionKey eq @pk and RowKey ge 'bc_' and RowKey lt 'bc`'"
        if where:
            query += f" and ({where})"
        for e in self.table.query_entities(query, parameters={"pk": mapping}):
            yield Coupling.from_entity(e)

    # --- writes ------------------------------------------------------------------------------
    def create(self, coupling: Coupling) -> bool:
        """Insert both rows atomically. False when either record is already coupled in this mapping."""
        try:
            self.table.submit_transaction([("create", row) for row in coupling.rows()])
            return True
        except TableTransactionError:
            return False

    def create_many(self, couplings: list[Coupling]) -> list[bool]:
        """Insert many couplings (50 per transaction); a failed batch is retried one by one."""

        def submit(group: list[Coupling]) -> list[bool]:
            if len({c.mapping for c in group}) == 1:
                try:
                    self.table.submit_transaction([("create", r) for c in group for r in c.rows()])
                    return [True] * len(group)
                except TableTransactionError:
                    pass
            return [self.create(c) for c in group]

        # One transaction after the other: Azurite resets connections under concurrent batch requests.
        return [ok for group in chunks(couplings, TRANSACTION_LIMIT // 2) for ok in submit(group)]

    def save_many(self, couplings: list[Coupling]) -> None:
        """Update existing couplings (both rows per coupling, 50 couplings per transaction)."""
        by_mapping: dict[str, list[Coupling]] = {}
        for c in couplings:
            by_mapping.setdefault(c.mapping, []).append(c)
        groups = [g for group_all in by_mapping.values() for g in chunks(group_all, TRANSACTION_LIMIT // 2)]

        def submit(group: list[Coupling]) -> None:
            self.table.submit_transaction(
                [("upsert", r, {"mode": UpdateMode.REPLACE}) for c in group for r in c.rows()]
            )

        for group in groups:
            submit(group)

    def delete(self, coupling: Coupling) -> None:
        self.table.submit_transaction(
            [("delete", {"PartitionKey": coupling.mapping, "RowKey": r["RowKey"]}) for r in coupling.rows()]
        )

    def delete_mapping(self, mapping: str) -> int:
        keys = [
            e["RowKey"] for e in self.table.query_entities("PartitionKey eq @pk", parameters={"pk": mapping})
        ]
        for group in chunks(keys, TRANSACTION_LIMIT):
            self.table.submit_transaction([("delete", {"PartitionKey": mapping, "RowKey": k}) for k in group])
        return len([k for k in keys if k.startswith(BC)])

    # --- pending-create journal (BC creates) ---------------------------------------------------
    # One row per batch of up to PENDING_IDS ids (not per record): Table Storage charges — and Azurite
    # scans its partition — per entity, and the journal is only read back after a crash.
    def mark_pending(self, mapping: str, crm_ids: list[str], job: str) -> list[str]:
        """Journal CRM ids about to be created in BC; returns the journal's row keys for clear_pending."""
        keys = []
        for group in chunks(sorted({i.lower() for i in crm_ids}), PENDING_IDS):
            key = f"{PENDING}{uuid.uuid4().hex}"
            self.table.create_entity(
                {"PartitionKey": mapping, "RowKey": key, "job": job, "ids": ",".join(group)}
            )
            keys.append(key)
        return keys

    def pending(self, mapping: str, crm_ids: list[str]) -> dict[str, set[str]]:
        """Journal rows never cleared (a create may have happened) that hold any of ``crm_ids``:
        row key -> the ids of ``crm_ids`` it holds."""
        wanted = {i.lower() for i in crm_ids}
        if not wanted:
            return {}
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        params = {"pk": mapping, "lo": PENDING, "hi": PENDING[:-1] + "`"}
        rows = self.table.query_entities(query, parameters=params, select=["RowKey", "ids"])
        found = {e["RowKey"]: wanted & set((e.get("ids") or "").split(",")) for e in rows}
        return {k: ids for k, ids in found.items() if ids}

    def clear_pending(self, mapping: str, keys: list[str]) -> None:
        for group in chunks(keys, TRANSACTION_LIMIT):
            self.table.submit_transaction([("delete", {"PartitionKey": mapping, "RowKey": k}) for k in group])

    # --- failures of uncoupled records (a create that failed has no coupling to remember it) ------
    def _fail_key(self, side: str, record_id: str) -> str:
        return f"{FAIL}{side}_{record_id.lower()}"

    def failures(self, mapping: str, side: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Failure rows of uncoupled records: id -> {"message", "failures", "skipped"}."""
        ids = sorted({i.lower() for i in ids})
        if not ids:
            return {}
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi"
        params = {"pk": mapping, "lo": self._fail_key(side, ids[0]), "hi": self._fail_key(side, ids[-1])}
        wanted, prefix = set(ids), len(self._fail_key(side, ""))
        return {
            e["RowKey"][prefix:]: {
                "message": e.get("message"),
                "failures": e.get("failures", 0),
                "skipped": e.get("skipped", False),
            }
            for e in self.table.query_entities(query, parameters=params)
            if e["RowKey"][prefix:] in wanted
        }

    def save_failures(self, mapping: str, side: str, rows: dict[str, dict[str, Any]]) -> None:
        items = sorted(rows.items())
        for group in chunks(items, TRANSACTION_LIMIT):
            ops = [
                ("upsert", {"PartitionKey": mapping, "RowKey": self._fail_key(side, i), **row})
                for i, row in group
            ]
            self.table.submit_transaction(ops)

    def clear_failures(self, mapping: str, side: str, ids: list[str]) -> None:
        for group in chunks(sorted({i.lower() for i in ids}), TRANSACTION_LIMIT):
            ops = [("delete", {"PartitionKey": mapping, "RowKey": self._fail_key(side, i)}) for i in group]
            self.table.submit_transaction(ops)

    def failed_uncoupled(self, mapping: str, side: str, include_skipped: bool = False) -> list[str]:
        lo, hi = self._fail_key(side, ""), self._fail_key(side, "~")
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        if not include_skipped:
            query += " and skipped eq false"
        rows = self.table.query_entities(
            query, parameters={"pk": mapping, "lo": lo, "hi": hi}, select=["RowKey"]
        )
        return [e["RowKey"][len(lo) :] for e in rows]
