"""The Table Storage shapes against real Azurite: one-to-one couplings, ETag-guarded state, jobs, runs."""

import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ServiceResponseError

from shared import usage
from shared.settings import StorageSettings
from shared.store import clients, table_wire
from shared.store.couplings import CLAIM_STALE_SECONDS, SHARDS, Coupling, CouplingStore
from shared.store.errors import ErrorStore, SyncError, parse_error_id
from shared.store.jobs import Job, JobStore
from shared.store.mapping_defs import MappingStore
from shared.store.mapping_state import LeaseHeld, MappingStateStore
from shared.store.runs import Run, RunStore, new_run_id
from shared.store.tables import Tables


@pytest.fixture
def tables(storage_env, unique_name) -> Tables:
    t = Tables(prefix=unique_name)
    t.ensure()
    return t


def gid() -> str:
    return str(uuid.uuid4())


def test_coupling_is_one_to_one(tables):
    store = CouplingStore(tables)
    bc, crm = gid(), gid()
    assert store.create(Coupling("CUSTOMER", bc, crm))
    # Neither side can be coupled again, and a failed attempt writes nothing.
    assert not store.create(Coupling("CUSTOMER", bc, gid()))
    other = gid()
    assert not store.create(Coupling("CUSTOMER", other, crm))
    assert store.get("CUSTOMER", bc_id=other) is None
    assert store.get("CUSTOMER", crm_id=crm).bc_id == bc
    # Another mapping is another partition: the same records may be coupled there.
    assert store.create(Coupling("CONTACT", bc, crm))


def test_one_to_one_holds_under_concurrent_creators(tables):
    store = CouplingStore(tables)
    crm, bc = gid(), gid()
    with ThreadPoolExecutor(8) as pool:
        same_crm = list(pool.map(lambda _: store.create(Coupling("CONTACT", gid(), crm)), range(8)))
        same_bc = list(pool.map(lambda _: store.create(Coupling("CONTACT", bc, gid())), range(8)))
    assert same_crm.count(True) == 1 and same_bc.count(True) == 1
    winner = store.get("CONTACT", crm_id=crm)
    assert store.by_crm("CONTACT", [crm])[crm].bc_id == winner.bc_id
    assert len(list(store.iter_all("CONTACT"))) == 2  # the losers left no rows behind


def test_a_claim_left_by_a_crash_is_reused_by_its_pair_and_taken_over_when_stale(tables):
    store = CouplingStore(tables)
    crashed = Coupling("CUSTOMER", gid(), gid())
    table_wire.submit(
        store.table_of(crashed.claim()["PartitionKey"]), [("create", crashed.claim())]
    )  # the crash: claim written, pair not
    assert store.get("CUSTOMER", crm_id=crashed.crm_id) is None  # a claim alone couples nothing
    # Another BC record may not take a fresh claim (its coupling may be on its way) ...
    assert not store.create(Coupling("CUSTOMER", gid(), crashed.crm_id))
    # ... but the redone slice of the same pair goes on with it.
    assert store.create(Coupling("CUSTOMER", crashed.bc_id, crashed.crm_id))
    assert store.get("CUSTOMER", crm_id=crashed.crm_id).bc_id == crashed.bc_id
    # An uncoupling that died between removing the pair and its claim: the claim is old, so it is stale.
    old = Coupling("CUSTOMER", gid(), gid())
    claim = old.claim() | {"claimed_at": "2020-01-01T00:00:00Z"}
    table_wire.submit(store.table_of(claim["PartitionKey"]), [("create", claim)])
    other = gid()
    assert store.create(Coupling("CUSTOMER", other, old.crm_id))
    assert store.get("CUSTOMER", crm_id=old.crm_id).bc_id == other
    assert timedelta(seconds=CLAIM_STALE_SECONDS) >= timedelta(minutes=30)


def test_a_redone_create_of_the_same_pair_is_idempotent(tables):
    store = CouplingStore(tables)
    c = Coupling("ITEM-PRODUCT", gid(), gid(), bc_ref="1000")
    assert store.create(c)
    assert store.create_many([Coupling("ITEM-PRODUCT", c.bc_id, c.crm_id)]) == [True]
    assert not store.create(Coupling("ITEM-PRODUCT", c.bc_id, gid()))  # the BC record is taken
    assert store.get("ITEM-PRODUCT", bc_id=c.bc_id).bc_ref == "1000"


