"""The pure parts of the record actions (shared/sync/actions.py, record_runs.py): the recommended
direction of "sync selected", what a side's record is against the last sync, the run lifecycle, and
the typed sides. The actions themselves are tested over HTTP (tests/integration/api/test_records.py)."""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.api.records import Direction, SyncBody
from shared.mappings import default_mappings
from shared.model.status import Pass, Result, RunStatus
from shared.store.couplings import Coupling
from shared.sync.actions import (
    MATCH_COUNTS,
    ActionResult,
    Hold,
    MatchReport,
    RecordResult,
    Seen,
    recommended_direction,
    seen,
)
from shared.sync.record_runs import Side, record_run, run_message, run_status
from shared.sync.records import Outcome
from shared.sync.values import raw_value, value_hash

PRESENT = st.sampled_from([Seen.NEVER_SYNCED, Seen.CHANGED, Seen.UNCHANGED])
SEEN = st.sampled_from(list(Seen))
ALLOWED = st.sampled_from([{Pass.TO_CRM, Pass.FROM_CRM}, {Pass.TO_CRM}, {Pass.FROM_CRM}])
MIRROR = {Pass.TO_CRM: Pass.FROM_CRM, Pass.FROM_CRM: Pass.TO_CRM}


# --- the recommended direction ---------------------------------------------------------------------
@given(PRESENT, PRESENT, ALLOWED)
def test_with_both_records_the_answer_is_an_allowed_pass_or_a_hold(bc, crm, allowed):
    answer = recommended_direction(bc, crm, allowed)
    assert isinstance(answer, Hold) or answer in allowed


@given(PRESENT, PRESENT, ALLOWED)
def test_the_rule_is_the_same_seen_from_either_side(bc, crm, allowed):
    answer = recommended_direction(bc, crm, allowed)
    mirrored = recommended_direction(crm, bc, {MIRROR[p] for p in allowed})
    assert mirrored == (MIRROR[answer] if isinstance(answer, Pass) else answer)


@given(ALLOWED)
def test_a_pair_unchanged_on_both_sides_is_left_alone(allowed):
    assert recommended_direction(Seen.UNCHANGED, Seen.UNCHANGED, allowed) is Hold.UNCHANGED


@given(PRESENT, PRESENT)
def test_a_side_the_mapping_does_not_sync_from_counts_as_unchanged(bc, crm):
    assert recommended_direction(bc, crm, {Pass.TO_CRM}) == recommended_direction(
        bc, Seen.UNCHANGED, {Pass.TO_CRM}
    )
    assert recommended_direction(bc, crm, {Pass.FROM_CRM}) == recommended_direction(
        Seen.UNCHANGED, crm, {Pass.FROM_CRM}
    )


@pytest.mark.parametrize(
    ("bc", "crm", "expected"),
    [
        (Seen.CHANGED, Seen.UNCHANGED, Pass.TO_CRM),
        (Seen.UNCHANGED, Seen.CHANGED, Pass.FROM_CRM),
        (Seen.CHANGED, Seen.NEVER_SYNCED, Pass.TO_CRM),  # the side with history decides
        (Seen.NEVER_SYNCED, Seen.UNCHANGED, Hold.UNCHANGED),
        (Seen.CHANGED, Seen.CHANGED, Hold.BOTH_CHANGED),
        (Seen.NEVER_SYNCED, Seen.NEVER_SYNCED, Hold.NEVER_SYNCED),
    ],
)
def test_bidirectional_examples(bc, crm, expected):
    assert recommended_direction(bc, crm, {Pass.TO_CRM, Pass.FROM_CRM}) == expected


@given(SEEN, SEEN, ALLOWED)
def test_with_a_record_missing_the_survivor_is_the_source(bc, crm, allowed):
    if Seen.MISSING not in (bc, crm):
        return
    answer = recommended_direction(bc, crm, allowed)
    if bc is not Seen.MISSING and Pass.TO_CRM in allowed:
        assert answer is Pass.TO_CRM
    else:
        assert answer is Pass.FROM_CRM


# --- a side's record against the last sync ---------------------------------------------------------
def _customer():
    return next(m for m in default_mappings() if m.name == "CUSTOMER")


