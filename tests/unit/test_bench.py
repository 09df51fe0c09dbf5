"""The benchmark's arithmetic: bulk-optimal request count and the table it prints."""

from bench.__main__ import markdown, optimal_requests


def _counters(**kw: int) -> dict[str, int]:
    base = dict.fromkeys(("inserted", "modified", "unchanged", "skipped", "failed", "coupled"), 0)
    return base | kw


def test_optimal_requests_pages_at_max_size_and_writes_at_max_bulk():
    run = {
        "jobs": [
            # 25,000 BC records: 2 pages of 20,000; 2,500 creates: 3 CreateMultiple of 1,000.
            {"to_crm": _counters(inserted=2500, unchanged=22500), "from_crm": _counters()},
            # 6,000 CRM records: 2 pages of 5,000; 150 creates + 101 updates: 2 + 2 batches of 100.
            {"to_crm": _counters(), "from_crm": _counters(inserted=150, modified=101, coupled=5749)},
        ]
    }
    assert optimal_requests(run) == (2 + 3) + (2 + 2 + 2)


def test_markdown_reports_every_headline_ratio():
    entry = {
        "seconds": 10.0,
        "records": 1000,
        "records_per_min": 6000,
        "requests": 12,
        "optimal_requests": 10,
        "table_entity_ops": 2000,
        "table_requests": 30,
        "peak_worker_rss_mb": 100.0,
    }
    result = {
        "date": "2026-11-24T00:00:00",
        "records": 1000,
        "small_records": 100,
        "latency_ms": 20.0,
        "machine": {"cpus": 2, "memory_gb": 24, "python": "3.11"},
        "full_sync": entry | {"seconds": 8.0, "workers": 2},
        "baseline_seconds": 2.0,
        "engine_to_baseline": 5.0,
        "requests_to_optimal": 1.2,
        "modified_large": {"records": 1000, "requests": 8, "seconds": 1.0},
        "modified_small": {"records": 100, "requests": 8, "seconds": 1.0},
        "peak_rss_mb": 100.0,
        "scale_out": {"1": entry, "2": entry | {"seconds": 8.0}},
        "scale_out_2_workers": 1.25,
        "storage_floor": {"seconds": 3.0, "coupling_rows": 200},
        "engine_to_baseline_plus_storage": 1.14,
        "bench_seconds": 120,
    }
    table = markdown(result)
    expected = [
        "| **engine / baseline** | 5.0 |",
        "| **requests / bulk-optimal** | 1.2 |",
        "8 requests",
        "| **speed-up with 2 workers** | 1.25× |",
        "| engine (10.0 s) / (baseline + storage floor) | 1.14 |",
        "| full sync, fastest (2 worker(s)) | 8.0 s",
        "2.0 min",
    ]
    assert [e for e in expected if e not in table] == []