def test_couplings_spread_over_partitions_and_list_pages_through_all(tables):
    store = CouplingStore(tables)
    couplings = [Coupling("CONTACT", gid(), gid()) for _ in range(250)]
    assert all(store.create_many(couplings))
    assert len({c.partition for c in couplings}) > SHARDS // 2
    seen, token = [], None
    while True:
        page, token = store.list("CONTACT", page_size=60, continuation=token)
        seen += [c.bc_id for c in page]
        if not token:
            break
    assert sorted(seen) == sorted(c.bc_id for c in couplings)
    assert set(store.by_crm("CONTACT", [c.crm_id for c in couplings])) == {c.crm_id for c in couplings}
    assert store.delete_mapping("CONTACT") == 250
    assert list(store.iter_all("CONTACT")) == [] and store.get("CONTACT", crm_id=couplings[0].crm_id) is None
    assert store.create(Coupling("CONTACT", gid(), couplings[0].crm_id))  # claims went with the mapping
    for bad in ("{}", '"x"', "[1]", '{"table": 8, "token": null}', '{"table": 0, "token": {"x": 1}}'):
        with pytest.raises(ValueError):
            store.list("CONTACT", continuation=bad)


def test_transactions_round_trip_types_and_write_nothing_on_refusal(tables):
    table = tables.client("WireTest")
    with contextlib.suppress(ResourceExistsError):
        table.create_table()
    pk = f"types-{gid()}"
    row = {"PartitionKey": pk, "RowKey": "it's ü", "n": 7, "big": 2**40, "f": 1.5, "b": True, "s": "é"}
    table_wire.submit(table, [("create", row), ("create", {"PartitionKey": pk, "RowKey": "other"})])
    got = table.get_entity(pk, "it's ü")
    assert (got["n"], got["big"].value, got["f"], got["b"], got["s"]) == (7, 2**40, 1.5, True, "é")
    with pytest.raises(table_wire.TransactionFailed) as refused:
        table_wire.submit(
            table,
            [("create", {"PartitionKey": pk, "RowKey": "new"}), ("create", row), ("delete", row)],
        )
    assert refused.value.status == 409 and refused.value.index == 1
    assert refused.value.code == "EntityAlreadyExists"
    assert sorted(
        e["RowKey"] for e in table.query_entities("PartitionKey eq @pk", parameters={"pk": pk})
    ) == [
        "it's ü",
        "other",
    ]
    table_wire.submit(table, [("replace", {"PartitionKey": pk, "RowKey": "other", "x": 1}), ("delete", row)])
    assert [dict(e) for e in table.query_entities("PartitionKey eq @pk", parameters={"pk": pk})] == [
        {"PartitionKey": pk, "RowKey": "other", "x": 1}
    ]
    stale = table.get_entity(pk, "other").metadata["etag"]
    table_wire.submit(table, [("merge", {"PartitionKey": pk, "RowKey": "other", "y": "z"})])
    with pytest.raises(table_wire.TransactionFailed) as changed:
        table_wire.submit(table, [("update", {"PartitionKey": pk, "RowKey": "other"}, stale)])
    assert changed.value.status == 412
    assert table.get_entity(pk, "other")["y"] == "z"


def test_queries_page_through_continuations_with_typed_values_and_quoted_parameters(tables):
    table = tables.client("WireTest")
    with contextlib.suppress(ResourceExistsError):
        table.create_table()
    pk = f"q'uery-{gid()}"
    rows = [{"PartitionKey": pk, "RowKey": f"r{i:05d}", "n": i, "big": 2**40 + i} for i in range(1234)]
    for i in range(0, len(rows), 100):
        table_wire.submit(table, [("create", r) for r in rows[i : i + 100]])
    got = list(table_wire.query(table, "PartitionKey eq @pk and n ge @low", {"pk": pk, "low": 10}))
    assert len(got) == 1224 and got[-1]["big"] == 2**40 + 1233  # more than one page of 1000
    assert {k: v for k, v in got[0].items() if k != "Timestamp"} == rows[10]
    picked = list(
        table_wire.query(table, "PartitionKey eq @pk and RowKey eq @rk", {"pk": pk, "rk": "r00007"}, ["n"])
    )
    assert picked == [{"n": 7}]
    assert list(table_wire.query(table, "PartitionKey eq @pk", {"pk": "' or 1 eq 1 or '"})) == []


