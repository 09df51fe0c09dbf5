"""Match-based coupling: find the destination record(s) whose match fields equal a source record's.

Match fields are grouped by priority (lower first); all fields of a group must match; case-insensitive
unless a field says otherwise. The destination side is indexed once per (run, mapping, pass) and
process, so matching a page costs no requests per record.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from shared.mappings import FieldMapping, Mapping
from shared.sync.endpoint import endpoints
from shared.sync.values import normalize


def _key(values: list[Any], fields: list[FieldMapping]) -> bytes | None:
    """The match key of one group of values: a 128-bit digest of the normalized values (a third of the
    memory of the values themselves; a false match is as likely as a GUID collision)."""
    out = []
    for v, f in zip(values, fields, strict=True):
        v = normalize(v)
        if v == "":
            return None  # an empty criterion never matches (it would couple unrelated records)
        out.append(v if f.case_sensitive or not isinstance(v, str) else v.casefold())
    return hashlib.blake2b(repr(out).encode(), digest_size=16).digest()


WHOLE_RECORDS = 10_000  # per index: ~2.5 KB each, so at most ~25 MB of whole records

# An index entry is a whole record (a dict) or, beyond WHOLE_RECORDS, only the record's id (a str); a
# key that several records share holds a list of entries. Building the index over 200,000 BC contacts
# grew a process by 218 MB with tuple keys, a dict per record, 25,000 whole records and page bodies
# left to the cyclic GC (see connectors.http); by 108 MB now.
Entry = dict[str, Any] | str


def _as_list(held: Entry | list[Entry]) -> list[Entry]:
    return held if isinstance(held, list) else [held]


class MatchIndex:
    def __init__(
        self,
        ctx,
        mapping: Mapping,
        sync_pass: str,
        groups: list[list[FieldMapping]] | None = None,
    ):
        self.ctx = ctx
        self.m = mapping
        self.destination = endpoints(ctx, mapping, sync_pass)[1]
        self.groups = groups if groups is not None else mapping.match_groups()
        self._claimed: set[str] = set()
        self._lock = threading.Lock()
        self._index: list[dict[bytes, Entry | list[Entry]]] | None = None
        self._whole: set[str] = set()  # ids of records the index holds whole (not cut to match fields)

    def _build(self) -> list[dict[bytes, Entry | list[Entry]]]:
        index: list[dict[bytes, Entry | list[Entry]]] = [{} for _ in self.groups]
        self._whole = set()
        if not self.groups:
            return index
        id_key = self.destination.key
        # Whole records (every field the mapping syncs), so a matched pair is synced from the index
        # without reading its destination record again.
        for record in self.destination.index_records(self.groups):
            entry: Entry = record
            if len(self._whole) < WHOLE_RECORDS:
                self._whole.add(str(record[id_key]).lower())
            else:  # bound memory on big tables: keep only the id, read the record again when matched
                entry = str(record[id_key])
            for gi, group in enumerate(self.groups):
                key = _key([self.destination.value(f, record) for f in group], group)
                if key is None:
                    continue
                held = index[gi].get(key)
                if held is None:
                    index[gi][key] = entry
                elif isinstance(held, list):
                    held.append(entry)
                else:
                    index[gi][key] = [held, entry]
        return index

    def whole(self, dst_id: str) -> bool:
        """Whether the index holds this destination record with every field the mapping syncs."""
        return dst_id in self._whole

    def refresh(self) -> None:
        with self._lock:
            self._index = self._build()

    def candidate_groups(self, record: dict[str, Any], page) -> list[list[dict[str, Any]] | None] | None:
        """Per match priority (lowest first) the destination records matching ``record``; None for a
        priority with an empty value (BC ignores empty match values). None = no criteria at all."""
        if not self.groups:
            return None
        with self._lock:
            if self._index is None:
                self._index = self._build()
        out = []
        for gi, group in enumerate(self.groups):
            key = _key([page.translated(f, record) for f in group], group)
            if key is None:
                out.append(None)
                continue
            held = self._index[gi].get(key, [])
            entries = [e if isinstance(e, dict) else {self.destination.key: e} for e in _as_list(held)]
            out.append([r for r in entries if page.dst_id(r) not in self._claimed])
        return out

    def claim(self, dst_id: str) -> bool:
        """Reserve a destination record for one source record of this run (False if taken)."""
        with self._lock:
            if dst_id in self._claimed:
                return False
            self._claimed.add(dst_id)
            return True
