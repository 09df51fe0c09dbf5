"""The Full Synchronization Review over HTTP: recommendations, starts that follow them, restart of a
mapping, the per-direction status, and runs that finish with errors. Tests share one stack, in order."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.api.conftest import Api, start_stack


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    stack = start_stack(tmp_path_factory, "reviewstack", data="none", workers=2)
    yield Api(stack)
    stack.stop()


def lines(api: Api) -> dict[str, dict]:
    answer = api.http.get("/api/review")
    assert answer.status_code == 200, answer.text
    return {line["mapping"]: line for line in answer.json()["value"]}


def account(name: str, **extra) -> dict:
    return {"accountid": str(uuid.uuid4()), "name": name, "customertypecode": 3, "statecode": 0, **extra}


def test_empty_tenant_recommends_nothing_but_salespeople(api):
    review = lines(api)
    assert review["CUSTOMER"]["recommendation"] == "NoRecordsFound"
    assert review["SALESPEOPLE"]["recommendation"] == "FullSynchronization"
    assert review["CUSTOMER"]["last_full_sync"]["run_id"] is None
    assert review["CUSTOMER"]["last_full_sync"]["to_crm"] == ""


def test_both_sides_holding_data_are_coupled_not_duplicated(api):
    api.seed("bc", {"customers": [{"displayName": "Pair", "email": "pair@example.com", "blocked": " "}]})
    api.seed("bc", {"customers": [{"displayName": "Only BC", "email": "onlybc@example.com", "blocked": " "}]})
    api.seed("dataverse", {"accounts": [account("Pair", emailaddress1="pair@example.com")]})
    assert lines(api)["CUSTOMER"]["recommendation"] == "CoupleRecords"
    run_id = api.start(mappings=["CUSTOMER", "CONTACT"], recommended=True, after_full_sync="restore")
    run = api.wait(run_id)
    assert run["status"] == "Succeeded", run
    customer, contact = api.job(run, "CUSTOMER"), api.job(run, "CONTACT")
    assert customer["to_crm"]["coupled"] == 1 and customer["to_crm"]["inserted"] == 0, customer
    assert contact["message"] == "no records on either side: nothing to synchronize", contact
    assert not [a for a in api.records("dataverse", "accounts") if a["name"] == "Only BC"]
    line = lines(api)["CUSTOMER"]
    assert line["last_full_sync"]["run_id"] == run_id
    assert (line["last_full_sync"]["to_crm"], line["last_full_sync"]["from_crm"]) == ("Success", "Success")


def test_match_options_are_kept_per_mapping_and_a_restart_follows_them(api):
    bad = api.http.patch("/api/mappings/SALESPEOPLE", json={"create_new_if_no_match": True})
    assert bad.status_code == 400 and "create_new_if_no_match" in bad.text, bad.text
    api.http.patch("/api/mappings/CUSTOMER", json={"create_new_if_no_match": True}).raise_for_status()
    assert api.http.get("/api/mappings/CUSTOMER").json()["create_new_if_no_match"] is True
    run = api.wait(
        api.start("/api/mappings/CUSTOMER/sync", full=True, recommended=True, after_full_sync="restore")
    )
    assert api.job(run, "CUSTOMER")["to_crm"]["inserted"] == 1, run
    assert [a for a in api.records("dataverse", "accounts") if a["name"] == "Only BC"]


def test_failed_records_finish_the_run_with_errors_and_show_error_in_the_review(api):
    api.seed("dataverse", {"accounts": [account("Too long for BC " + "z" * 100)]})  # BC allows 100
    run = api.wait(api.start("/api/mappings/CUSTOMER/sync", full=True, after_full_sync="restore"))
    assert run["status"] == "FinishedWithErrors", run
    assert api.job(run, "CUSTOMER")["status"] == "FinishedWithErrors"
    line = lines(api)["CUSTOMER"]["last_full_sync"]
    assert (line["to_crm"], line["from_crm"]) == ("Success", "Error"), line
    runs = api.http.get("/api/runs", params={"limit": 1}).json()["value"]
    assert runs[0]["status"] == "FinishedWithErrors"


def test_a_coupling_to_a_record_outside_the_table_filter_is_refused(api):
    api.seed("bc", {"customers": [{"displayName": "Blocked one", "blocked": "All"}]})
    api.seed("dataverse", {"accounts": [account("Free account")]})
    bc = next(c for c in api.records("bc", "customers") if c["displayName"] == "Blocked one")
    crm = next(a for a in api.records("dataverse", "accounts") if a["name"] == "Free account")
    answer = api.http.post(
        "/api/mappings/CUSTOMER/couplings", json={"bc_id": bc["id"], "crm_id": crm["accountid"]}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "OutsideFilter" and answer.json()["error"]["field"] == "bc_id"
    found = api.http.get("/api/mappings/CUSTOMER/couplings", params={"bc_id": bc["id"]}).json()["value"]
    assert found == []
