"""MappingStore against real Azurite: one row per edit under its ETag; an edit that lost the race is
re-applied to the fresh row (other properties) or refused (the same ones); a run's flag change keeps
a concurrent edit."""

from __future__ import annotations

import pytest

from shared.store.mapping_defs import MappingConflict, MappingStore
from shared.store.tables import Tables
from shared.sync.orchestrator import _set_only_coupled


@pytest.fixture
def store(storage_env, unique_name) -> MappingStore:
    t = Tables(prefix=unique_name)
    t.ensure()
    return MappingStore(t)


def test_a_flag_change_keeps_an_edit_made_after_the_run_read_the_mapping(store):
    read_by_run = store.by_name()["CUSTOMER"]
    other = read_by_run.model_copy(update={"crm_filter": "statecode eq 1"})
    store.replace(other, base=read_by_run)  # an admin's PATCH lands meanwhile
    store.update("CUSTOMER", _set_only_coupled(not read_by_run.sync_only_coupled))
    saved = store.by_name()["CUSTOMER"]
    assert saved.crm_filter == "statecode eq 1"
    assert saved.sync_only_coupled is not read_by_run.sync_only_coupled


def test_an_edit_that_lost_the_race_is_merged_or_refused(store):
    base, contact = store.by_name()["CUSTOMER"], store.by_name()["CONTACT"]
    store.replace(base.model_copy(update={"bc_filter": "number ne 'A'"}), base=base)
    # Another property than the winner's: applied on top of the winner's edit.
    merged = store.replace(base.model_copy(update={"deletion_conflict": "RestoreRecords"}), base=base)
    assert merged.bc_filter == "number ne 'A'" and merged.deletion_conflict == "RestoreRecords"
    # The same property: refused, the winner's value stays.
    with pytest.raises(MappingConflict) as refused:
        store.replace(base.model_copy(update={"bc_filter": "number ne 'B'"}), base=base)
    assert refused.value.properties == ["bc_filter"]
    assert store.by_name()["CUSTOMER"].bc_filter == "number ne 'A'"
    assert store.by_name()["CONTACT"] == contact  # other mappings' rows are never rewritten
