"""The coupling tables: which BC record is coupled to which CRM record, tables of their own per mapping.

A mapping's couplings are spread over ``SHARDS`` partitions by a hash of the BC id — one partition
per mapping would cap it at one partition's throughput in Azure (~2,000 entities/s) and makes Azurite
scan the whole partition on every insert (quadratic) — and the partitions over ``TABLES`` tables, with
the failure rows in a table of their own. Azurite's cost of every insert, update and query grows with
the rows of the table (LokiJS keeps a sorted array per key, moved on every insert, and scans the whole
table for every query); at 100k customers one table per mapping held 1.5M contact rows. In Azure the
tables cost nothing; a page's range read is one query per table instead of one.

Each coupling is two rows of the same partition, ``bc_<bc id>`` and ``crm_<crm id>``, both holding the
whole coupling and always written in one transaction, so every read — by either id — sees a consistent
coupling.

One-to-one is enforced by the store, with insert-only rows: the ``bc_`` row is unique because a BC id
always hashes to the same partition; the CRM side is unique through a **claim** row per CRM id
(``RowKey`` = the CRM id) in the claim partition of that id (one of ``CLAIM_SHARDS``), inserted
before the pair. A claim left without its pair by a crash is recognised (its pair does not exist) and
taken over once it is older than ``CLAIM_STALE_SECONDS``, or at once by the same pair (a redone slice).

Other rows: in a failures partition per mapping, the failures of uncoupled records plus a retry
marker per coupling whose last sync failed — so finding what to retry reads a few rows, not every
coupling. Nobody else builds these keys. (Creates need no journal: records created in Dataverse and in
BC carry ids derived from their source's id, so a repeated create finds the record it made.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient

from shared import usage
from shared.model.status import CouplingResult
from shared.store import table_wire
from shared.store.table_wire import TransactionFailed
from shared.store.tables import (
    COUPLINGS,
    TRANSACTION_LIMIT,
    Tables,
    chunks,
    is_table_token,
    iso,
    now,
    parse_iso,
)

log = logging.getLogger("store.couplings")

BC, CRM, RETRY = "bc_", "crm_", "retry_"
# Pair and claim partitions per mapping (changing either orphans stored couplings). A slice of 5,000 new
# couplings fills about one 100-row transaction per partition (10,000 pair rows over 128 partitions,
# 5,000 claims over 64): as many transactions as fewer, fuller partitions would take, while Azurite's
# cost of an insert grows with the rows of its partition (it scans them for the key).
SHARDS = 128
CLAIM_SHARDS = 64
TABLES = 8  # tables a mapping's partitions are spread over (shard % TABLES; changing it orphans them too)
CLAIM_STALE_SECONDS = 3600  # a claim without its pair this old was left by a crash
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="couplings")
_WRITERS = 4  # concurrent transactions (different partitions) of one bulk write
POINT_READS_MAX = 400  # scattered ids read one by one while the mapping's density is not known yet
# One point read (an HTTP request; two by CRM id: claim, then pair) costs the worker and the service
# about what this many rows of a range read do (measured against Azurite: ~1.1 ms of worker CPU and
# ~0.8 ms of Azurite CPU per read, ~6 µs and ~10 µs per row of a range); see _reads_by_point.
POINT_READ_ROWS = 100
# Rows per unit of id span of each (tables, mapping, side), learnt from every range read: how many rows a
# range over a span would return, so that a page's scattered ids (matched records) are read by point
# reads once the mapping is big, where a range over their span would read most of the mapping.
_DENSITY: dict[tuple[str, str, str], float] = {}


def _span(lo: str, hi: str) -> float:
    """Share of the GUID space between two ids (1.0 for ids that are not GUIDs)."""
    try:
        return (uuid.UUID(hi).int - uuid.UUID(lo).int) / 2**128
    except ValueError:
        return 1.0


def _shard(record_id: str, shards: int = SHARDS) -> int:
    return zlib.crc32(record_id.encode()) % shards


_WIDTH = len(str(SHARDS - 1))  # digits of a partition number, so that partitions sort as numbers


def pair_partition(mapping: str, bc_id: str) -> str:
    return f"{mapping}|p{_shard(bc_id):0{_WIDTH}d}"


def claim_partition(mapping: str, crm_id: str) -> str:
    return f"{mapping}|c{_shard(crm_id, CLAIM_SHARDS):0{_WIDTH}d}"


def _pairs_range(mapping: str) -> dict[str, str]:
    return {"plo": f"{mapping}|p{0:0{_WIDTH}d}", "phi": f"{mapping}|p{SHARDS - 1:0{_WIDTH}d}"}


def _mapping_of(partition: str) -> str:
    return partition.rpartition("|")[0]


def _table_of(partition: str) -> int | None:
    """Which of the mapping's tables holds this partition (None: the failures table)."""
    tail = partition.rpartition("|")[2]
    return None if tail == "failures" else int(tail[1:]) % TABLES


