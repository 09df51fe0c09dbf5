"""The BC emulator's contract behaviour over HTTP: API roots, contacts and business relations,
client ids, company scoping, paging with $top, the queueing concurrency model, standard documents."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree  # noqa: S405 - the emulator under test wrote it

import httpx

from tests.integration.bc_emulator.conftest import COMPANY, Bc


def seed(bc: Bc, data: dict) -> None:
    httpx.post(f"{bc.admin}/seed", json=data).raise_for_status()


def records(bc: Bc, entity: str) -> list[dict]:
    return httpx.get(f"{bc.admin}/records/{entity}").raise_for_status().json()["value"]


def test_standard_root_has_salespeople_purchasers_but_no_salespeople_or_resources(bc: Bc, http: httpx.Client):
    assert http.get(f"{bc.company}/salespeople").status_code == 404
    assert http.get(f"{bc.company}/resources").status_code == 404
    no_code = http.post(f"{bc.company}/salespeoplePurchasers", json={"displayName": "Ann"})
    assert no_code.status_code == 400  # Code is NotBlank and has no number series
    sp = http.post(
        f"{bc.company}/salespeoplePurchasers",
        json={
            "code": "AL",
            "displayName": "Ann Lee",
            "email": "ann@x.example",
            "phoneNo": "1",
            "jobTitle": "Rep",
        },
    )
    assert sp.status_code == 201 and sp.json()["code"] == "AL"
    # The custom root serves the same company data.
    custom = http.get(f"{bc.custom_company}/salespeoplePurchasers").json()["value"]
    assert [r["id"] for r in custom] == [sp.json()["id"]]
    assert [c["id"] for c in http.get(f"{bc.custom}/companies").json()["value"]] == [COMPANY]
    assert http.get(f"{bc.custom_company}/customers").status_code == 404


def test_resources_on_the_custom_root_with_their_series_and_unit_relation(bc: Bc, http: httpx.Client):
    http.post(f"{bc.company}/unitsOfMeasure", json={"code": "HOUR"}).raise_for_status()
    first = http.post(
        f"{bc.custom_company}/resources",
        json={"displayName": "Lina", "type": "Person", "baseUnitOfMeasureCode": "HOUR"},
    )
    assert first.status_code == 201 and first.json()["number"] == "R0010"
    bad_unit = http.post(
        f"{bc.custom_company}/resources", json={"displayName": "X", "baseUnitOfMeasureCode": "NOPE"}
    )
    assert bad_unit.json()["error"]["code"] == "Internal_InvalidTableRelation"
    bad_type = http.post(f"{bc.custom_company}/resources", json={"displayName": "X", "type": "Robot"})
    assert bad_type.status_code == 400
    ops = [{"id": "1", "method": "GET", "url": f"companies({COMPANY})/resources"}]
    batch = http.post(f"{bc.custom}/$batch", json={"requests": ops}).json()
    assert [r["number"] for r in batch["responses"][0]["body"]["value"]] == ["R0010"]


def test_company_information_countries_rates_and_read_only_entities(bc: Bc, http: httpx.Client):
    info = http.get(f"{bc.company}/companyInformation").json()["value"]
    assert len(info) == 1 and info[0]["currencyCode"] == "USD"
    codes = {c["code"] for c in http.get(f"{bc.company}/countriesRegions").json()["value"]}
    assert {"US", "SE", "DE", "GB"} <= codes
    seed(
        bc,
        {
            "currencies": [{"code": "EUR", "displayName": "Euro"}],
            "currencyExchangeRates": [
                {
                    "currencyCode": "EUR",
                    "startingDate": "2026-01-01",
                    "exchangeRateAmount": 1,
                    "relationalCurrencyCode": "",
                    "relationalExchangeRateAmount": 1.08,
                },
                {
                    "currencyCode": "EUR",
                    "startingDate": "2026-06-01",
                    "exchangeRateAmount": 1,
                    "relationalCurrencyCode": "",
                    "relationalExchangeRateAmount": 1.12,
                },
            ],
        },
    )
    rates = http.get(
        f"{bc.company}/currencyExchangeRates", params={"$filter": "currencyCode eq 'EUR'"}
    ).json()
    assert sorted(r["startingDate"] for r in rates["value"]) == ["2026-01-01", "2026-06-01"]
    refused = http.post(f"{bc.company}/currencyExchangeRates", json={"currencyCode": "EUR"})
    assert refused.status_code == 405 and refused.json()["error"]["code"] == "BadRequest_MethodNotAllowed"
    assert http.post(f"{bc.company}/contactsInformation", json={}).status_code == 405


def test_a_new_customer_gets_a_company_contact_with_a_customer_relation(bc: Bc, http: httpx.Client):
    customer = http.post(f"{bc.company}/customers", json={"displayName": "Kontoso", "city": "Oslo"}).json()
    [company] = [c for c in records(bc, "contacts") if c["type"] == "Company"]
    assert (company["displayName"], company["city"], company["contactBusinessRelation"]) == (
        "Kontoso",
        "Oslo",
        "Customer",
    )
    assert company["companyNumber"] == company["number"]
    person = http.post(
        f"{bc.company}/contacts", json={"displayName": "Ada Lovelace", "companyNumber": company["number"]}
    )
    assert person.status_code == 201, person.text
    assert (
        person.json()["companyName"] == "Kontoso" and person.json()["contactBusinessRelation"] == "Customer"
    )
    bound = http.get(f"{bc.company}/customers({customer['id']})/contactsInformation").json()["value"]
    assert sorted((r["contactType"], r["contactName"]) for r in bound) == [
        ("Company", "Kontoso"),
        ("Person", "Ada Lovelace"),
    ]
    assert {r["relatedType"] for r in bound} == {"Customer"} and {r["relatedId"] for r in bound} == {
        customer["id"]
    }
    top = http.get(
        f"{bc.company}/contactsInformation",
        params={"$filter": "relatedType eq 'Customer' and contactType eq 'Person'"},
    ).json()["value"]
    assert [r["contactId"] for r in top] == [person.json()["id"]]
    # Renaming the customer renames its company contact and the persons' company name (CustCont-Update).
    http.patch(
        f"{bc.company}/customers({customer['id']})",
        json={"displayName": "Contoso"},
        headers={"If-Match": customer["@odata.etag"]},
    ).raise_for_status()
    again = http.get(f"{bc.company}/contacts({person.json()['id']})").json()
    assert again["companyName"] == "Contoso"
    # Deleting the customer takes the business relation with it.
    http.delete(f"{bc.company}/customers({customer['id']})", headers={"If-Match": "*"}).raise_for_status()
    assert (
        http.get(f"{bc.company}/contacts({person.json()['id']})").json()["contactBusinessRelation"] == "None"
    )
    assert http.get(f"{bc.company}/contactsInformation").json()["value"] == []


def test_vendor_persons_and_contact_rules(bc: Bc, http: httpx.Client):
    http.post(f"{bc.company}/vendors", json={"displayName": "Supply AB"}).raise_for_status()
    [vendor_contact] = [c for c in records(bc, "contacts") if c["type"] == "Company"]
    assert vendor_contact["contactBusinessRelation"] == "Vendor"
    p = http.post(
        f"{bc.company}/contacts", json={"displayName": "Per", "companyNumber": vendor_contact["number"]}
    )
    assert p.json()["contactBusinessRelation"] == "Vendor"
    loose = http.post(f"{bc.company}/contacts", json={"displayName": "Alone"}).json()
    assert loose["contactBusinessRelation"] == "None" and loose["companyName"] == ""
    for bad in (
        {"displayName": "X", "firstName": "X"},
        {"displayName": "X", "surname": "Y"},
        {"jobTitle": "Boss"},
    ):
        assert http.post(f"{bc.company}/contacts", json=bad).status_code == 400, bad
    wrong = http.post(f"{bc.company}/contacts", json={"displayName": "X", "companyNumber": loose["number"]})
    assert wrong.json()["error"]["code"] == "Internal_InvalidTableRelation"  # a person, not a company
    too_long = http.post(f"{bc.company}/contacts", json={"displayName": "X", "jobTitle": "j" * 31})
    assert too_long.json()["error"]["code"] == "Application_StringExceededLength"


def test_seeded_customers_get_the_same_links(bc: Bc, http: httpx.Client):
    cid, contact_id = str(uuid.uuid4()), str(uuid.uuid4())
    seed(
        bc,
        {
            "customers": [
                {
                    "id": cid,
                    "number": "K1",
                    "displayName": "Seeded",
                    "companyContact": {"id": contact_id, "number": "KC1"},
                }
            ],
            "contacts": [{"displayName": "Pia", "companyNumber": "KC1"}],
        },
    )
    contact = http.get(f"{bc.company}/contacts({contact_id})").json()
    assert (contact["number"], contact["contactBusinessRelation"]) == ("KC1", "Customer")
    bound = http.get(f"{bc.company}/customers({cid})/contactsInformation").json()["value"]
    assert sorted(r["contactName"] for r in bound) == ["Pia", "Seeded"]


def test_client_id_becomes_the_system_id_and_a_second_post_is_refused(bc: Bc, http: httpx.Client):
    chosen = str(uuid.uuid4())
    first = http.post(f"{bc.company}/customers", json={"id": chosen, "displayName": "X"})
    assert first.status_code == 201 and first.json()["id"] == chosen
    again = http.post(f"{bc.company}/customers", json={"id": chosen, "displayName": "X"})
    assert again.status_code == 400 and again.json()["error"]["code"] == "Internal_EntityWithSameKeyExists"
    assert http.post(f"{bc.company}/customers", json={"id": "nope", "displayName": "X"}).status_code == 400
    assert len(records(bc, "customers")) == 1


def test_key_lookups_honour_the_company_in_the_url(bc: Bc, http: httpx.Client):
    other = str(uuid.uuid4())
    seed(bc, {"companies": [{"id": other, "name": "Other", "displayName": "Other"}]})
    mine = http.post(f"{bc.company}/customers", json={"displayName": "Mine"}).json()
    elsewhere = f"{bc.api}/companies({other})/customers({mine['id']})"
    assert http.get(elsewhere).status_code == 404
    assert http.patch(elsewhere, json={"displayName": "Moved"}, headers={"If-Match": "*"}).status_code == 404
    assert http.delete(elsewhere, headers={"If-Match": "*"}).status_code == 404
    assert http.get(f"{bc.company}/customers({mine['id']})").json()["displayName"] == "Mine"
    assert http.get(f"{bc.api}/companies({other})/customers").json()["value"] == []


def test_top_with_next_links_returns_exactly_top_rows(bc: Bc, http: httpx.Client):
    seed(bc, {"customers": [{"number": f"T{i:02d}", "displayName": f"T{i}"} for i in range(25)]})
    for top in (10, 7, 25, 40):
        url, seen, pages = f"{bc.company}/customers?$top={top}", [], 0
        while url:
            answer = http.get(url, headers={"Prefer": "odata.maxpagesize=5"})
            assert answer.status_code == 200, answer.text
            seen += [r["id"] for r in answer.json()["value"]]
            url = answer.json().get("@odata.nextLink")
            pages += 1
        assert len(seen) == len(set(seen)) == min(top, 25)
        assert pages == -(-min(top, 25) // 5)


def test_more_requests_than_the_concurrency_limit_are_queued_not_refused(bc: Bc):
    httpx.post(f"{bc.admin}/faults", json={"latency_ms": 500, "max_concurrency": 2}).raise_for_status()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(
                lambda _: httpx.get(f"{bc.company}/customers", headers=bc.headers(), timeout=30).status_code,
                range(8),
            )
        )
    assert statuses == [200] * 8
    stats = httpx.get(f"{bc.admin}/stats").json()
    assert stats.get("queued", 0) >= 1 and stats.get("throttled", 0) == 0
    httpx.post(f"{bc.admin}/faults", json={}).raise_for_status()


def test_a_request_queued_too_long_gets_503(bc: Bc):
    faults = {"latency_ms": 1500, "max_concurrency": 1, "queue_timeout_s": 0.2}
    httpx.post(f"{bc.admin}/faults", json=faults).raise_for_status()
    try:
        with ThreadPoolExecutor(3) as pool:
            statuses = sorted(
                pool.map(
                    lambda _: (
                        httpx.get(f"{bc.company}/customers", headers=bc.headers(), timeout=30).status_code
                    ),
                    range(3),
                )
            )
    finally:
        httpx.post(f"{bc.admin}/faults", json={}).raise_for_status()
    assert statuses[0] == 200 and 503 in statuses


def test_service_document_and_metadata_for_both_roots(bc: Bc, http: httpx.Client):
    doc = http.get(f"{bc.api}/").json()
    names = {s["name"] for s in doc["value"]}
    assert {"customers", "salespeoplePurchasers", "contactsInformation"} <= names and "resources" not in names
    xml = http.get(f"{bc.api}/$metadata")
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
    ns = {"e": "http://docs.oasis-open.org/odata/ns/edm"}
    root = ElementTree.fromstring(xml.content)  # noqa: S314
    customer = root.find(".//e:EntityType[@Name='customer']", ns)
    city = customer.find("e:Property[@Name='city']", ns)
    assert city.get("MaxLength") == "30" and city.get("Type") == "Edm.String"
    assert root.find(".//e:EnumType[@Name='customerBlocked']/e:Member[@Name='_x0020_']", ns) is not None
    custom = ElementTree.fromstring(http.get(f"{bc.custom}/$metadata").content)  # noqa: S314
    assert {s.get("Name") for s in custom.iter("{http://docs.oasis-open.org/odata/ns/edm}EntitySet")} == {
        "companies",
        "resources",
        "salespeoplePurchasers",
    }


def test_unsupported_query_options_and_read_only_fields_are_refused(bc: Bc, http: httpx.Client):
    assert http.get(f"{bc.company}/customers", params={"$apply": "x"}).status_code == 400
    ro = http.post(f"{bc.company}/customers", json={"displayName": "A", "balanceDue": 5})
    assert ro.status_code == 400 and ro.json()["error"]["code"] == "BadRequest_InvalidOperation"
