"""The timer of the real function app starts scheduled modified syncs, never two at once."""

import time

from tests.integration.api.conftest import Api, start_stack


def test_timer_starts_modified_syncs_on_its_schedule(tmp_path_factory):
    stack = start_stack(tmp_path_factory, "timerstack", data="none", env={"SYNC_SCHEDULE": "*/3 * * * * *"})
    try:
        api = Api(stack)
        api.seed("bc", {"currencies": [{"code": "EUR", "displayName": "Euro", "symbol": "€"}]})
        deadline = time.monotonic() + 60
        runs: list = []
        while time.monotonic() < deadline:
            runs = [
                r
                for r in api.http.get("/api/runs", params={"limit": 50}).json()["value"]
                if r["trigger"] == "timer"
            ]
            if len([r for r in runs if r["status"] == "Succeeded"]) >= 2:
                break
            time.sleep(0.5)
        done = [r for r in runs if r["status"] == "Succeeded"]
        assert len(done) >= 2, runs
        assert all(r["kind"] == "modified" and r["after_full_sync"] == "restore" for r in runs)
        # Never overlapping: each timer run started after the previous one finished.
        ordered = sorted(done, key=lambda r: r["started_at"])
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            assert later["started_at"] >= earlier["finished_at"]
        assert api.http.get("/api/schedule").json()["schedule"] == "*/3 * * * * *"
    finally:
        stack.stop()
