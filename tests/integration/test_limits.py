"""The fixed-window rate-limit counter against real Azurite: exact under concurrency, per caller,
a new window starts from zero, 0 means no limit."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.store.limits import RateLimited, RateLimiter
from shared.store.tables import RUNS, Tables


@pytest.fixture
def tables(storage_env, unique_name) -> Tables:
    t = Tables(prefix=unique_name)
    t.ensure()
    return t


def test_concurrent_hits_are_counted_exactly(tables):
    limiter = RateLimiter(tables)
    barrier = threading.Barrier(16)

    def hit(_):
        barrier.wait()
        try:
            return limiter.hit("run_starts", "key-a", 7, 3600)
        except RateLimited as exc:
            return -exc.retry_after

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(hit, range(16)))
    assert sorted(r for r in results if r > 0) == list(range(1, 8))
    assert len([r for r in results if r < 0]) == 9 and all(-r <= 3600 for r in results if r < 0)
    assert limiter.hit("run_starts", "key-b", 7, 3600) == 1  # another caller has its own count


def test_a_new_window_starts_from_zero_and_zero_means_unlimited(tables):
    limiter = RateLimiter(tables)
    assert limiter.hit("dry_runs", "key-a", 1, 3600) == 1
    with pytest.raises(RateLimited):
        limiter.hit("dry_runs", "key-a", 1, 3600)
    row = tables.client(RUNS).get_entity("limit", "dry_runs|key-a")
    tables.client(RUNS).update_entity({**row, "window_start": row["window_start"] - 3600})  # the last window
    assert limiter.hit("dry_runs", "key-a", 1, 3600) == 1
    assert limiter.hit("dry_runs", "key-c", 0, 3600) == 0
    assert not list(tables.client(RUNS).query_entities("RowKey eq 'dry_runs|key-c'"))
