"""The job cursor: stored as JSON with stable keys, typed in the engine."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.sync.cursor import Cursor

TEXT = st.none() | st.text(min_size=1, max_size=20)
STAMPS = st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.5Z", "2026-06-01T12:00:00+00:00"])


CURSORS = st.builds(
    Cursor,
    full=st.booleans(),
    couple=st.booleans(),
    sync_pass=st.none() | st.sampled_from(["to_crm", "from_crm"]),
    phase=st.sampled_from(["retry", "main"]),
    link=TEXT,
    pass_done=st.booleans(),
    max_seen=st.none() | STAMPS,
    delta_link=TEXT,
    crm_mode=st.none() | st.sampled_from(["restart", "modifiedon"]),
    gap_since=st.none() | STAMPS,
    tracking_restarted=st.booleans(),
    retry_after=TEXT,
)


@given(CURSORS)
def test_a_cursor_survives_its_storage(cursor):
    assert Cursor.of(cursor.stored()) == cursor


def test_keys_are_those_of_the_stored_jobs():
    stored = Cursor(full=True, sync_pass="from_crm", crm_mode="modifiedon", tracking_restarted=True).stored()
    assert stored == {"full": True, "pass": "from_crm", "phase": "main", "mode": "modifiedon", "note": True}


@given(st.lists(st.none() | STAMPS, max_size=6), st.none() | STAMPS)
def test_observe_keeps_the_newest_stamp(stamps, before):
    cursor = Cursor(max_seen=before)
    cursor.observe(stamps)
    seen = [s for s in [*stamps, before] if s]
    if seen:
        newest = max(seen, key=lambda s: s.replace("+00:00", "Z").replace("Z", ""))
        assert cursor.max_seen is not None and cursor.max_seen.startswith(newest[:19])


def test_a_new_pass_keeps_the_job_kind_and_forgets_the_page():
    cursor = Cursor(full=False, couple=True, sync_pass="to_crm", link="next", max_seen="2026-01-01T00:00:00Z")
    following = cursor.start("from_crm")
    assert (following.sync_pass, following.phase, following.couple) == ("from_crm", "retry", True)
    assert following.link is None and following.max_seen is None