def test_retry_markers_follow_the_last_result(tables):
    store = CouplingStore(tables)
    pairs = [Coupling("CUSTOMER", gid(), gid()) for _ in range(3)]
    assert all(store.create_many(pairs))
    assert store.failed_couplings("CUSTOMER") == [] and not store.has_retries("CUSTOMER", ["bc", "crm"])
    for c in pairs:
        c.last_result, c.failures = "failed", 1
    store.save_many(pairs)
    assert sorted(store.failed_couplings("CUSTOMER")) == sorted((c.bc_id, c.crm_id) for c in pairs)
    assert store.has_retries("CUSTOMER", ["bc"])
    # Loaded again and saved as a success, as skipped, or uncoupled: no longer waiting for a retry.
    ok, skipped, gone = (store.get("CUSTOMER", bc_id=c.bc_id) for c in pairs)
    ok.last_result = "success"
    skipped.last_result, skipped.skipped = "skipped", True
    store.save_many([ok, skipped])
    store.delete(gone)
    assert store.failed_couplings("CUSTOMER") == [] and not store.has_retries("CUSTOMER", ["bc", "crm"])
    # A marker a crash left behind (its coupling is gone, or no longer failed) is dropped when read.
    crashed = Coupling("CUSTOMER", gid(), gid(), last_result="failed")
    store._markers("replace", [crashed, ok])
    assert store.has_retries("CUSTOMER", ["bc"]) and store.failed_couplings("CUSTOMER") == []
    assert not store.has_retries("CUSTOMER", ["bc"])
    # Saving a coupling that was uncoupled meanwhile neither brings it back nor leaves a marker.
    late = Coupling("CUSTOMER", gid(), gid())
    assert store.create(late)
    loaded = store.get("CUSTOMER", bc_id=late.bc_id)
    store.delete(late)
    loaded.last_result = "failed"
    store.save_many([loaded])
    assert store.get("CUSTOMER", bc_id=late.bc_id) is None and not store.has_retries("CUSTOMER", ["bc"])
    # Failed creates of uncoupled records count too, on the sides asked about, unless skipped.
    store.save_failures("CUSTOMER", "crm", {gid(): {"message": "x", "failures": 1, "skipped": False}})
    assert store.has_retries("CUSTOMER", ["crm"]) and not store.has_retries("CUSTOMER", ["bc"])


def test_reads_of_scattered_and_contiguous_ids(tables):
    store = CouplingStore(tables)
    couplings = sorted((Coupling("CONTACT", gid(), gid()) for _ in range(1500)), key=lambda c: c.bc_id)
    assert all(store.create_many(couplings))
    scattered = couplings[::15]  # 100 ids across the whole id space: point reads
    block = couplings[200:700]  # 500 neighbours: one range query
    used = {}
    for name, wanted in (("scattered", scattered), ("block", block)):
        with usage.meter() as meter:
            assert set(store.by_bc("CONTACT", [c.bc_id for c in wanted])) == {c.bc_id for c in wanted}
        used[name] = meter.counts()
        found = store.by_crm("CONTACT", [c.crm_id for c in wanted] + [gid()])
        assert {c.crm_id: c.bc_id for c in found.values()} == {c.crm_id: c.bc_id for c in wanted}
    assert used["scattered"].get("coupling_point_reads") == 100
    assert "coupling_range_rows" not in used["scattered"]
    assert "coupling_point_reads" not in used["block"]
    assert 500 <= used["block"]["coupling_range_rows"] < 560  # the block's span holds little else