def test_seen_compares_the_stored_hashes_of_the_fields_flowing_from_the_side():
    m = _customer()
    f = next(f for f in m.fields if f.bc == "displayName")
    record = {"id": "b1", "displayName": "Adatum"}
    c = Coupling(m.name, "b1", "c1")
    assert seen(m, c, None, Side.BC) is Seen.MISSING
    assert seen(m, c, record, Side.BC) is Seen.NEVER_SYNCED
    c.bc_hashes = {f.key: value_hash(raw_value(m, f, record, Side.BC))}
    assert seen(m, c, record, Side.BC) is Seen.UNCHANGED
    assert seen(m, c, {**record, "displayName": "Adatum Ltd"}, Side.BC) is Seen.CHANGED
    assert seen(m, c, {"accountid": "c1", "name": "x"}, Side.CRM) is Seen.NEVER_SYNCED  # no CRM hashes


# --- the run of a record action --------------------------------------------------------------------
def _outcomes(*results: str) -> list[Outcome]:
    return [Outcome(f"id{i}", r) for i, r in enumerate(results)]


def test_run_status_and_message_from_the_outcomes():
    assert run_status([]) is RunStatus.SUCCEEDED
    assert run_status(_outcomes(Result.COUPLED, Result.UNCHANGED)) is RunStatus.SUCCEEDED
    assert run_status(_outcomes(Result.COUPLED, "failed")) is RunStatus.FINISHED_WITH_ERRORS
    assert run_status(_outcomes("failed", Result.FAILED)) is RunStatus.FAILED
    assert run_message(_outcomes(Result.FAILED, "failed", Result.COUPLED)) == "coupled: 1, failed: 2"


class _Runs:
    def __init__(self):
        self.rows = {}

    def create(self, run):
        self.rows[run.run_id] = run
        return run

    def update(self, run_id, mutate):
        mutate(self.rows[run_id])


class _Ctx:
    def __init__(self):
        self.runs = _Runs()
        self.saved_errors = []


def test_record_run_ends_from_its_outcomes():
    ctx = _Ctx()
    with record_run(ctx, _customer(), "api") as run:
        assert ctx.runs.rows[run.run_id].status == RunStatus.RUNNING
        run.outcomes += _outcomes(Result.INSERTED, Result.FAILED)
    row = ctx.runs.rows[run.run_id]
    assert (row.kind, row.trigger, row.mappings) == ("records", "api", ["CUSTOMER"])
    assert row.status == RunStatus.FINISHED_WITH_ERRORS and row.message == "failed: 1, inserted: 1"
    assert row.finished_at


def test_a_failed_record_run_keeps_its_reason():
    ctx = _Ctx()
    with record_run(ctx, _customer(), "ribbon") as run:
        run.outcomes += _outcomes(Result.UNCHANGED)
        run.fail("created and coupled concurrently")
    row = ctx.runs.rows[run.run_id]
    assert (row.status, row.message) == (RunStatus.FAILED, "created and coupled concurrently")


def test_an_exception_ends_the_run_failed_and_goes_on():
    ctx = _Ctx()
    with pytest.raises(RuntimeError, match="boom"), record_run(ctx, _customer(), "api"):
        raise RuntimeError("boom")
    (row,) = ctx.runs.rows.values()
    assert (row.status, row.message) == (RunStatus.FAILED, "boom")


# --- sides and answers -----------------------------------------------------------------------------
@pytest.mark.parametrize("side", list(Side))
def test_a_side_is_the_source_of_its_outward_pass(side):
    assert Side.source_of(side.outward) is side
    assert side.other.other is side and side.other is not side
    assert side.id_key == f"{side.value}_id"


def test_the_request_schema_spells_the_passes():
    assert set(get_args(Direction)) == {p.value for p in Pass}
    assert SyncBody.model_validate({"bc_ids": [], "direction": "from_crm"}).direction == Pass.FROM_CRM


def test_an_outcome_answers_with_the_ids_of_its_side():
    o = Outcome("crm1", Result.MODIFIED, "bc1", None)
    assert RecordResult.of(o, Side.CRM, direction=Pass.FROM_CRM) == RecordResult(
        Result.MODIFIED, bc_id="bc1", crm_id="crm1", direction=Pass.FROM_CRM
    )
    assert RecordResult.of(Outcome("bc1", Result.NO_MATCH), Side.BC) == RecordResult(Result.NO_MATCH, "bc1")


def test_match_counts_every_kind_of_answer():
    results = [
        RecordResult(r, "b") for r in (Result.COUPLED, ActionResult.AMBIGUOUS, Result.COUPLED, "failed")
    ]
    counts = MatchReport("r", Pass.TO_CRM, results).counts()
    assert list(counts) == list(MATCH_COUNTS)
    assert counts == {"coupled": 2, "no_match": 0, "ambiguous": 1, "created": 0, "failed": 1}
