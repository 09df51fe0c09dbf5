"""Match-based coupling and uncoupling of a whole mapping as background runs (BC's Coupling and
Uncoupling jobs), over HTTP through the queue. Tests share one stack, in order."""

from __future__ import annotations

import uuid

import pytest

from shared.settings import StorageSettings
from shared.store.clients import table_service
from shared.store.couplings import Coupling, CouplingStore
from shared.store.tables import Tables
from tests.integration.api.conftest import Api, start_stack


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    stack = start_stack(tmp_path_factory, "couplingstack", data="none", workers=2)
    yield Api(stack)
    stack.stop()


def account(name: str, **extra) -> dict:
    return {"accountid": str(uuid.uuid4()), "name": name, "customertypecode": 3, "statecode": 0, **extra}


def couplings(api: Api) -> list[dict]:
    return api.http.get("/api/mappings/CUSTOMER/couplings").json()["value"]


def test_a_coupling_run_couples_matches_and_creates_only_when_the_mapping_says_so(api):
    api.seed("bc", {"customers": [{"displayName": "Twin", "email": "twin@example.com", "blocked": " "}]})
    api.seed("bc", {"customers": [{"displayName": "Alone", "email": "alone@example.com", "blocked": " "}]})
    api.seed(
        "dataverse", {"accounts": [account("Twin", emailaddress1="twin@example.com"), account("Lonely")]}
    )
    run = api.wait(api.start("/api/mappings/CUSTOMER/match/start"))
    assert (run["kind"], run["status"]) == ("coupling", "Succeeded"), run
    job = api.job(run, "CUSTOMER")
    assert job["to_crm"]["coupled"] == 1 and job["to_crm"]["inserted"] == 0, job
    assert sum(job["from_crm"].values()) == 0  # one pass, over BC's side, as BC's coupling job
    assert len(couplings(api)) == 1
    assert not [a for a in api.records("dataverse", "accounts") if a["name"] == "Alone"]
    assert not [c for c in api.records("bc", "customers") if c["displayName"] == "Lonely"]
    # A coupling run moves no watermark: it synced no change of coupled records.
    assert api.http.get("/api/mappings/CUSTOMER").json()["state"]["bc_watermark"] is None


def test_with_create_new_if_no_match_the_unmatched_get_counterparts_and_coupled_ones_stay(api):
    api.http.patch("/api/mappings/CUSTOMER", json={"create_new_if_no_match": True}).raise_for_status()
    run = api.wait(api.start("/api/mappings/CUSTOMER/match/start"))
    job = api.job(run, "CUSTOMER")
    assert job["to_crm"]["inserted"] == 1 and job["to_crm"]["unchanged"] == 1, job
    assert [a for a in api.records("dataverse", "accounts") if a["name"] == "Alone"]
    assert len(couplings(api)) == 2
    listed = api.http.get("/api/runs", params={"limit": 5}).json()["value"]
    assert [r["kind"] for r in listed[:2]] == ["coupling", "coupling"]


def test_restore_all_clears_every_skipped_record_of_the_mapping(api):
    storage = StorageSettings(api.stack.endpoints["storage_connection_string"], "", "")
    store = CouplingStore(Tables(table_service(storage), prefix=""))
    pairs = list(store.iter_all("CUSTOMER"))
    for c in pairs:
        c.skipped, c.failures, c.last_result, c.last_error = True, 2, "skipped", "the same error twice"
    store.save_many(pairs)
    skipped = api.http.get("/api/mappings/CUSTOMER/couplings", params={"skipped": "true"}).json()["value"]
    assert len(skipped) == len(pairs) == 2
    answer = api.http.post("/api/mappings/CUSTOMER/skipped/restore-all")
    assert answer.status_code == 200 and answer.json() == {"restored": 2}, answer.text
    assert api.http.get("/api/mappings/CUSTOMER/couplings", params={"skipped": "true"}).json()["value"] == []
    assert api.http.post("/api/mappings/NOPE/skipped/restore-all").status_code == 404


def test_an_uncoupling_run_removes_every_coupling_and_keeps_the_records(api):
    before = (len(api.records("bc", "customers")), len(api.records("dataverse", "accounts")))
    run = api.wait(api.start("/api/mappings/CUSTOMER/uncouple/start"))
    assert (run["kind"], run["status"]) == ("uncoupling", "Succeeded"), run
    assert api.job(run, "CUSTOMER")["to_crm"]["uncoupled"] == 2
    assert couplings(api) == []
    assert (len(api.records("bc", "customers")), len(api.records("dataverse", "accounts"))) == before


def test_background_starts_refuse_bad_input(api):
    assert api.http.post("/api/mappings/NOPE/match/start", json={}).status_code == 404
    bad = api.http.post("/api/mappings/CUSTOMER/uncouple/start", json={"everything": True})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "everything", bad.text


def _store(api: Api) -> CouplingStore:
    storage = StorageSettings(api.stack.endpoints["storage_connection_string"], "", "")
    return CouplingStore(Tables(table_service(storage), prefix=""))


def test_broken_couplings_are_found_and_restored_or_deleted(api):
    api.seed(
        "bc", {"customers": [{"displayName": n, "blocked": " "} for n in ("Orphan", "Doomed", "Healthy")]}
    )
    bc = {c["displayName"]: c for c in api.records("bc", "customers")}
    api.seed("dataverse", {"accounts": [account("Healthy CRM")]})
    healthy = next(a for a in api.records("dataverse", "accounts") if a["name"] == "Healthy CRM")
    gone = {
        "Orphan": str(uuid.uuid4()),
        "Doomed": str(uuid.uuid4()),
    }  # Dataverse records that no longer exist
    store = _store(api)
    store.create_many(
        [Coupling("CUSTOMER", bc[n]["id"], crm_id) for n, crm_id in gone.items()]
        + [Coupling("CUSTOMER", bc["Healthy"]["id"], healthy["accountid"])]
    )
    answer = api.http.get("/api/mappings/CUSTOMER/broken-couplings").json()
    assert answer["continuation"] is None
    assert sorted((b["crm_id"], b["missing"]) for b in answer["value"]) == sorted(
        (i, "crm") for i in gone.values()
    )
    restored = api.http.post(
        "/api/mappings/CUSTOMER/broken-couplings/restore",
        json={"bc_ids": [bc["Orphan"]["id"], bc["Healthy"]["id"]]},
    )
    assert restored.status_code == 200, restored.text
    by_result = {v["result"] for v in restored.json()["value"]}
    assert by_result == {"inserted", "failed"}, restored.json()  # Healthy: both records exist
    new = store.get("CUSTOMER", bc_id=bc["Orphan"]["id"])
    assert new is not None and new.crm_id != gone["Orphan"]
    assert [a for a in api.records("dataverse", "accounts") if a["accountid"] == new.crm_id]
    deleted = api.http.post(
        "/api/mappings/CUSTOMER/broken-couplings/delete", json={"bc_ids": [bc["Doomed"]["id"]]}
    )
    assert deleted.json()["value"][0]["result"] == "deleted", deleted.text
    assert "Doomed" not in {c["displayName"] for c in api.records("bc", "customers")}
    assert store.get("CUSTOMER", bc_id=bc["Doomed"]["id"]) is None
    assert api.http.get("/api/mappings/CUSTOMER/broken-couplings").json()["value"] == []
