"""Resource usage of one slice: API requests per service and Table Storage requests / entity operations.

A meter is bound to the current context, so slices running concurrently in one worker process count
separately; code that fans out to a thread pool wraps the task with ``carry`` so it counts for the caller.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")


class Meter:
    def __init__(self) -> None:
        self._counts: Counter = Counter()
        self._lock = threading.Lock()  # pool threads of one slice add concurrently

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


_current: ContextVar[Meter | None] = ContextVar("usage_meter", default=None)


@contextmanager
def meter() -> Iterator[Meter]:
    """Count everything done in this block (and in tasks it hands to pools through ``carry``)."""
    m = Meter()
    token = _current.set(m)
    try:
        yield m
    finally:
        _current.reset(token)


def add(key: str, n: int = 1) -> None:
    m = _current.get()
    if m is not None:
        m.add(key, n)


def carry(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to the caller's meter, for running on another thread."""
    m = _current.get()

    def run(*args: Any, **kwargs: Any) -> T:
        token = _current.set(m)
        try:
            return fn(*args, **kwargs)
        finally:
            _current.reset(token)

    return run


def table_request_hook(pipeline_request: Any) -> None:
    """azure-core ``raw_request_hook`` (runs per attempt): one entity operation per request. The
    engine's $batch requests (shared.store.table_wire) pass their own hook, counting every entity."""
    table_batch(1)


def table_batch(entity_ops: int) -> None:
    """One Table Storage request (attempt) carrying ``entity_ops`` entity operations."""
    add("table_requests")
    add("table_entity_ops", entity_ops)
