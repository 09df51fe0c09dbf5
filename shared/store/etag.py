"""One optimistic-concurrency loop for every read-modify-write of a row guarded by its ETag."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from azure.core.exceptions import ResourceModifiedError

from shared.errors import Concurrency

T = TypeVar("T")
ATTEMPTS = 20


class Contention(Concurrency):
    """The row kept changing under us: every attempt lost the race to another writer."""


class Superseded(Concurrency):
    """Raised by a ``mutate`` that finds another writer already did its work: the update is dropped."""


def update_row(
    read: Callable[[], T | None],
    save: Callable[[T], T],
    mutate: Callable[[T], object],
    what: str,
    attempts: int = ATTEMPTS,
) -> T | None:
    """Read the row, apply ``mutate`` (returning False leaves it unchanged), save it under the ETag it
    was read with; re-read and re-apply when another writer got there first. None if there is no row."""
    for _ in range(attempts):
        row = read()
        if row is None:
            return None
        if mutate(row) is False:
            return row
        try:
            return save(row)
        except ResourceModifiedError:
            continue
    raise Contention(f"{what}: too much contention")