def _failures_partition(mapping: str) -> str:
    return f"{mapping}|failures"


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
    last_result: str = CouplingResult.SUCCESS
    failures: int = 0
    skipped: bool = False
    last_error: str | None = None
    last_job: str | None = None
    last_synced_at: str | None = None
    stored_result: str | None = field(default=None, repr=False, compare=False)  # last_result as stored

    def __post_init__(self) -> None:
        self.bc_id, self.crm_id = self.bc_id.lower(), self.crm_id.lower()  # keys and shards use lower case

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

    @property
    def partition(self) -> str:
        return pair_partition(self.mapping, self.bc_id)

    def rows(self) -> list[dict[str, Any]]:
        row = {"PartitionKey": self.partition, "RowKey": BC + self.bc_id}
        row.update((name, getattr(self, name)) for name in _STORED)
        row["bc_hashes"] = json.dumps(self.bc_hashes, separators=(",", ":"))
        row["crm_hashes"] = json.dumps(self.crm_hashes, separators=(",", ":"))
        return [row, {**row, "RowKey": CRM + self.crm_id}]

    def claim(self) -> dict[str, Any]:
        return {
            "PartitionKey": claim_partition(self.mapping, self.crm_id),
            "RowKey": self.crm_id,
            "bc_id": self.bc_id,
            "claimed_at": iso(now()),
        }

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> Coupling:
        data = {k: v for k, v in entity.items() if k in _STORED}
        data["mapping"] = _mapping_of(entity["PartitionKey"])
        data["bc_hashes"] = json.loads(entity.get("bc_hashes") or "{}")
        data["crm_hashes"] = json.loads(entity.get("crm_hashes") or "{}")
        return cls(**data, stored_result=data.get("last_result", CouplingResult.SUCCESS))


_STORED = tuple(name for name in Coupling.__dataclass_fields__ if name not in ("mapping", "stored_result"))


def couplings_table(mapping: str, table: int | None) -> str:
    """Each mapping keeps its couplings in tables of its own, ``Couplings<name without punctuation><n>``
    for n in 0..TABLES-1 and ``…F`` for its failures: a mapping's rows are read and written together, and
    a table's size never slows another mapping."""
    return (
        COUPLINGS
        + "".join(ch for ch in mapping if ch.isalnum())[:48]
        + ("F" if table is None else str(table))
    )


def is_continuation(token: Any) -> bool:
    """Whether ``token`` has the shape of ``CouplingStore.list``'s continuation: which of the mapping's
    tables goes on, and that table's Table Storage token (None: from its start)."""
    return (
        isinstance(token, dict)
        and set(token) == {"table", "token"}
        and type(token["table"]) is int
        and 0 <= token["table"] < TABLES
        and (token["token"] is None or is_table_token(token["token"]))
    )


_EXISTING: set[str] = set()  # coupling tables this process created or found (account | table)


