"""The Errors table: one row per failed record per run (source/destination ids, message, stack)."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.store import table_wire
from shared.store.tables import ERRORS, TRANSACTION_LIMIT, Tables, chunks, iso, now


@dataclass
class SyncError:
    run_id: str
    mapping: str
    sync_pass: str
    source_id: str
    destination_id: str | None
    message: str
    stack: str | None = None
    code: str | None = None
    time: str | None = None

    @property
    def error_id(self) -> str:
        """Opaque, URL-safe id of this error (run + row key), used by POST /api/errors/retry."""
        raw = f"{self.run_id}|{self.row_key}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @property
    def row_key(self) -> str:
        return f"{self.mapping}|{self.sync_pass}|{self.source_id}"

    def api(self) -> dict[str, Any]:
        return {
            "id": self.error_id,
            "run_id": self.run_id,
            "mapping": self.mapping,
            "pass": self.sync_pass,
            "source_id": self.source_id,
            "destination_id": self.destination_id,
            "message": self.message,
            "code": self.code,
            "stack": self.stack,
            "time": self.time,
        }


_ERROR_ID = re.compile(r"[A-Za-z0-9_-]{1,1400}")
_RUN_ID = re.compile(r"\d{13}-[0-9a-f]{6}")
# Characters Table Storage refuses in keys: https://learn.microsoft.com/en-us/rest/api/storageservices/understanding-the-table-service-data-model
_KEY_FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def parse_error_id(error_id: str) -> tuple[str, str]:
    """(run id, row key) of an error id; ValueError when malformed (before any storage request)."""
    if not _ERROR_ID.fullmatch(error_id or ""):
        raise ValueError("malformed error id")
    padded = error_id + "=" * (-len(error_id) % 4)
    try:
        decoded = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValueError("malformed error id") from None
    run_id, _, row_key = decoded.partition("|")
    if not _RUN_ID.fullmatch(run_id) or row_key.count("|") != 2 or _KEY_FORBIDDEN.search(row_key):
        raise ValueError("malformed error id")
    return run_id, row_key


class ErrorStore:
    def __init__(self, tables: Tables):
        self.table = tables.client(ERRORS)

    def add_many(self, errors: list[SyncError]) -> None:
        stamp = iso(now())
        by_run: dict[str, list[SyncError]] = {}
        for e in errors:
            e.time = e.time or stamp
            by_run.setdefault(e.run_id, []).append(e)
        for _run_id, group_all in by_run.items():
            for group in chunks(group_all, TRANSACTION_LIMIT):
                table_wire.submit(self.table, [("merge", self._entity(e)) for e in group])

    @staticmethod
    def _entity(e: SyncError) -> dict[str, Any]:
        entity = {
            "PartitionKey": e.run_id,
            "RowKey": e.row_key,
            "mapping": e.mapping,
            "sync_pass": e.sync_pass,
            "source_id": e.source_id,
            "destination_id": e.destination_id,
            "message": e.message[:4000],
            "stack": (e.stack or "")[-8000:],
            "code": e.code,
            "time": e.time,
        }
        return {k: v for k, v in entity.items() if v is not None}

    @staticmethod
    def _from(entity: dict[str, Any]) -> SyncError:
        return SyncError(
            run_id=entity["PartitionKey"],
            mapping=entity["mapping"],
            sync_pass=entity["sync_pass"],
            source_id=entity["source_id"],
            destination_id=entity.get("destination_id"),
            message=entity.get("message", ""),
            stack=entity.get("stack"),
            code=entity.get("code"),
            time=entity.get("time"),
        )

    def get(self, error_id: str) -> SyncError | None:
        run_id, row_key = parse_error_id(error_id)
        try:
            return self._from(self.table.get_entity(run_id, row_key))
        except ResourceNotFoundError:
            return None

    def list(
        self, run_id: str | None = None, mapping: str | None = None, limit: int = 200
    ) -> list[SyncError]:
        query, params = _where(run_id, mapping)
        found = []
        entities = (
            self.table.query_entities(query, parameters=params) if query else self.table.list_entities()
        )
        for entity in entities:
            found.append(self._from(entity))
            if len(found) >= limit:
                break
        return found

    def page(
        self,
        run_id: str | None = None,
        mapping: str | None = None,
        limit: int = 50,
        continuation: dict[str, str] | None = None,
    ) -> tuple[list[SyncError], dict[str, str] | None]:
        """One page of errors (newest run first) and the SDK continuation token of the next page."""
        query, params = _where(run_id, mapping)
        pages = self.table.query_entities(
            query or "PartitionKey ne ''", parameters=params, results_per_page=limit
        ).by_page(continuation_token=continuation)
        items = [self._from(e) for e in next(pages, [])]
        return items, pages.continuation_token or None


def _where(run_id: str | None, mapping: str | None) -> tuple[str | None, dict[str, str]]:
    """The entity query of errors of one run and/or mapping (None: every error)."""
    clauses, params = [], {}
    if run_id:
        clauses.append("PartitionKey eq @run")
        params["run"] = run_id
    if mapping:
        clauses.append("mapping eq @mapping")
        params["mapping"] = mapping
    return " and ".join(clauses) or None, params
