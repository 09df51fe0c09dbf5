"""Table names and table clients. Every other store module gets its TableClient from here."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient

from shared.store.clients import shared_table_service

MAPPINGS = "Mappings"
MAPPING_STATE = "MappingState"
COUPLINGS = "Couplings"  # one table per mapping: Couplings<mapping> (shared.store.couplings)
RUNS = "Runs"
JOBS = "Jobs"
ERRORS = "Errors"
PLANNED = "PlannedCouplings"  # what a dry run would couple (shared.store.planned)
ALL_TABLES = (MAPPINGS, MAPPING_STATE, RUNS, JOBS, ERRORS, PLANNED)

SYNC_QUEUE = "sync-mappings"
TRANSACTION_LIMIT = 100  # Table Storage: at most 100 operations per batch, one partition


class Tables:
    """The app's tables in one storage account (optionally name-prefixed, for tests)."""

    def __init__(self, service: TableServiceClient | None = None, prefix: str | None = None):
        from shared.settings import get_settings

        self.service = service or shared_table_service()
        self.prefix = get_settings().table_prefix if prefix is None else prefix
        self._clients: dict[str, TableClient] = {}

    def client(self, name: str) -> TableClient:
        if name not in self._clients:
            self._clients[name] = self.service.get_table_client(self.prefix + name)
        return self._clients[name]

    def ensure(self) -> None:
        for name in ALL_TABLES:
            with contextlib.suppress(ResourceExistsError):
                self.service.create_table(self.prefix + name)


def now() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def is_table_token(token: Any) -> bool:
    """Whether ``token`` has the shape of a Table Storage continuation token: the next partition and/or
    row key (each at most 1 KiB, the service's key limit), nothing else."""
    return (
        isinstance(token, dict)
        and bool(token)
        and set(token) <= {"PartitionKey", "RowKey"}
        and all(v is None or (isinstance(v, str) and len(v) <= 1024) for v in token.values())
    )


def chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]