@pytest.mark.parametrize(
    ("ids", "span", "density", "by_point"),
    [
        (40, 1.0, None, True),  # few ids: always one by one
        (300, 0.5, None, True),  # nothing learnt: a few hundred scattered ids by point
        (300, 0.005, None, False),  # ... but neighbours by range
        (2000, 1.0, None, False),
        (2000, 1.0, 400_000.0, True),  # a big mapping: 2,000 reads cost less than 400,000 rows
        (2000, 1.0, 150_000.0, False),
        (5000, 0.01, 400_000.0, False),  # a page's own ids: 4,000 rows in their span
    ],
)
def test_scattered_ids_are_read_by_point_where_a_range_would_read_more(ids, span, density, by_point):
    assert CouplingStore._reads_by_point(ids, span, "bc_", density) is by_point


def test_a_crm_point_read_counts_twice():
    assert CouplingStore._reads_by_point(1000, 1.0, "bc_", 150_000.0)
    assert not CouplingStore._reads_by_point(1000, 1.0, "crm_", 150_000.0)


def test_create_many_falls_back_per_coupling_when_one_conflicts(tables):
    store = CouplingStore(tables)
    taken = Coupling("ITEM-PRODUCT", gid(), gid())
    assert store.create(taken)
    batch = [Coupling("ITEM-PRODUCT", gid(), gid()) for _ in range(60)]
    batch[37] = Coupling("ITEM-PRODUCT", gid(), taken.crm_id)
    results = store.create_many(batch)
    assert results.count(False) == 1 and results[37] is False
    found = store.by_bc("ITEM-PRODUCT", [c.bc_id for c in batch])
    assert len(found) == 59


def test_bulk_reads_by_both_sides_and_hash_round_trip(tables):
    store = CouplingStore(tables)
    couplings = [
        Coupling("CUSTOMER", gid(), gid(), bc_hashes={"a>b": "1"}, bc_ref=f"C{i}") for i in range(120)
    ]
    assert all(store.create_many(couplings))
    wanted = couplings[::3]
    by_bc = store.by_bc("CUSTOMER", [c.bc_id.upper() for c in wanted])
    assert set(by_bc) == {c.bc_id for c in wanted}
    by_crm = store.by_crm("CUSTOMER", [c.crm_id for c in couplings[:5]])
    assert {c.bc_id for c in by_crm.values()} == {c.bc_id for c in couplings[:5]}
    assert by_bc[wanted[0].bc_id].bc_hashes == {"a>b": "1"}
    changed = by_bc[wanted[0].bc_id]
    changed.crm_hashes, changed.failures, changed.skipped = {"x": "y"}, 2, True
    store.save_many([changed])
    again = store.get("CUSTOMER", crm_id=changed.crm_id)
    assert again.crm_hashes == {"x": "y"} and again.skipped and again.failures == 2
    page, token = store.list("CUSTOMER", page_size=50)
    assert len(page) == 50 and token
    skipped, _ = store.list("CUSTOMER", where="skipped eq true")
    assert [c.bc_id for c in skipped] == [changed.bc_id]


def test_delete_removes_both_rows(tables):
    store = CouplingStore(tables)
    c = Coupling("CONTACT", gid(), gid())
    store.create(c)
    store.delete(c)
    assert store.get("CONTACT", bc_id=c.bc_id) is None and store.get("CONTACT", crm_id=c.crm_id) is None
    assert store.create(Coupling("CONTACT", c.bc_id, gid()))  # both ids are free again


def test_mapping_lease_excludes_other_runs_and_other_slices(tables):
    states = MappingStateStore(tables)
    lease = states.acquire("CUSTOMER", "run-a", "slice-1", 60)
    with pytest.raises(LeaseHeld):
        states.acquire("CUSTOMER", "run-b", "slice-9", 60)
    with pytest.raises(LeaseHeld):
        states.acquire("CUSTOMER", "run-a", "slice-2", 60)  # a duplicate message of the same run
    states.release(lease, keep_for_run_seconds=60)
    with pytest.raises(LeaseHeld):
        states.acquire("CUSTOMER", "run-b", "slice-9", 60)  # still held by run-a between slices
    states.acquire("CUSTOMER", "run-a", "slice-2", 60)
    states.release(states.get("CUSTOMER"))
    assert states.acquire("CUSTOMER", "run-b", "slice-9", 60).lease_run == "run-b"


