"""What both connectors answer: pages of records (with nextLinks, Dataverse deltas) and per-record write
results. A module of its own so that the clients and their helpers (option sets) share these types
without importing each other."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.connectors.errors import ConnectorError


@dataclass
class Page:
    records: list[dict[str, Any]]
    next_link: str | None = None


@dataclass
class ChangesPage:
    records: list[dict[str, Any]]
    deleted_ids: list[str] = field(default_factory=list)
    next_link: str | None = None
    delta_link: str | None = None


@dataclass
class RecordResult:
    index: int
    id: str | None
    ok: bool
    error: ConnectorError | None = None


def iter_pages(get_page, name: str, **query: Any) -> Iterator[dict[str, Any]]:
    """Every record of a query, following nextLinks (shared by both connectors)."""
    link = None
    while True:
        page = get_page(name, next_link=link, **query)
        yield from page.records
        link = page.next_link
        if not link:
            return
