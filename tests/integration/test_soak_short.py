"""A short fault soak in `make test` (`make soak` runs the long one at 10k customers)."""

from tests.soak import COMPLETED, soak


def test_short_soak_keeps_every_invariant():
    result = soak(records=150, seed=5, timeout=600)
    assert set(result["faults_injected"]) == {"storm", "latency", "kill", "duplicate", "azurite", "edits"}
    assert len(result["runs"]) >= 4 and set(result["runs"]) <= COMPLETED, result
    assert result["records_checked"] > 1000
    assert result["violations"] == [], result["violations"][:10]