def test_state_writes_are_etag_guarded(tables):
    states = MappingStateStore(tables)
    states.update("CURRENCY", bc_watermark="2024-01-01T00:00:00Z")
    first, second = states.get("CURRENCY"), states.get("CURRENCY")
    first.crm_delta_link = "link-1"
    states.save(first)
    second.crm_delta_link = "link-2"
    with pytest.raises(ResourceModifiedError):
        states.save(second)
    assert states.get("CURRENCY").crm_delta_link == "link-1"


def test_runs_newest_first_and_jobs_counters(tables):
    runs, jobs = RunStore(tables), JobStore(tables)
    ids = []
    for _ in range(3):
        run = runs.create(Run(new_run_id(), "full", "api", ["CURRENCY"]))
        ids.append(run.run_id)
    listed, _ = runs.list(limit=10)
    assert [r.run_id for r in listed] == ids[::-1]  # newest first (each create takes > 1 ms)
    jobs.create_many([Job(ids[0], "CURRENCY", [], ["to_crm"])])
    job = jobs.get(ids[0], "CURRENCY")
    stale = jobs.get(ids[0], "CURRENCY")
    job.add("to_crm", {"inserted": 3, "failed": 1})
    jobs.save(job)
    stale.add("to_crm", {"inserted": 100})
    with pytest.raises(ResourceModifiedError):
        jobs.save(stale)
    assert jobs.get(ids[0], "CURRENCY").counters["to_crm"]["inserted"] == 3


def test_errors_round_trip_and_ids(tables):
    errors = ErrorStore(tables)
    run_id = new_run_id()
    errors.add_many(
        [SyncError(run_id, "CUSTOMER", "to_crm", gid(), None, "boom", stack="trace") for _ in range(120)]
    )
    listed = errors.list(run_id=run_id, limit=500)
    assert len(listed) == 120
    one = listed[0]
    assert parse_error_id(one.error_id)[0] == run_id
    assert errors.get(one.error_id).message == "boom"
    with pytest.raises(ValueError):
        parse_error_id("bm90LWFuLWlk")


def test_mappings_seed_edit_and_reset(tables):
    store = MappingStore(tables)
    names = [m.name for m in store.all()]
    assert names[:3] == ["CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE"]
    customer = store.by_name()["CUSTOMER"]
    store.replace(customer.model_copy(update={"sync_only_coupled": False}))
    assert store.by_name()["CUSTOMER"].sync_only_coupled is False
    store.reset()
    assert store.by_name()["CUSTOMER"].sync_only_coupled is True


class _AnswerLost(clients._TableTransport):
    """Sends each of the first ``lose`` transactions to Azurite, then breaks the connection before its
    answer arrives: the transaction committed, the client cannot know."""

    def __init__(self, lose: int, **kwargs):
        super().__init__(**kwargs)
        self.lose = lose

    def send(self, request, **kwargs):
        response = super().send(request, **kwargs)
        if request.url.endswith("/$batch") and self.lose > 0:
            self.lose -= 1
            raise ServiceResponseError("Connection aborted: reset by peer (simulated)")
        return response


def test_a_transaction_whose_answer_is_lost_is_sent_again_and_its_replay_recognised(
    storage_connection_string, unique_name
):
    service = clients.table_service(
        StorageSettings(storage_connection_string, "", ""), transport=_AnswerLost(2, use_env_settings=False)
    )
    store = CouplingStore(Tables(service, prefix=unique_name))
    couplings = [Coupling("CUSTOMER", gid(), gid()) for _ in range(3)]
    with usage.meter() as meter:
        assert store.create_many(couplings) == [True, True, True]  # claims, then pairs: both resent
    assert meter.counts()["table_resends"] == 2
    for c in couplings:
        assert store.get("CUSTOMER", crm_id=c.crm_id).bc_id == c.bc_id
    assert not store.create(Coupling("CUSTOMER", gid(), couplings[0].crm_id))  # still one-to-one
