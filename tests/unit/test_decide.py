"""Every rule of the per-record decision (shared/sync/decide.py), property-tested: unchanged, update one
side, conflict x policy x detection, echo prevention, edits kept for the other pass. The end-to-end rule
tests (tests/integration/engine) check the same rules through the emulators."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.sync.decide import FieldView, Verdict, conflicts_of, decide

HASHES = st.sampled_from(["h1", "h2", "h3"])
POLICIES = st.sampled_from(["None", "SendUpdateToIntegration", "GetUpdateFromIntegration"])
SIDES = st.sampled_from(["bc", "crm"])


@st.composite
def views(draw) -> list[FieldView]:
    out = []
    for i in range(draw(st.integers(1, 5))):
        stored_src = draw(st.none() | HASHES)
        src = draw(HASHES)
        stored_dst = draw(st.none() | HASHES)
        dst = draw(HASHES)
        written = draw(HASHES)
        out.append(
            FieldView(
                key=f"f{i}",
                bidirectional=draw(st.booleans()),
                src_hash=src,
                stored_src=stored_src,
                dst_hash=dst,
                stored_dst=stored_dst,
                src_changed=src != stored_src or draw(st.booleans()),  # or forced
                writable=draw(st.booleans()),
                differs=written != dst,
                write_hash=written,
            )
        )
    return out


def stored(fields: list[FieldView]) -> dict[str, str | None]:
    return {f.key: f.stored_dst for f in fields if f.stored_dst is not None} | {"other-pass": "hx"}


@given(views(), POLICIES, st.booleans(), SIDES)
def test_writes_only_writable_fields_that_differ_and_keeps_other_hashes(fields, policy, whole, side):
    d = decide(fields, stored(fields), policy=policy, whole=whole, dst_side=side)
    by_key = {f.key: f for f in fields}
    assert all(by_key[k].writable and by_key[k].differs for k in d.writes)
    if d.verdict != Verdict.CONFLICT:
        assert d.dst_hashes["other-pass"] == "hx"  # the other pass's hashes are never touched
        assert (d.verdict == Verdict.WRITE) == bool(d.writes)


@given(views(), SIDES, st.booleans())
def test_policy_none_fails_exactly_the_conflicts_and_writes_nothing(fields, side, whole):
    d = decide(fields, stored(fields), policy="None", whole=whole, dst_side=side)
    conflicts = conflicts_of(fields, whole)
    assert (d.verdict == Verdict.CONFLICT) == bool(conflicts)
    if conflicts:
        assert d.writes == frozenset() and d.dst_hashes == {} and d.src_hashes == {}


@given(views(), POLICIES, SIDES)
def test_without_destination_edits_there_is_no_conflict_and_every_changed_field_is_written(
    fields, policy, side
):
    fields = [FieldView(**{**f.__dict__, "stored_dst": f.dst_hash}) for f in fields]
    d = decide(fields, stored(fields), policy=policy, whole=False, dst_side=side)
    assert d.verdict != Verdict.CONFLICT
    assert d.writes == {f.key for f in fields if f.src_changed and f.writable and f.differs}


@given(views(), POLICIES, st.booleans(), SIDES)
def test_echo_prevention_a_written_value_is_stored_as_what_the_destination_now_holds(
    fields, policy, whole, side
):
    d = decide(fields, stored(fields), policy=policy, whole=whole, dst_side=side)
    for f in fields:
        if f.key in d.writes:
            assert d.dst_hashes[f.key] == f.write_hash


@given(views(), POLICIES, st.booleans(), SIDES)
def test_destination_edits_not_overwritten_keep_their_old_hash_so_they_flow_back(fields, policy, whole, side):
    d = decide(fields, stored(fields), policy=policy, whole=whole, dst_side=side)
    if d.verdict == Verdict.CONFLICT:
        return
    for f in fields:
        if f.dst_changed and f.key not in d.writes:
            assert d.dst_hashes.get(f.key) == f.stored_dst
        if not f.dst_changed and f.key not in d.writes and f.stored_dst is None:
            assert d.dst_hashes.get(f.key) in (f.dst_hash, None)


@given(views(), SIDES)
def test_field_conflicts_go_to_the_winner(fields, side):
    for policy, winner in (("SendUpdateToIntegration", "bc"), ("GetUpdateFromIntegration", "crm")):
        d = decide(fields, stored(fields), policy=policy, whole=False, dst_side=side)
        conflicts = set(conflicts_of(fields, whole=False))
        if winner == side:  # the destination wins: its values stay
            assert not conflicts & d.writes
        else:
            assert conflicts <= d.writes
        assert d.src_hashes == {f.key: f.src_hash for f in fields}


@given(views(), SIDES)
def test_record_level_the_winner_takes_the_whole_record(fields, side):
    conflicts = conflicts_of(fields, whole=True)
    for policy, winner in (("SendUpdateToIntegration", "bc"), ("GetUpdateFromIntegration", "crm")):
        d = decide(fields, stored(fields), policy=policy, whole=True, dst_side=side)
        if not conflicts:
            continue
        if winner == side:  # nothing written; the source's hashes stay stale so the other pass overwrites it
            assert d.writes == frozenset() and d.src_hashes == {}
        else:  # every differing field, changed on either side, gets the source's value
            expected = {
                f.key for f in fields if f.writable and f.differs and (f.src_changed or f.dst_changed)
            }
            assert d.writes == expected


def test_unchanged_on_both_sides_is_unchanged():
    f = FieldView("name", True, "h1", "h1", "h1", "h1", src_changed=False, differs=False, write_hash="h1")
    d = decide([f], {"name": "h1"}, policy="None", whole=False, dst_side="crm")
    assert (d.verdict, d.writes, d.dst_hashes) == (Verdict.UNCHANGED, frozenset(), {"name": "h1"})


def test_record_level_conflict_needs_a_change_on_each_side():
    bc_moved = FieldView("name", True, "h2", "h1", "h1", "h1", src_changed=True, write_hash="h2")
    crm_edit = FieldView("phone", True, "h1", "h1", "h3", "h1", src_changed=False, write_hash="h1")
    assert conflicts_of([bc_moved, crm_edit], whole=True) == ["name"]
    assert conflicts_of([bc_moved, crm_edit], whole=False) == []  # per field: different fields, no conflict
