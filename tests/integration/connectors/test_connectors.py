"""The connectors against the emulators over HTTP, with fault injection."""

from __future__ import annotations

import time
import uuid

import pytest

from devstack import procs
from shared.connectors.auth import TokenProvider
from shared.connectors.bc import BatchOp, BcClient
from shared.connectors.dataverse import DataverseClient
from shared.connectors.errors import Conflict, PreconditionFailed, Throttled
from shared.connectors.odata import eq, literal
from shared.settings import Settings
from tests.integration.conftest import Admin


@pytest.fixture
def env(services):
    bc, dv = Admin(services["bc_admin"]), Admin(services["dv_admin"])
    bc.reset()
    dv.reset()
    yield services, bc, dv
    bc.faults()
    dv.faults()


def settings(services, **overrides) -> Settings:
    return Settings.from_env(
        {"AzureWebJobsStorage": "UseDevelopmentStorage=true", **services["env"], **overrides}
    )


class Sleeps(list):
    """Records every retry wait (and really waits when ``real``)."""

    def __init__(self, real: bool = False):
        super().__init__()
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if self.real:
            time.sleep(seconds)


def test_paging_over_several_pages_with_exact_request_counts(env):
    services, bc_admin, dv_admin = env
    bc_admin.seed({"customers": [{"displayName": f"Pager {i}"} for i in range(10)]})
    dv_admin.seed({"accounts": [{"name": f"Pager {i}"} for i in range(10)]})
    dv = DataverseClient(settings(services, DATAVERSE_PAGE_SIZE="3"))
    bc = BcClient(settings(services, BC_PAGE_SIZE="3"))
    dv_admin.reset_stats()
    bc_admin.reset_stats()
    assert len(list(dv.iter_records("accounts"))) == 10
    assert len(list(bc.iter_records("customers"))) == 10
    assert dv.stats()["request:GET:read"] == 4 == dv_admin.stats()["GET read"]  # 3 + 3 + 3 + 1
    assert bc.stats()["request:GET:read"] == 5 == bc_admin.stats()["GET read"]  # companies + 4 pages


def test_change_tracking_sees_creates_updates_and_deletes(env):
    services, _, dv_admin = env
    dv = DataverseClient(settings(services))
    ids = [str(uuid.uuid4()) for _ in range(3)]
    dv.upsert_multiple("accounts", "account", [{"accountid": i, "name": f"T{n}"} for n, i in enumerate(ids)])
    first = dv.get_changes("accounts", select=["name"])
    assert len(first.records) == 3 and first.delta_link
    created = str(uuid.uuid4())
    dv.create("accounts", created, {"name": "new"})
    dv.update("accounts", ids[0], {"name": "renamed"})
    dv.delete("accounts", ids[1])
    changes = dv.get_changes("accounts", link=first.delta_link)
    assert {r["accountid"]: r["name"] for r in changes.records} == {created: "new", ids[0]: "renamed"}
    assert changes.deleted_ids == [ids[1]]
    assert dv.get_changes("accounts", link=changes.delta_link).records == []


def test_batched_gets_answer_each_query_in_one_request_per_service(env):
    services, bc_admin, dv_admin = env
    dv, bc = DataverseClient(settings(services)), BcClient(settings(services))
    dv_admin.seed({"accounts": [{"name": f"Batch {i}"} for i in range(4)]})
    bc_admin.seed({"customers": [{"displayName": f"Batch {i}"} for i in range(4)]})
    tracked = dv.get_changes("accounts", select=["name"])
    dv.update("accounts", tracked.records[0]["accountid"], {"name": "changed"})
    dv_admin.reset_stats()
    answers = dv.batch_get(
        [
            ("accounts?$select=name&$top=2&$filter=" + "startswith(name,'Batch')", {}),
            (tracked.delta_link, {"Prefer": "odata.track-changes,odata.maxpagesize=1"}),
            ("nosuchset", {}),
            ("contacts?$select=fullname", {}),
        ]
    )
    assert dv_admin.stats()["POST batch"] == 1 and dv_admin.stats().get("GET read", 0) == 0
    assert [status for status, _ in answers] == [200, 200, 404, 200]
    assert len(answers[0][1]["value"]) == 2
    assert [r["name"] for r in answers[1][1]["value"]] == ["changed"]  # only the change since the link
    assert answers[3][1]["value"] == []
    bc_admin.reset_stats()
    query = {"$filter": "displayName eq 'Batch 2'", "$select": "id,displayName"}
    results = bc.batch(
        [BatchOp("GET", "customers", query=query), BatchOp("GET", "items", query={"$top": "1"})]
    )
    assert [r["displayName"] for r in results[0].body["value"]] == ["Batch 2"]
    assert results[1].body["value"] == []
    assert bc_admin.stats()["POST batch"] == 1


def test_a_429_storm_is_ridden_out_honoring_retry_after(env):
    services, bc_admin, dv_admin = env
    dv = DataverseClient(settings(services))
    sleeps = Sleeps(real=True)
    dv.http.sleep = sleeps
    dv.whoami()
    dv_admin.faults(throttle={"requests": 1, "window_s": 3})
    dv_admin.reset_stats()
    for n in range(3):
        dv.create("accounts", str(uuid.uuid4()), {"name": f"storm {n}"})
    throttled = dv_admin.stats().get("throttled", 0)
    assert throttled >= 1
    assert dv.stats()["throttled"] == throttled == len(sleeps)  # one wait per 429, none extra
    assert all(1 <= s <= 3 for s in sleeps)  # the emulator's Retry-After, not a guess
    dv_admin.faults()


