"""Conformance of the BC API v2.0 emulator over HTTP: what the connector and the engine rely on."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.integration.bc_emulator.conftest import COMPANY, Bc

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def seed(bc: Bc, data: dict) -> None:
    httpx.post(f"{bc.admin}/seed", json=data).raise_for_status()


def records(bc: Bc, entity: str) -> list[dict]:
    return httpx.get(f"{bc.admin}/records/{entity}").raise_for_status().json()["value"]


def test_companies_list_holds_the_default_company(bc: Bc, http: httpx.Client):
    body = http.get(f"{bc.api}/companies").json()
    assert [c["id"] for c in body["value"]] == [COMPANY]
    assert body["value"][0]["name"] == "CRONUS"


def test_create_assigns_id_number_etag_and_modified_time(bc: Bc, http: httpx.Client):
    first = http.post(f"{bc.company}/customers", json={"displayName": "Adatum"})
    second = http.post(f"{bc.company}/customers", json={"displayName": "Fabrikam"})
    assert first.status_code == second.status_code == 201
    a, b = first.json(), second.json()
    assert GUID.match(a["id"]) and a["id"] != b["id"]
    assert (a["number"], b["number"]) == ("C00010", "C00011")
    assert a["@odata.etag"].startswith('W/"') and a["@odata.etag"] != b["@odata.etag"]
    assert a["lastModifiedDateTime"].endswith("Z") and b["lastModifiedDateTime"] > a["lastModifiedDateTime"]
    # Each customer got its company contact (CT000010, CT000011) from the contact series.
    assert http.post(f"{bc.company}/contacts", json={"displayName": "X"}).json()["number"] == "CT000012"
    assert http.post(f"{bc.company}/items", json={"displayName": "Bike"}).json()["number"] == "1000"
    assert http.post(f"{bc.company}/vendors", json={"displayName": "Supplier"}).json()["number"] == "V00010"
    assert (
        http.post(f"{bc.custom_company}/resources", json={"displayName": "Lina"}).json()["number"] == "R0010"
    )
    got = http.get(f"{bc.company}/customers({a['id']})").json()
    assert got["displayName"] == "Adatum" and got["@odata.etag"] == a["@odata.etag"]


def test_duplicate_number_is_rejected(bc: Bc, http: httpx.Client):
    assert (
        http.post(f"{bc.company}/customers", json={"number": "10000", "displayName": "A"}).status_code == 201
    )
    twin = http.post(f"{bc.company}/customers", json={"number": "10000", "displayName": "Twin"})
    assert twin.status_code == 400
    assert twin.json()["error"]["code"] == "Internal_EntityWithSameKeyExists"
    assert len(records(bc, "customers")) == 1


def test_unknown_property_is_a_bad_request(bc: Bc, http: httpx.Client):
    answer = http.post(f"{bc.company}/customers", json={"displayName": "A", "nosuchfield": 1})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "BadRequest" and "'nosuchfield' does not exist" in error["message"]


def test_paging_with_maxpagesize_follows_next_links(bc: Bc, http: httpx.Client):
    seed(bc, {"customers": [{"number": f"N{i:03d}", "displayName": f"C{i}"} for i in range(50)]})
    url, pages, ids = f"{bc.company}/customers", 0, []
    while url:
        body = http.get(url, headers={"Prefer": "odata.maxpagesize=20"}).json()
        pages += 1
        ids += [r["id"] for r in body["value"]]
        assert len(body["value"]) <= 20
        url = body.get("@odata.nextLink")
        if url:
            assert "$skiptoken=" in url
    assert pages == 3
    assert len(ids) == len(set(ids)) == 50


def test_paging_is_stable_while_records_change(bc: Bc, http: httpx.Client):
    seed(bc, {"customers": [{"number": f"N{i:03d}", "displayName": f"C{i}"} for i in range(30)]})
    first = http.get(f"{bc.company}/customers", headers={"Prefer": "odata.maxpagesize=10"}).json()
    http.post(
        f"{bc.company}/customers", json={"number": "LATE", "displayName": "Late"}
    )  # lands anywhere in key order
    seen = [r["id"] for r in first["value"]]
    url = first["@odata.nextLink"]
    while url:
        body = http.get(url, headers={"Prefer": "odata.maxpagesize=10"}).json()
        seen += [r["id"] for r in body["value"]]
        url = body.get("@odata.nextLink")
    assert len(seen) == len(set(seen)) >= 30


def test_top_skip_orderby_select_and_count(bc: Bc, http: httpx.Client):
    seed(bc, {"customers": [{"number": f"N{i:02d}", "displayName": f"D{i:02d}"} for i in range(10)]})
    body = http.get(
        f"{bc.company}/customers",
        params={"$orderby": "number desc", "$top": "3", "$skip": "2", "$select": "number", "$count": "true"},
    ).json()
    assert [r["number"] for r in body["value"]] == ["N07", "N06", "N05"]
    assert set(body["value"][0]) == {"@odata.etag", "id", "number"}
    assert body["@odata.count"] == 10


def test_filters_on_modified_time_number_and_blocked(bc: Bc, http: httpx.Client):
    seed(
        bc,
        {
            "customers": [
                {"number": "A1", "displayName": "A1", "blocked": "All"},
                {"number": "A2", "displayName": "A2"},
            ]
        },
    )
    mark = max(r["lastModifiedDateTime"] for r in records(bc, "customers"))
    late = http.post(
        f"{bc.company}/customers", json={"number": "A3", "displayName": "A3", "blocked": "Ship"}
    ).json()

    def numbers(flt: str) -> list[str]:
        answer = http.get(f"{bc.company}/customers", params={"$filter": flt, "$orderby": "number"})
        assert answer.status_code == 200, answer.text
        return [r["number"] for r in answer.json()["value"]]

    assert numbers(f"lastModifiedDateTime gt {mark}") == ["A3"]
    assert numbers("number eq 'A2'") == ["A2"]
    assert numbers("blocked ne 'All'") == ["A2", "A3"]
    assert numbers(f"id eq {late['id']}") == ["A3"]
    assert numbers("number eq 'A1' or number eq 'A3'") == ["A1", "A3"]
    # BC's serialized blank enum member is accepted on write.
    blank = http.post(
        f"{bc.company}/customers", json={"number": "A4", "displayName": "A4", "blocked": "_x0020_"}
    ).json()
    assert blank["blocked"] == " "


def test_bad_filter_is_an_odata_error(bc: Bc, http: httpx.Client):
    bad = [{"$filter": f} for f in ("number eq", "nosuch eq 1", "number eq 'unterminated")]
    bad += [{"$top": "-1"}, {"$skip": "x"}, {"$orderby": "nosuch"}, {"$select": "nosuch"}]
    for params in bad:
        answer = http.get(f"{bc.company}/customers", params=params)
        assert answer.status_code == 400, params
        error = answer.json()["error"]
        assert error["code"].startswith("BadRequest") and error["message"]


def test_if_match_rules_on_patch_and_delete(bc: Bc, http: httpx.Client):
    created = http.post(f"{bc.company}/customers", json={"displayName": "Old"}).json()
    url = f"{bc.company}/customers({created['id']})"
    for method in ("PATCH", "DELETE"):
        missing = http.request(method, url, json={"displayName": "x"} if method == "PATCH" else None)
        assert missing.status_code == 400
        assert missing.json()["error"]["code"] == "BadRequest_InvalidToken"
    patched = http.patch(url, json={"displayName": "New"}, headers={"If-Match": created["@odata.etag"]})
    assert patched.status_code == 200
    new = patched.json()
    assert new["displayName"] == "New" and new["@odata.etag"] != created["@odata.etag"]
    assert new["lastModifiedDateTime"] > created["lastModifiedDateTime"]
    stale = http.patch(url, json={"displayName": "Lost"}, headers={"If-Match": created["@odata.etag"]})
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "Request_EntityChanged"
    stale_delete = http.delete(url, headers={"If-Match": created["@odata.etag"]})
    assert stale_delete.status_code == 409
    assert http.patch(url, json={"city": "Oslo"}, headers={"If-Match": "*"}).json()["city"] == "Oslo"
    assert http.delete(url, headers={"If-Match": "*"}).status_code == 204
    gone = http.get(url)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "Internal_RecordNotFound"
    assert http.patch(url, json={}, headers={"If-Match": "*"}).status_code == 404


def test_unknown_company_and_record(bc: Bc, http: httpx.Client):
    answer = http.get(f"{bc.api}/companies({uuid.uuid4()})/customers")
    assert answer.status_code == 404
    assert http.get(f"{bc.company}/customers({uuid.uuid4()})").json()["error"]["code"] == (
        "Internal_RecordNotFound"
    )


def test_batch_operations_fail_independently(bc: Bc, http: httpx.Client):
    existing = http.post(f"{bc.company}/customers", json={"number": "B1", "displayName": "B1"}).json()
    company = f"companies({COMPANY})"
    body = {
        "requests": [
            {
                "id": "1",
                "method": "POST",
                "url": f"{company}/customers",
                "body": {"number": "B2", "displayName": "B2"},
                "headers": {"Content-Type": "application/json"},
            },
            {
                "id": "2",
                "method": "POST",
                "url": f"{company}/customers",
                "body": {"number": "B1", "displayName": "x"},
            },
            {
                "id": "3",
                "method": "PATCH",
                "url": f"{company}/customers({existing['id']})",
                "headers": {"If-Match": existing["@odata.etag"]},
                "body": {"city": "Paris"},
            },
            {"id": "4", "method": "GET", "url": f"{company}/customers?$filter=number eq 'B1'"},
        ]
    }
    answer = http.post(f"{bc.api}/$batch", json=body)
    assert answer.status_code == 200
    by_id = {r["id"]: r for r in answer.json()["responses"]}
    assert by_id["1"]["status"] == 201 and by_id["1"]["body"]["number"] == "B2"
    assert by_id["2"]["status"] == 400
    assert by_id["2"]["body"]["error"]["code"] == "Internal_EntityWithSameKeyExists"
    assert by_id["3"]["status"] == 200 and by_id["3"]["body"]["city"] == "Paris"
    assert [r["number"] for r in by_id["4"]["body"]["value"]] == ["B1"]
    assert sorted(r["number"] for r in records(bc, "customers")) == ["B1", "B2"]


def test_batch_over_100_operations_is_rejected_whole(bc: Bc, http: httpx.Client):
    ops = [
        {
            "id": str(i),
            "method": "POST",
            "url": f"companies({COMPANY})/customers",
            "body": {"displayName": "x"},
        }
        for i in range(101)
    ]
    answer = http.post(f"{bc.api}/$batch", json={"requests": ops})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"].startswith("BadRequest")
    assert records(bc, "customers") == []


def test_throttling_answers_429_with_retry_after(bc: Bc, http: httpx.Client):
    httpx.post(f"{bc.admin}/faults", json={"throttle": {"requests": 2, "window_s": 60}}).raise_for_status()
    statuses = [http.get(f"{bc.company}/customers").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    last = http.get(f"{bc.company}/customers")
    assert last.status_code == 429 and int(last.headers["Retry-After"]) >= 1
    assert "error" in last.json()
    httpx.post(f"{bc.admin}/faults", json={}).raise_for_status()
    assert http.get(f"{bc.company}/customers").status_code == 200


def test_tokens_are_checked(bc: Bc):
    url = f"{bc.company}/customers"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401
    wrong_aud = bc.mint("https://graph.microsoft.com")
    assert httpx.get(url, headers={"Authorization": f"Bearer {wrong_aud}"}).status_code == 401
    expired = bc.mint("https://api.businesscentral.dynamics.com", expires_in=-600)
    assert httpx.get(url, headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    other_tenant = bc.mint("https://api.businesscentral.dynamics.com", tid=str(uuid.uuid4()))
    answer = httpx.get(url, headers={"Authorization": f"Bearer {other_tenant}"})
    assert answer.status_code == 401 and "error" in answer.json()
    assert httpx.get(url, headers=bc.headers()).status_code == 200


def test_currency_and_unit_code_id_pairs_stay_consistent(bc: Bc, http: httpx.Client):
    eur = http.post(f"{bc.company}/currencies", json={"code": "EUR", "displayName": "Euro"}).json()
    pcs = http.post(f"{bc.company}/unitsOfMeasure", json={"code": "PCS"}).json()
    by_code = http.post(f"{bc.company}/customers", json={"displayName": "A", "currencyCode": "EUR"}).json()
    assert by_code["currencyId"] == eur["id"]
    by_id = http.post(f"{bc.company}/customers", json={"displayName": "B", "currencyId": eur["id"]}).json()
    assert by_id["currencyCode"] == "EUR"
    item = http.post(f"{bc.company}/items", json={"displayName": "I", "baseUnitOfMeasureCode": "PCS"}).json()
    assert item["baseUnitOfMeasureId"] == pcs["id"]
    missing = http.post(f"{bc.company}/customers", json={"displayName": "C", "currencyId": str(uuid.uuid4())})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "Internal_InvalidTableRelation"


def test_admin_seed_counts_as_an_edit(bc: Bc, http: httpx.Client):
    created = http.post(f"{bc.company}/customers", json={"displayName": "Before"}).json()
    seed(bc, {"customers": [{"id": created["id"], "city": "Rome"}]})
    after = http.get(f"{bc.company}/customers({created['id']})").json()
    assert after["city"] == "Rome" and after["displayName"] == "Before"
    assert after["@odata.etag"] != created["@odata.etag"]
    assert after["lastModifiedDateTime"] > created["lastModifiedDateTime"]
    other = str(uuid.uuid4())
    seed(bc, {"companies": [{"id": other, "name": "Other", "displayName": "Other"}]})
    seed(bc, {"customers": [{"displayName": "Elsewhere", "companyId": other}]})
    listed = http.get(f"{bc.api}/companies({other})/customers").json()["value"]
    assert [r["displayName"] for r in listed] == ["Elsewhere"]
    assert len(http.get(f"{bc.company}/customers").json()["value"]) == 1


def test_stats_count_requests(bc: Bc, http: httpx.Client):
    httpx.post(f"{bc.admin}/stats/reset").raise_for_status()
    http.get(f"{bc.company}/customers")
    http.post(f"{bc.company}/customers", json={"displayName": "S"})
    http.post(f"{bc.api}/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "companies"}]})
    stats = httpx.get(f"{bc.admin}/stats").json()
    assert stats["total"] == 3
    assert stats["GET read"] == 1 and stats["POST write"] == 1 and stats["POST batch"] == 1


def test_maxpagesize_preference_is_acknowledged(bc: Bc, http: httpx.Client):
    answer = http.get(f"{bc.company}/customers", headers={"Prefer": "odata.maxpagesize=7"})
    assert answer.headers["Preference-Applied"] == "odata.maxpagesize=7"


def test_snapshot_batch_undoes_everything_when_one_operation_fails(bc: Bc, http: httpx.Client):
    existing = http.post(
        f"{bc.company}/customers", json={"number": "S1", "displayName": "S", "city": "Kept"}
    ).json()
    company = f"companies({COMPANY})"
    ops = [
        {
            "id": "a",
            "method": "POST",
            "url": f"{company}/customers",
            "body": {"number": "S2", "displayName": "S2"},
        },
        {
            "id": "b",
            "method": "PATCH",
            "url": f"{company}/customers({existing['id']})",
            "headers": {"If-Match": "*"},
            "body": {"city": "Changed"},
        },
        {
            "id": "c",
            "method": "POST",
            "url": f"{company}/customers",
            "body": {"number": "S1", "displayName": "S1"},
        },
    ]
    answer = http.post(f"{bc.api}/$batch", json={"requests": ops}, headers={"Isolation": "snapshot"})
    statuses = {r["id"]: r["status"] for r in answer.json()["responses"]}
    assert statuses == {"a": 201, "b": 200, "c": 400}
    assert [(r["number"], r["city"]) for r in records(bc, "customers")] == [("S1", "Kept")]
    # The number series did not move either: the next customer gets the first number.
    assert http.post(f"{bc.company}/customers", json={"displayName": "N"}).json()["number"] == "C00010"
    ok = http.post(f"{bc.api}/$batch", json={"requests": ops[:2]}, headers={"Isolation": "snapshot"})
    assert [r["status"] for r in ok.json()["responses"]] == [201, 200]
    assert sorted(r["number"] for r in records(bc, "customers")) == ["C00010", "S1", "S2"]


def test_batch_urls_may_be_percent_encoded(bc: Bc, http: httpx.Client):
    http.post(f"{bc.company}/customers", json={"number": "P 1", "displayName": "P"})
    url = f"companies({COMPANY})/customers?%24filter=number%20eq%20%27P%201%27"
    answer = http.post(f"{bc.api}/$batch", json={"requests": [{"id": "1", "method": "GET", "url": url}]})
    assert [r["number"] for r in answer.json()["responses"][0]["body"]["value"]] == ["P 1"]
