"""Dataverse Web API emulator conformance, over HTTP with msal tokens from the devstack authority."""

from __future__ import annotations

import uuid

import httpx
import pytest

from shared.connectors.auth import TokenProvider
from shared.settings import Settings
from tests.integration.conftest import Admin


@pytest.fixture
def dv(services):
    settings = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", **services["env"]})
    token = TokenProvider(settings).token(settings.dataverse_scope)
    admin = Admin(services["dv_admin"])
    admin.reset()
    client = httpx.Client(
        base_url=f"{settings.dataverse_url}/api/data/v9.2",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=30,
    )
    yield client, admin, settings
    admin.faults()


def test_401_without_token_and_with_a_token_for_another_audience(dv, services):
    client, _, settings = dv
    anonymous = httpx.get(f"{settings.dataverse_url}/api/data/v9.2/accounts")
    assert anonymous.status_code == 401 and "WWW-Authenticate" in anonymous.headers
    bc_token = TokenProvider(settings).token(settings.bc_scope)
    other = httpx.get(
        f"{settings.dataverse_url}/api/data/v9.2/accounts", headers={"Authorization": f"Bearer {bc_token}"}
    )
    assert other.status_code == 401


def test_paging_with_maxpagesize_and_nextlink(dv):
    client, admin, _ = dv
    admin.seed({"accounts": [{"name": f"A{i:02d}"} for i in range(11)]})
    names, url, pages = [], "/accounts?$select=name&$filter=startswith(name, 'A')", 0
    while url:
        response = client.get(url, headers={"Prefer": "odata.maxpagesize=4"})
        assert response.headers["Preference-Applied"] == "odata.maxpagesize=4"
        body = response.json()
        names += [r["name"] for r in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert pages == 3 and sorted(names) == [f"A{i:02d}" for i in range(11)]


def test_upsert_semantics_of_patch_to_a_key(dv):
    client, _, _ = dv
    key = str(uuid.uuid4())
    assert client.patch(f"/accounts({key})", json={"name": "x"}, headers={"If-Match": "*"}).status_code == 404
    assert (
        client.patch(f"/accounts({key})", json={"name": "x"}, headers={"If-None-Match": "*"}).status_code
        == 204
    )
    duplicate = client.patch(f"/accounts({key})", json={"name": "y"}, headers={"If-None-Match": "*"})
    assert duplicate.status_code == 412 and duplicate.json()["error"]["code"] == "0x80040237"
    etag = client.get(f"/accounts({key})").json()["@odata.etag"]
    assert (
        client.patch(f"/accounts({key})", json={"name": "z"}, headers={"If-Match": etag}).status_code == 204
    )
    assert (
        client.patch(f"/accounts({key})", json={"name": "w"}, headers={"If-Match": etag}).status_code == 412
    )
    assert (
        client.patch(f"/accounts({uuid.uuid4()})", json={"name": "upserted"}).status_code == 204
    )  # plain upsert
    missing = client.get(f"/accounts({uuid.uuid4()})")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "0x80040217"


def test_create_with_representation_lookups_and_whoami(dv):
    client, _, _ = dv
    me = client.get("/WhoAmI").json()["UserId"]
    parent = client.post("/accounts", json={"name": "Parent"}, headers={"Prefer": "return=representation"})
    assert parent.status_code == 201
    parent_id = parent.json()["accountid"]
    assert parent.json()["_modifiedby_value"] == me and parent.json()["_ownerid_value"] == me
    child = client.post(
        "/contacts",
        json={
            "firstname": "Ann",
            "lastname": "Lee",
            "parentcustomerid_account@odata.bind": f"/accounts({parent_id})",
        },
    )
    assert child.status_code == 204 and "OData-EntityId" in child.headers
    found = client.get(f"/contacts?$filter=_parentcustomerid_value eq {parent_id}").json()["value"]
    assert [c["fullname"] for c in found] == ["Ann Lee"]
    dangling = client.post(
        "/contacts", json={"parentcustomerid_account@odata.bind": f"/accounts({uuid.uuid4()})"}
    )
    assert dangling.status_code == 404


def test_delta_link_after_create_update_delete_and_admin_seed(dv):
    client, admin, _ = dv
    first = client.get("/accounts?$select=name", headers={"Prefer": "odata.track-changes"}).json()
    delta = first["@odata.deltaLink"]
    key = str(uuid.uuid4())
    client.patch(f"/accounts({key})", json={"name": "tracked"})
    seeded = admin.seed({"accounts": [{"name": "seeded"}]})
    assert seeded["seeded"]["accounts"] == 1
    changes = client.get(delta, headers={"Prefer": "odata.track-changes"}).json()
    assert sorted(r["name"] for r in changes["value"]) == ["seeded", "tracked"]
    client.delete(f"/accounts({key})")
    after = client.get(changes["@odata.deltaLink"], headers={"Prefer": "odata.track-changes"}).json()
    assert after["value"] == [
        {"@odata.context": after["value"][0]["@odata.context"], "id": key, "reason": "deleted"}
    ]
    assert after["value"][0]["@odata.context"].endswith("$deletedEntity")


def test_bulk_operations_limits_and_all_or_nothing(dv):
    client, admin, _ = dv
    url = "/accounts/Microsoft.Dynamics.CRM.CreateMultiple"
    too_many = [{"@odata.type": "Microsoft.Dynamics.CRM.account", "name": str(i)} for i in range(1001)]
    assert client.post(url, json={"Targets": too_many}).status_code == 400
    mixed = [
        {"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "ok"},
        {"@odata.type": "Microsoft.Dynamics.CRM.account", "bogus": 1},
    ]
    assert client.post(url, json={"Targets": mixed}).status_code == 400
    assert admin.records("accounts") == []  # nothing written
    ok = client.post(url, json={"Targets": mixed[:1]})
    assert ok.status_code == 200 and len(ok.json()["Ids"]) == 1


def test_bad_filter_is_400_with_the_odata_error_shape(dv):
    client, _, _ = dv
    for bad in ("name eq", "nosuchfield eq 1", "name eq 'x' or", "name lt"):
        response = client.get("/accounts", params={"$filter": bad})
        assert response.status_code == 400, bad
        assert set(response.json()["error"]) == {"code", "message"}


def test_throttling_answers_429_with_retry_after(dv):
    client, admin, _ = dv
    admin.faults(throttle={"requests": 2, "window_s": 5})
    statuses = [client.get("/accounts").status_code for _ in range(4)]
    assert statuses[:2] == [200, 200] and statuses[2:] == [429, 429]
    throttled = client.get("/accounts")
    assert 1 <= int(throttled.headers["Retry-After"]) <= 5
    assert admin.stats()["throttled"] >= 3
