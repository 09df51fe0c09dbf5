"""Record-level actions over HTTP: couple, uncouple, create, sync selected, match, skipped, ribbon."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlparse

import pytest

from tests.integration.api.conftest import Api, start_stack


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    stack = start_stack(tmp_path_factory, "recordstack", data="none")
    client = Api(stack)
    client.seed(
        "bc",
        {
            "customers": [
                {
                    "id": "b0000000-0000-4000-8000-000000000001",
                    "number": "R1",
                    "displayName": "Ribbon One",
                    "email": "one@example.com",
                    "blocked": " ",
                },
                {
                    "id": "b0000000-0000-4000-8000-000000000002",
                    "number": "R2",
                    "displayName": "Ribbon Two",
                    "email": "two@example.com",
                    "blocked": " ",
                },
                {
                    "id": "b0000000-0000-4000-8000-000000000003",
                    "number": "R3",
                    "displayName": "Twin",
                    "email": "twin@example.com",
                    "blocked": " ",
                },
                {
                    "id": "b0000000-0000-4000-8000-000000000004",
                    "number": "R4",
                    "displayName": "Lonely",
                    "email": "lonely@example.com",
                    "blocked": " ",
                },
            ]
        },
    )
    client.seed(
        "dataverse",
        {
            "accounts": [
                {
                    "accountid": "a0000000-0000-4000-8000-000000000001",
                    "name": "Account One",
                    "customertypecode": 3,
                },
                {
                    "accountid": "a0000000-0000-4000-8000-000000000002",
                    "name": "Account Two",
                    "customertypecode": 3,
                },
                {
                    "accountid": "a0000000-0000-4000-8000-000000000003",
                    "name": "Twin",
                    "emailaddress1": "TWIN@example.com",
                    "customertypecode": 3,
                },
                {
                    "accountid": "a0000000-0000-4000-8000-000000000005",
                    "name": "Walk-in",
                    "customertypecode": 3,
                },
            ]
        },
    )
    yield client
    stack.stop()


BC1, BC2, BC3, BC4 = (f"b0000000-0000-4000-8000-00000000000{i}" for i in range(1, 5))
CRM1, CRM2, CRM3, CRM5 = (f"a0000000-0000-4000-8000-00000000000{i}" for i in (1, 2, 3, 5))


def test_couple_existing_records_and_sync_in_a_chosen_direction(api):
    answer = api.http.post(
        "/api/mappings/CUSTOMER/couplings", json={"bc_id": BC1, "crm_id": CRM1, "sync": "to_crm"}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["sync"][0]["result"] == "modified"
    account = next(a for a in api.records("dataverse", "accounts") if a["accountid"] == CRM1)
    assert account["name"] == "Ribbon One" and account["accountnumber"] == "R1"


def test_coupling_an_already_coupled_record_is_409_and_changes_nothing(api):
    again = api.http.post("/api/mappings/CUSTOMER/couplings", json={"bc_id": BC1, "crm_id": CRM2})
    assert again.status_code == 409 and again.json()["error"]["field"] == "bc_id"
    other = api.http.post("/api/mappings/CUSTOMER/couplings", json={"bc_id": BC2, "crm_id": CRM1})
    assert other.status_code == 409 and other.json()["error"]["field"] == "crm_id"
    assert api.http.get("/api/mappings/CUSTOMER/couplings", params={"bc_id": BC2}).json()["value"] == []
    assert api.http.get("/api/mappings/CUSTOMER/couplings", params={"crm_id": CRM2}).json()["value"] == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"bc_id": "not-a-guid", "crm_id": CRM2}, 400, "bc_id"),
        ({"bc_id": BC2, "crm_id": "' or 1 eq 1"}, 400, "crm_id"),
        ({"bc_id": str(uuid.uuid4()), "crm_id": CRM2}, 404, "bc_id"),
        ({"bc_id": BC2, "crm_id": str(uuid.uuid4())}, 404, "crm_id"),
    ],
)
def test_couple_rejects_bad_or_missing_records(api, body, status, field):
    response = api.http.post("/api/mappings/CUSTOMER/couplings", json=body)
    assert response.status_code == status and response.json()["error"]["field"] == field


def test_sync_selected_with_direction_choice_and_recommended(api):
    api.http.post("/api/mappings/CUSTOMER/couplings", json={"bc_id": BC2, "crm_id": CRM2}).raise_for_status()
    # Explicit direction: CRM -> BC.
    result = api.http.post(
        "/api/mappings/CUSTOMER/records/sync", json={"crm_ids": [CRM2], "direction": "from_crm"}
    )
    assert result.status_code == 200
    assert result.json()["value"][0]["direction"] == "from_crm"
    assert next(c for c in api.records("bc", "customers") if c["id"] == BC2)["displayName"] == "Account Two"
    # Recommended: only the CRM side changed since the last sync, so CRM -> BC is chosen.
    api.seed("dataverse", {"accounts": [{"accountid": CRM2, "telephone1": "+1 555 2222"}]})
    rec = api.http.post("/api/mappings/CUSTOMER/records/sync", json={"bc_ids": [BC2]}).json()["value"][0]
    assert rec["direction"] == "from_crm" and rec["result"] == "modified", rec
    assert next(c for c in api.records("bc", "customers") if c["id"] == BC2)["phoneNumber"] == "+1 555 2222"
    # Both sides changed: recommended reports a conflict and writes nothing.
    api.seed("dataverse", {"accounts": [{"accountid": CRM2, "telephone1": "+1 555 3333"}]})
    api.seed("bc", {"customers": [{"id": BC2, "phoneNumber": "+1 555 4444"}]})
    rec = api.http.post("/api/mappings/CUSTOMER/records/sync", json={"bc_ids": [BC2]}).json()["value"][0]
    assert rec["result"] == "conflict"


def test_match_dry_run_equals_the_real_run(api):
    dry = api.http.post("/api/mappings/CUSTOMER/match", json={"dry_run": True}).json()
    assert dry["counts"]["coupled"] == 1 and dry["counts"]["no_match"] == 1, dry  # Twin matches, Lonely not
    assert api.http.get("/api/mappings/CUSTOMER/couplings", params={"bc_id": BC3}).json()["value"] == []
    real = api.http.post("/api/mappings/CUSTOMER/match", json={}).json()
    strip = lambda r: sorted((o["bc_id"], o["result"], o.get("crm_id")) for o in r["value"])  # noqa: E731
    assert strip(dry) == strip(real)
    assert (
        api.http.get("/api/mappings/CUSTOMER/couplings", params={"bc_id": BC3}).json()["value"][0]["crm_id"]
        == CRM3
    )


def test_create_counterparts_and_uncouple(api):
    created = api.http.post("/api/mappings/CUSTOMER/records/create", json={"bc_ids": [BC4]}).json()["value"]
    assert created[0]["result"] == "inserted"
    assert any(a["name"] == "Lonely" for a in api.records("dataverse", "accounts"))
    twice = api.http.post("/api/mappings/CUSTOMER/records/create", json={"bc_ids": [BC4]}).json()["value"]
    assert twice[0]["result"] == "failed" and "already coupled" in twice[0]["message"]
    removed = api.http.request("DELETE", "/api/mappings/CUSTOMER/couplings", json={"bc_ids": [BC4]}).json()
    assert removed == {"removed": 1}
    assert any(a["name"] == "Lonely" for a in api.records("dataverse", "accounts"))  # the records stay


def test_ribbon_redirects_for_a_coupled_record(api):
    response = api.http.get("/api/crm/open", params={"entity": "account", "id": CRM1}, follow_redirects=False)
    assert response.status_code == 302
    target = urlparse(response.headers["location"])
    assert target.netloc == "businesscentral.dynamics.com"
    query = parse_qs(target.query)
    assert query["company"] == ["CRONUS"] and query["page"] == ["21"] and query["filter"] == ["'No.' IS 'R1'"]


@pytest.mark.parametrize(
    ("only_coupled", "direction", "lang", "expected"),
    [
        (True, "Bidirectional", "sv-SE,sv;q=0.9", "Synka endast kopplade poster"),
        (False, "ToIntegrationTable", "fr-CH", "uniquement de Business Central"),
        (True, "ToIntegrationTable", "nl-BE", "Alleen gekoppelde records synchr."),
    ],
)
def test_ribbon_refuses_when_the_mapping_does_not_allow_creating(
    api, only_coupled, direction, lang, expected
):
    api.http.patch("/api/mappings/CUSTOMER", json={"sync_only_coupled": only_coupled, "direction": direction})
    try:
        response = api.http.get(
            "/api/crm/open",
            params={"entity": "account", "id": CRM5},
            headers={"Accept-Language": lang},
            follow_redirects=False,
        )
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        assert expected in response.text
        assert not any(c["displayName"] == "Walk-in" for c in api.records("bc", "customers"))
    finally:
        api.http.post("/api/mappings/reset").raise_for_status()


def test_ribbon_creates_couples_and_redirects_when_allowed(api):
    api.http.patch("/api/mappings/CUSTOMER", json={"sync_only_coupled": False}).raise_for_status()
    try:
        response = api.http.get(
            "/api/crm/open", params={"entity": "account", "id": CRM5}, follow_redirects=False
        )
        assert response.status_code == 302, response.text
        created = next(c for c in api.records("bc", "customers") if c["displayName"] == "Walk-in")
        assert parse_qs(urlparse(response.headers["location"]).query)["filter"] == [
            f"'No.' IS '{created['number']}'"
        ]
    finally:
        api.http.post("/api/mappings/reset").raise_for_status()


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"entity": "account", "id": "https://evil.example"}, "InvalidId"),
        ({"entity": "../etc", "id": CRM1}, "InvalidEntity"),
        ({"entity": "account"}, "InvalidId"),
    ],
)
def test_ribbon_rejects_bad_input(api, params, code):
    response = api.http.get("/api/crm/open", params=params, follow_redirects=False)
    assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_skipped_records_restore(api):
    lonely = next(a["accountid"] for a in api.records("dataverse", "accounts") if a["name"] == "Lonely")
    api.http.post(
        "/api/mappings/CUSTOMER/couplings", json={"bc_id": BC4, "crm_id": lonely}
    ).raise_for_status()
    api.http.patch("/api/mappings/CUSTOMER", json={"sync_only_coupled": True}).raise_for_status()
    # The first sync of a new coupling has no history (BC values win); then the same conflict twice in a
    # row puts the record in Skipped Records.
    for i in range(3):
        api.seed("bc", {"customers": [{"id": BC4, "displayName": f"BC side {i}"}]})
        api.seed("dataverse", {"accounts": [{"accountid": lonely, "name": f"CRM side {i}"}]})
        api.wait(api.start("/api/mappings/CUSTOMER/sync"))
    skipped = api.http.get("/api/mappings/CUSTOMER/couplings", params={"skipped": "true"}).json()["value"]
    # BC2 (left in conflict by an earlier test) failed twice as well; both are in Skipped Records.
    assert {c["bc_id"] for c in skipped} == {BC2, BC4}
    errors = api.http.get("/api/errors", params={"mapping": "CUSTOMER"}).json()["value"]
    assert any("conflict" in e["message"] for e in errors)
    restored = api.http.post("/api/mappings/CUSTOMER/skipped/restore", json={"bc_ids": [BC4]}).json()
    assert restored == {"restored": 1}
    still = api.http.get("/api/mappings/CUSTOMER/couplings", params={"skipped": "true"}).json()["value"]
    assert [c["bc_id"] for c in still] == [BC2]
    retry = api.http.post("/api/errors/retry", json={"ids": [errors[0]["id"]]})
    assert retry.status_code == 200 and retry.json()["value"]
    api.http.post("/api/mappings/reset").raise_for_status()
