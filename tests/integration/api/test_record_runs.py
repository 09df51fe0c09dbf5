"""Record actions over HTTP: the run each one records, and a refused request that changes nothing."""

from __future__ import annotations

import pytest

from shared.store.errors import SyncError
from tests.integration.api.conftest import Api, start_stack

BC1, BC2 = (f"b1000000-0000-4000-8000-00000000000{i}" for i in (1, 2))
CRM1, CRM2 = (f"a1000000-0000-4000-8000-00000000000{i}" for i in (1, 2))


SEED = {
    "bc": {
        "customers": [
            {"id": BC1, "number": "RR1", "displayName": "Run One", "blocked": " "},
            {"id": BC2, "number": "RR2", "displayName": "Run Two", "blocked": " "},
        ]
    },
    "dataverse": {
        "accounts": [
            {"accountid": CRM1, "name": "Account Run One", "customertypecode": 3},
            {"accountid": CRM2, "name": "Account Run Two", "customertypecode": 3},
        ]
    },
}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    stack = start_stack(tmp_path_factory, "recordrunstack", data="none")
    client = Api(stack)
    for side, data in SEED.items():
        client.seed(side, data)
    yield client
    stack.stop()


def test_sync_selected_records_its_run_with_the_outcomes_counted(api):
    coupled = api.http.post("/api/mappings/CUSTOMER/couplings", json={"bc_id": BC1, "crm_id": CRM1})
    assert coupled.status_code == 201, coupled.text
    answer = api.http.post(
        "/api/mappings/CUSTOMER/records/sync", json={"bc_ids": [BC1], "direction": "to_crm"}
    ).json()
    assert [r["result"] for r in answer["value"]] == ["modified"]
    run = api.http.get(f"/api/runs/{answer['run_id']}").json()
    assert (run["kind"], run["trigger"], run["mappings"]) == ("records", "api", ["CUSTOMER"])
    assert (run["status"], run["message"]) == ("Succeeded", "modified: 1")
    assert run["finished_at"]


def test_creating_in_a_direction_the_mapping_does_not_sync_is_refused_before_anything_is_created(api):
    api.http.patch("/api/mappings/CUSTOMER", json={"direction": "ToIntegrationTable"}).raise_for_status()
    try:
        refused = api.http.post(
            "/api/mappings/CUSTOMER/records/create", json={"bc_ids": [BC2], "crm_ids": [CRM2]}
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "DirectionNotAllowed"
        assert not any(a["name"] == "Run Two" for a in api.records("dataverse", "accounts"))
        couplings = api.http.get("/api/mappings/CUSTOMER/couplings", params={"bc_id": BC2}).json()
        assert couplings["value"] == []
    finally:
        api.http.post("/api/mappings/reset").raise_for_status()


def test_retrying_an_unknown_error_answers_per_id(api):
    error_id = SyncError("1234567890123-abcdef", "CUSTOMER", "to_crm", BC2, None, "gone").error_id
    answer = api.http.post("/api/errors/retry", json={"ids": [error_id]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["value"] == [{"id": error_id, "result": "failed", "message": "no such error"}]