def test_throttling_beyond_the_retry_budget_is_a_typed_error(env):
    services, bc_admin, _ = env
    bc = BcClient(settings(services, HTTP_MAX_ATTEMPTS="2"))
    bc.http.sleep = Sleeps()
    bc.companies()
    bc_admin.faults(throttle={"requests": 0, "window_s": 60})
    with pytest.raises(Throttled):
        bc.companies()


def test_resets_and_server_errors_are_retried(env):
    services, _, dv_admin = env
    dv = DataverseClient(settings(services, HTTP_MAX_ATTEMPTS="30"))
    dv.http.sleep = Sleeps()
    dv.whoami()
    dv_admin.faults(error_rate=0.3, status=503, reset_rate=0.2)
    for n in range(20):
        dv.create("accounts", str(uuid.uuid4()), {"name": f"flaky {n}"})
    dv_admin.faults()
    assert len([a for a in dv_admin.records("accounts") if a["name"].startswith("flaky")]) == 20
    assert dv.stats()["retries"] > 0


def test_stale_etags_are_typed_conflicts(env):
    services, _, _ = env
    bc = BcClient(settings(services))
    created = bc.create("customers", {"displayName": "Etag"})
    bc.update("customers", created["id"], {"phoneNumber": "1"}, etag=created["@odata.etag"])
    with pytest.raises(Conflict) as bc_error:
        bc.update("customers", created["id"], {"phoneNumber": "2"}, etag=created["@odata.etag"])
    assert bc_error.value.code == "Request_EntityChanged"
    dv = DataverseClient(settings(services))
    key = str(uuid.uuid4())
    dv.create("accounts", key, {"name": "v1"})
    etag = dv.get("accounts", key)["@odata.etag"]
    dv.update("accounts", key, {"name": "v2"}, etag=etag)
    with pytest.raises(PreconditionFailed):
        dv.update("accounts", key, {"name": "v3"}, etag=etag)


def test_bulk_with_one_bad_record_reports_exactly_that_record(env):
    services, bc_admin, dv_admin = env
    dv = DataverseClient(settings(services))
    targets = [{"accountid": str(uuid.uuid4()), "name": f"bulk {i}"} for i in range(25)]
    targets[17]["nosuchattribute"] = 1
    results = dv.upsert_multiple("accounts", "account", targets)
    assert [r.index for r in results if not r.ok] == [17]
    assert len([a for a in dv_admin.records("accounts") if a["name"].startswith("bulk")]) == 24
    bc = BcClient(settings(services))
    ops = [BatchOp("POST", "customers", body={"displayName": f"batch {i}"}) for i in range(150)]
    ops[120] = BatchOp("POST", "customers", body={"displayName": "bad", "nosuchfield": 1})
    answers = bc.batch(ops)
    assert [i for i, a in enumerate(answers) if a.error] == [120]
    assert len([c for c in bc_admin.records("customers") if c["displayName"].startswith("batch")]) == 149


def test_quotes_in_filter_values_cannot_change_the_query(env):
    services, _, dv_admin = env
    dv_admin.seed({"accounts": [{"name": "x' or 1 eq 1"}, {"name": "plain"}, {"name": "x"}]})
    dv = DataverseClient(settings(services))
    found = dv.get_page("accounts", filter=eq("name", "x' or 1 eq 1")).records
    assert [a["name"] for a in found] == ["x' or 1 eq 1"]
    assert literal("O'Brien") == "'O''Brien'"
    with pytest.raises(ValueError):
        from shared.connectors.odata import guid

        guid("1 eq 1")


def test_token_is_fetched_again_after_it_expires(services, tmp_path):
    port = procs.free_port()
    idp = procs.start(
        [
            __import__("sys").executable,
            "-m",
            "devstack.idp",
            "--port",
            str(port),
            "--state-dir",
            str(tmp_path),
            "--tenant",
            "t-exp",
            "--client-id",
            "cid",
            "--client-secret",
            "sec",
            "--token-lifetime",
            "1",
        ],
        tmp_path / "idp.log",
    )
    try:
        procs.wait_for_port(port, proc=idp)
        provider = TokenProvider(
            Settings.from_env(
                {
                    "AzureWebJobsStorage": "x",
                    "ENTRA_TENANT_ID": "t-exp",
                    "ENTRA_CLIENT_ID": "cid",
                    "ENTRA_CLIENT_SECRET": "sec",
                    "ENTRA_AUTHORITY_HOST": f"https://127.0.0.1:{port}",
                    "ENTRA_CA_BUNDLE": str(tmp_path / "ca.pem"),
                }
            )
        )
        first = provider.token("https://api.businesscentral.dynamics.com/.default")
        second = provider.token("https://api.businesscentral.dynamics.com/.default")
        assert first and second and provider.acquired == 2  # a 1-second token is never served from cache
    finally:
        procs.stop(idp)