class CouplingStore:
    def __init__(self, tables: Tables):
        self.tables = tables

    def table(self, mapping: str, table: int | None) -> TableClient:
        """One of this mapping's tables (``table`` = shard % TABLES, None: failures), created on first use."""
        client = self.tables.client(couplings_table(mapping, table))
        key = f"{client.url}|{client.table_name}"
        if key not in _EXISTING:
            with contextlib.suppress(ResourceExistsError):
                client.create_table()
            _EXISTING.add(key)
        return client

    def table_of(self, partition: str) -> TableClient:
        """The table holding this partition."""
        return self.table(_mapping_of(partition), _table_of(partition))

    def _failures(self, mapping: str) -> TableClient:
        return self.table(mapping, None)

    def _in_every_table(self, mapping: str, read: Callable[[TableClient], list]) -> list:
        """``read`` of each of the mapping's pair tables, concurrently; the rows of all, in table order."""
        tables = [self.table(mapping, t) for t in range(TABLES)]
        return [row for rows in self._fan_out(read, tables, workers=TABLES) for row in rows]

    def _fan_out(self, fn, items: list, workers: int = 16) -> list:
        """``fn`` over ``items`` on the pool (counted for the caller's meter), results in order."""
        if len(items) <= 1:
            return [fn(i) for i in items]
        task = usage.carry(fn)
        if workers >= len(items):
            return [f.result() for f in [_POOL.submit(task, i) for i in items]]
        results: list = []
        for group in chunks(items, workers):
            results += [f.result() for f in [_POOL.submit(task, i) for i in group]]
        return results

    def _row(self, partition: str, row_key: str) -> dict[str, Any] | None:
        return table_wire.get(self.table_of(partition), partition, row_key)

    # --- reads -------------------------------------------------------------------------------
    def get(self, mapping: str, *, bc_id: str | None = None, crm_id: str | None = None) -> Coupling | None:
        if bc_id:
            bc_id = bc_id.lower()
            row = self._row(pair_partition(mapping, bc_id), BC + bc_id)
        else:
            crm_id = (crm_id or "").lower()
            # The claim names the BC id, so the pair's partition; the pair itself is the truth.
            claim = self._row(claim_partition(mapping, crm_id), crm_id)
            row = claim and self._row(pair_partition(mapping, claim["bc_id"]), CRM + crm_id)
        return Coupling.from_entity(row) if row else None

    def _get_many(self, mapping: str, prefix: str, ids: list[str]) -> dict[str, Coupling]:
        ids = sorted({i.lower() for i in ids})
        if not ids:
            return {}
        span, density_key = _span(ids[0], ids[-1]), (self.tables.prefix, mapping, prefix)
        if self._reads_by_point(len(ids), span, prefix, _DENSITY.get(density_key)):
            side = prefix[:-1] + "_id"
            usage.add("coupling_point_reads", len(ids))
            found = self._fan_out(lambda i: self.get(mapping, **{side: i}), ids)
            return {i: c for i, c in zip(ids, found, strict=True) if c is not None}
        # One range query over the page's span in every pair partition of the mapping, filtered to the
        # ids asked for: pages are read in id order, so the span is narrow where the source orders ids as
        # strings (it is wide where it orders them as SQL Server GUIDs).
        query = "PartitionKey ge @plo and PartitionKey le @phi and RowKey ge @lo and RowKey le @hi"
        params = {**_pairs_range(mapping), "lo": prefix + ids[0], "hi": prefix + ids[-1]}
        wanted = set(ids)
        scanned: list[int] = []

        def read(table: TableClient) -> list[Coupling]:
            # Kept as they stream in: a wide span returns rows of many other records (up to the whole
            # mapping), which must not all be held at once.
            kept, rows = [], 0
            for e in table_wire.query(table, query, params):
                rows += 1
                if e["RowKey"][len(prefix) :] in wanted:
                    kept.append(Coupling.from_entity(e))
            scanned.append(rows)
            usage.add("coupling_range_rows", rows)
            return kept

        found = self._in_every_table(mapping, read)
        if span > 0:
            _DENSITY[density_key] = sum(scanned) / span
        return {c.bc_id if prefix == BC else c.crm_id: c for c in found}

    @staticmethod
    def _reads_by_point(ids: int, span: float, prefix: str, density: float | None) -> bool:
        """Whether ``ids`` ids spread over ``span`` of the id space are cheaper read one by one than by one
        range over their span. A page's own ids are dense (a narrow span); the ids matched on the other
        side, or a modified sync's changes, are scattered, and a range over them reads the mapping."""
        if ids <= 40:
            return True
        if density is None:  # nothing learnt yet: a few hundred scattered ids by point
            return ids <= POINT_READS_MAX and span > 0.01
        return ids * POINT_READ_ROWS * (2 if prefix == CRM else 1) < density * span

    def by_bc(self, mapping: str, bc_ids: list[str]) -> dict[str, Coupling]:
        return self._get_many(mapping, BC, bc_ids)

    def by_crm(self, mapping: str, crm_ids: list[str]) -> dict[str, Coupling]:
        return self._get_many(mapping, CRM, crm_ids)

    def _query(self, mapping: str, where: str | None) -> tuple[str, dict[str, str]]:
        query = "PartitionKey ge @plo and PartitionKey le @phi and RowKey ge 'bc_' and RowKey lt 'bc`'"
        return (query + f" and ({where})" if where else query), _pairs_range(mapping)

    def list(
        self, mapping: str, *, where: str | None = None, page_size: int = 100, continuation: str | None = None
    ) -> tuple[list[Coupling], str | None]:
        """A page of couplings (one row per coupling: the ``bc_`` rows) and a continuation token: the
        mapping's tables are read one after the other."""
        query, params = self._query(mapping, where)
        at = json.loads(continuation) if continuation else {"table": 0, "token": None}
        if not is_continuation(at):
            raise ValueError("malformed continuation token")
        table, token = at["table"], at["token"]
        items: list[Coupling] = []
        while table < TABLES and len(items) < page_size:
            pages = (
                self.table(mapping, table)
                .query_entities(query, parameters=params, results_per_page=page_size - len(items))
                .by_page(continuation_token=token)
            )
            items += [Coupling.from_entity(e) for e in next(pages, [])]
            token = pages.continuation_token
            if not token:
                table, token = table + 1, None
        return items, json.dumps({"table": table, "token": token}) if table < TABLES else None

    def _every(self, mapping: str, where: str | None, select: list[str] | None = None):
        query, params = self._query(mapping, where)
        for t in range(TABLES):
            yield from table_wire.query(self.table(mapping, t), query, params, select=select)

    def iter_all(self, mapping: str, where: str | None = None):
        for e in self._every(mapping, where):
            yield Coupling.from_entity(e)

    def lookup_keys(self, mapping: str):
        """(bc id, crm id, bc ref) of every coupling of a mapping: what lookups translate through."""
        for e in self._every(mapping, None, select=["bc_id", "crm_id", "bc_ref"]):
            yield e["bc_id"], e["crm_id"], e.get("bc_ref")

    # --- writes ------------------------------------------------------------------------------
    def _transactions(self, groups: list[list[tuple]]) -> list[TransactionFailed | None]:
        """Run each group of operations (one partition each) as a transaction, a few at a time."""

        def run(ops: list[tuple]) -> TransactionFailed | None:
            try:
                table_wire.submit(self.table_of(ops[0][1]["PartitionKey"]), ops)
                return None
            except TransactionFailed as exc:
                return exc

        return self._fan_out(run, groups, workers=_WRITERS)

    def create(self, coupling: Coupling) -> bool:
        """Couple two records. False when either is already coupled in this mapping (nothing written)."""
        return self.create_many([coupling])[0]

    def create_many(self, couplings: list[Coupling]) -> list[bool]:
        """Couple many pairs: claims first (bulk, per claim partition), then the pairs (bulk, per pair
        partition); a transaction that fails is redone one coupling at a time to find the conflict."""
        claimed = self._bulk(
            couplings,
            key=lambda c: claim_partition(c.mapping, c.crm_id),
            ops=lambda c: [("create", c.claim())],
            one=self._claim_one,
        )
        claimed_ok = [c for c, done in zip(couplings, claimed, strict=True) if done]
        paired = self._bulk(
            claimed_ok,
            key=lambda c: c.partition,
            ops=lambda c: [("create", r) for r in c.rows()],
            one=self._pair_one,
        )
        created = {id(c): c for c, done in zip(claimed_ok, paired, strict=True) if done}
        self._markers("replace", [c for c in created.values() if c.last_result == CouplingResult.FAILED])
        for c in created.values():
            c.stored_result = c.last_result
        return [id(c) in created for c in couplings]

    def _bulk(
        self,
        items: list[Coupling],
        key: Callable[[Coupling], str],
        ops: Callable[[Coupling], list[tuple]],
        one: Callable[[Coupling], bool],
    ) -> list[bool]:
        """``ops`` of every item in transactions per partition (``key``); the items of a refused
        transaction one by one through ``one``. Whether each item got through."""
        per_item = len(ops(items[0])) if items else 1
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(items):
            groups.setdefault(key(c), []).append(i)
        batches = [g for idx in groups.values() for g in chunks(idx, TRANSACTION_LIMIT // per_item)]
        failures = self._transactions([[op for i in g for op in ops(items[i])] for g in batches])
        done = [True] * len(items)
        retry = [i for g, failed in zip(batches, failures, strict=True) if failed for i in g]
        for i, result in zip(
            retry, self._fan_out(lambda i: one(items[i]), retry, workers=_WRITERS), strict=True
        ):
            done[i] = result
        return done

    def _claim_one(self, c: Coupling) -> bool:
        """Claim ``c.crm_id`` for ``c.bc_id``: True if claimed (now or by an earlier attempt of this pair)."""
        entity = c.claim()
        for _ in range(2):  # twice: the claim may be released between our insert and our read
            try:
                table_wire.submit(self.table_of(entity["PartitionKey"]), [("create", entity)])
                return True
            except TransactionFailed as exc:
                if exc.status != 409:
                    raise
            held = self._row(entity["PartitionKey"], entity["RowKey"])
            if held is not None:
                break
        else:
            return False
        if held["bc_id"] == c.bc_id:
            return True
        if self._row(pair_partition(c.mapping, held["bc_id"]), CRM + c.crm_id) is not None:
            return False  # coupled to another BC record
        claimed_at = parse_iso(held.get("claimed_at"))
        if claimed_at and now() - claimed_at < timedelta(seconds=CLAIM_STALE_SECONDS):
            return False  # another coupling of this record may be on its way
        try:
            table_wire.submit(self.table_of(entity["PartitionKey"]), [("update", entity, held["odata.etag"])])
            return True
        except TransactionFailed:
            return False  # someone else took it over first

    def _pair_one(self, c: Coupling) -> bool:
        try:
            table_wire.submit(self.table_of(c.partition), [("create", r) for r in c.rows()])
            return True
        except TransactionFailed as exc:
            if exc.status != 409:
                raise
        held = self._row(c.partition, BC + c.bc_id)
        if held is not None and held.get("crm_id") == c.crm_id:
            return True  # an earlier attempt of this very pair got through
        self._release_claim(c)
        return False

    def _release_claim(self, c: Coupling) -> None:
        entity = c.claim()
        held = self._row(entity["PartitionKey"], entity["RowKey"])
        if held is not None and held["bc_id"] == c.bc_id:
            with contextlib.suppress(TransactionFailed):  # changed meanwhile: no longer ours
                table_wire.submit(
                    self.table_of(entity["PartitionKey"]), [("delete", entity, held["odata.etag"])]
                )

    def save_many(self, couplings: list[Coupling]) -> None:
        """Update existing couplings (both rows of each, in transactions per pair partition) and their
        retry markers: set before a failure is saved, removed after a success is. A coupling removed
        meanwhile (uncoupled while its slice ran) stays removed: updates never create rows."""
        failing = [
            c
            for c in couplings
            if c.last_result == CouplingResult.FAILED and c.stored_result != CouplingResult.FAILED
        ]
        self._markers("replace", failing)
        groups: dict[str, list[Coupling]] = {}
        for c in couplings:
            groups.setdefault(c.partition, []).append(c)
        batches = [g for group in groups.values() for g in chunks(group, TRANSACTION_LIMIT // 2)]
        gone: set[int] = set()
        for group, refused in zip(
            batches, self._transactions([self._updates(g) for g in batches]), strict=True
        ):
            if refused is not None:
                gone |= self._save_one_by_one(group, refused)
        if gone:
            log.info("%d coupling(s) were removed while being synced; not saved", len(gone))
        self._markers("delete", [c for c in failing if id(c) in gone])
        saved = [c for c in couplings if id(c) not in gone]
        self._markers(
            "delete",
            [
                c
                for c in saved
                if c.last_result != CouplingResult.FAILED and c.stored_result == CouplingResult.FAILED
            ],
        )
        for c in saved:
            c.stored_result = c.last_result

    @staticmethod
    def _updates(couplings: list[Coupling]) -> list[tuple]:
        return [("update", r) for c in couplings for r in c.rows()]

    def _save_one_by_one(self, group: list[Coupling], refused: TransactionFailed) -> set[int]:
        """A transaction of updates was refused: redo it a coupling at a time; the couplings gone."""
        if refused.status != 404:
            raise refused
        gone = set()
        for c, failed in zip(group, self._transactions([self._updates([c]) for c in group]), strict=True):
            if failed is not None and failed.status != 404:
                raise failed
            if failed is not None:
                gone.add(id(c))
        return gone

    @staticmethod
    def _marker(partition: str, c: Coupling) -> dict[str, Any]:
        return {"PartitionKey": partition, "RowKey": RETRY + c.bc_id, "crm_id": c.crm_id, "skipped": False}

    def _markers(self, kind: str, couplings: list[Coupling]) -> None:
        by_mapping: dict[str, list[Coupling]] = {}
        for c in couplings:
            by_mapping.setdefault(c.mapping, []).append(c)
        for mapping, group in by_mapping.items():
            pk = _failures_partition(mapping)
            for part in chunks(group, TRANSACTION_LIMIT):
                ops = [(kind, self._marker(pk, c)) for c in part]
                try:
                    table_wire.submit(self._failures(mapping), ops)
                except TransactionFailed as exc:
                    if kind != "delete" or exc.status != 404:
                        raise
                    for op in ops:  # one was gone already: remove the others one by one
                        with contextlib.suppress(TransactionFailed):
                            table_wire.submit(self._failures(mapping), [op])

    def delete(self, coupling: Coupling) -> None:
        """Remove the pair (one transaction), then its claim: the records stay and may be coupled again."""
        try:
            table_wire.submit(self.table_of(coupling.partition), [("delete", r) for r in coupling.rows()])
        except TransactionFailed as exc:
            if exc.status != 404:
                raise
        self._release_claim(coupling)
        if coupling.stored_result == CouplingResult.FAILED:
            self._markers("delete", [coupling])

    def delete_mapping(self, mapping: str) -> int:
        query = "PartitionKey ge @lo and PartitionKey lt @hi"
        rows: dict[str, list[str]] = {}
        params = {"lo": f"{mapping}|", "hi": f"{mapping}}}"}
        for table in [*range(TABLES), None]:
            client = self.table(mapping, table)
            for e in table_wire.query(client, query, params, select=["PartitionKey", "RowKey"]):
                rows.setdefault(e["PartitionKey"], []).append(e["RowKey"])
        refused = self._transactions(
            [
                [("delete", {"PartitionKey": pk, "RowKey": k}) for k in group]
                for pk, keys in rows.items()
                for group in chunks(keys, TRANSACTION_LIMIT)
            ]
        )
        failed = next((f for f in refused if f is not None), None)
        if failed is not None:
            raise failed
        pairs = _pairs_range(mapping)
        return sum(
            1
            for pk, keys in rows.items()
            if pairs["plo"] <= pk <= pairs["phi"]
            for k in keys
            if k.startswith(BC)
        )

    # --- failures of uncoupled records (a create that failed has no coupling to remember it) ------
    def failures(self, mapping: str, side: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Failure rows of uncoupled records: id -> {"message", "failures", "skipped"}."""
        ids = sorted({i.lower() for i in ids})
        if not ids:
            return {}
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi"
        params = {"pk": _failures_partition(mapping), "lo": f"{side}_{ids[0]}", "hi": f"{side}_{ids[-1]}"}
        wanted, prefix = set(ids), len(side) + 1
        return {
            e["RowKey"][prefix:]: {
                "message": e.get("message"),
                "failures": e.get("failures", 0),
                "skipped": e.get("skipped", False),
            }
            for e in table_wire.query(self._failures(mapping), query, params)
            if e["RowKey"][prefix:] in wanted
        }

    def save_failures(self, mapping: str, side: str, rows: dict[str, dict[str, Any]]) -> None:
        pk = _failures_partition(mapping)
        for group in chunks(sorted(rows.items()), TRANSACTION_LIMIT):
            table_wire.submit(
                self._failures(mapping),
                [("replace", {"PartitionKey": pk, "RowKey": f"{side}_{i}", **row}) for i, row in group],
            )

    def clear_failures(self, mapping: str, side: str, ids: list[str]) -> None:
        pk = _failures_partition(mapping)
        for group in chunks(sorted({i.lower() for i in ids}), TRANSACTION_LIMIT):
            table_wire.submit(
                self._failures(mapping),
                [("delete", {"PartitionKey": pk, "RowKey": f"{side}_{i}"}) for i in group],
            )

    def failed_couplings(self, mapping: str) -> list[tuple[str, str]]:
        """(bc id, crm id) of the couplings whose last sync failed (not skipped): retried first. A marker
        whose coupling is gone or no longer failed (a crash between the two writes) is dropped here."""
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        params = {"pk": _failures_partition(mapping), "lo": RETRY, "hi": RETRY[:-1] + "`"}
        rows = table_wire.query(self._failures(mapping), query, params)
        marked = [(e["RowKey"][len(RETRY) :], e["crm_id"]) for e in rows]
        found = self.by_bc(mapping, [bc_id for bc_id, _ in marked])
        failed = {bc_id for bc_id, c in found.items() if c.last_result == CouplingResult.FAILED}
        self._markers("delete", [Coupling(mapping, b, c) for b, c in marked if b not in failed])
        return [(bc_id, crm_id) for bc_id, crm_id in marked if bc_id in failed]

    def has_retries(self, mapping: str, sides: list[str]) -> bool:
        """Whether anything waits for a retry: a failed coupling, or an uncoupled record of ``sides`` whose
        create failed (and is not skipped). One small query."""
        params = {"pk": _failures_partition(mapping)}
        ranges = []
        for i, key in enumerate([RETRY, *(f"{s}_" for s in sides)]):
            params |= {f"lo{i}": key, f"hi{i}": key[:-1] + "`"}
            ranges.append(f"(RowKey ge @lo{i} and RowKey lt @hi{i})")
        query = f"PartitionKey eq @pk and ({' or '.join(ranges)}) and skipped eq false"
        rows = table_wire.query(self._failures(mapping), query, params, select=["RowKey"], top=1)
        return next(rows, None) is not None

    def failed_uncoupled(self, mapping: str, side: str, include_skipped: bool = False) -> list[str]:
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        if not include_skipped:
            query += " and skipped eq false"
        params = {"pk": _failures_partition(mapping), "lo": f"{side}_", "hi": f"{side}`"}
        rows = table_wire.query(self._failures(mapping), query, params, select=["RowKey"])
        return [e["RowKey"][len(side) + 1 :] for e in rows]
