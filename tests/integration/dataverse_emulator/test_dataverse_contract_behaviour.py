"""The Dataverse emulator's contract behaviour over HTTP: messages per table, products in Draft and
their lifecycle, base units, the organization and its base currency, expiring delta links, $top,
standard documents (service document, $metadata, EntityDefinitions) and the HTTPS listener."""

from __future__ import annotations

import ssl
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree  # noqa: S405 - the emulator under test wrote it

import httpx
import pytest

from devstack import procs
from shared.connectors.auth import TokenProvider
from shared.settings import Settings
from tests.integration.dataverse_emulator.test_dataverse_api import dv  # noqa: F401 - shared fixture

BASE_CURRENCY = "44444444-4444-4444-4444-444444444444"


def unit_group(client: httpx.Client, name: str = "PCS") -> tuple[str, str]:
    """A uomschedule with its base uom (created by Dataverse from baseuomname)."""
    schedule = client.post(
        "/uomschedules", json={"name": name, "baseuomname": name}, headers={"Prefer": "return=representation"}
    ).json()["uomscheduleid"]
    [unit] = client.get(f"/uoms?$filter=_uomscheduleid_value eq {schedule}").json()["value"]
    return schedule, unit["uomid"]


def product_body(schedule: str, unit: str, **extra) -> dict:
    return {
        "name": "Desk",
        "productnumber": f"P-{uuid.uuid4().hex[:8]}",
        "defaultuomscheduleid@odata.bind": f"/uomschedules({schedule})",
        "defaultuomid@odata.bind": f"/uoms({unit})",
        "quantitydecimal": 2,
        **extra,
    }


def test_organization_and_base_currency(dv):  # noqa: F811
    client, _, _ = dv
    [org] = client.get("/organizations").json()["value"]
    assert org["_basecurrencyid_value"] == BASE_CURRENCY
    assert org["expirechangetrackingindays"] == 7 and org["createproductswithoutparentinactivestate"] is False
    base = client.get(f"/transactioncurrencies({BASE_CURRENCY})").json()
    assert (base["isocurrencycode"], base["exchangerate"], base["currencytype"]) == ("USD", 1.0, 0)


def test_transactioncurrency_has_no_bulk_messages(dv):  # noqa: F811
    client, admin, _ = dv
    eur = {"isocurrencycode": "EUR", "currencyname": "Euro", "currencysymbol": "€", "exchangerate": 0.9,
           "currencyprecision": 2}  # fmt: skip
    for action in ("CreateMultiple", "UpdateMultiple", "UpsertMultiple"):
        answer = client.post(
            f"/transactioncurrencies/Microsoft.Dynamics.CRM.{action}", json={"Targets": [eur]}
        )
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["code"] == "0x80040800"
        assert (
            f"The '{action}' method does not support entities of type 'transactioncurrency'"
            in error["message"]
        )
    assert (
        client.post("/uoms/Microsoft.Dynamics.CRM.UpsertMultiple", json={"Targets": [{}]}).status_code == 400
    )
    assert client.post("/transactioncurrencies", json=eur).status_code == 204
    missing_symbol = {k: v for k, v in eur.items() if k != "currencysymbol"} | {"isocurrencycode": "SEK"}
    assert client.post("/transactioncurrencies", json=missing_symbol).status_code == 400
    too_long = eur | {"isocurrencycode": "EURO12"}
    assert client.post("/transactioncurrencies", json=too_long).json()["error"]["code"] == "0x80044331"
    assert sorted(c["isocurrencycode"] for c in admin.records("transactioncurrencies")) == ["EUR", "USD"]


def test_products_need_units_start_in_draft_and_can_be_published_retired_and_activated(dv):  # noqa: F811
    client, admin, _ = dv
    schedule, unit = unit_group(client)
    base = product_body(schedule, unit)
    for field in ("defaultuomid@odata.bind", "quantitydecimal", "productnumber", "name"):
        answer = client.post("/products", json={k: v for k, v in base.items() if k != field})
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "0x80044331", field
    for field in ("price", "standardcost", "currentcost", "quantityonhand"):
        answer = client.post("/products", json=base | {field: -1})
        assert answer.status_code == 400 and "outside the valid range" in answer.json()["error"]["message"]
    created = client.post("/products", json=base | {"price": 0}, headers={"Prefer": "return=representation"})
    product = created.json()
    assert (product["statecode"], product["statuscode"]) == (2, 0)  # Draft
    url = f"/products({product['productid']})"
    for state, status in ((0, 1), (1, 2), (0, 1)):  # publish, retire, activate again
        assert client.patch(url, json={"statecode": state, "statuscode": status}).status_code == 204
        again = client.get(url).json()
        assert (again["statecode"], again["statuscode"]) == (state, status)
    assert client.patch(url, json={"statecode": 0, "statuscode": 2}).status_code == 400
    admin.seed({"organizations": [{"organizationid": "33333333-3333-3333-3333-333333333333",
                                   "createproductswithoutparentinactivestate": True}]})  # fmt: skip
    active = client.post(
        "/products", json=product_body(schedule, unit), headers={"Prefer": "return=representation"}
    )
    assert active.json()["statecode"] == 0


def test_a_unit_group_gets_its_base_unit(dv):  # noqa: F811
    client, _, _ = dv
    schedule, unit = unit_group(client, "BOX")
    got = client.get(f"/uoms({unit})").json()
    assert (got["name"], got["quantity"], got["isschedulebaseuom"]) == ("BOX", 1.0, True)
    assert got["_uomscheduleid_value"] == schedule


def test_contract_checks_on_writes(dv):  # noqa: F811
    client, admin, _ = dv
    unknown = client.post("/accounts", json={"name": "A", "nosuch": 1}).json()["error"]
    assert unknown == {
        "code": "0x80060888",
        "message": "Could not find a property named 'nosuch' on type 'Microsoft.Dynamics.CRM.account'.",
    }
    assert client.post("/accounts", json={"name": "A" * 161}).json()["error"]["code"] == "0x80044331"
    assert client.post("/accounts", json={"name": "A", "customertypecode": 99}).status_code == 400
    assert client.post("/contacts", json={"firstname": "No last name"}).status_code == 400
    assert client.post("/contacts", json={"lastname": "L", "fullname": "read only"}).status_code == 400
    assert client.post("/accounts", json={"name": "A", "address1_line1": "x" * 250}).status_code == 204
    assert len(admin.records("accounts")) == 1


def test_delta_links_expire_after_the_organizations_days(dv):  # noqa: F811
    client, admin, _ = dv
    first = client.get("/accounts?$select=name", headers={"Prefer": "odata.track-changes"}).json()
    delta = first["@odata.deltaLink"]
    admin.http.post(f"{admin.url}/clock", json={"advance_days": 6}).raise_for_status()
    fresh = client.get(delta, headers={"Prefer": "odata.track-changes"})
    assert fresh.status_code == 200
    admin.http.post(f"{admin.url}/clock", json={"advance_days": 1.5}).raise_for_status()
    expired = client.get(delta, headers={"Prefer": "odata.track-changes"})
    assert expired.status_code == 400
    assert expired.json()["error"] == {
        "code": "0x80044352",
        "message": "Version stamp associated with the client has expired. Please perform a full sync.",
    }
    # The newer link (issued on day 6) is still inside its seven days.
    newer = client.get(fresh.json()["@odata.deltaLink"], headers={"Prefer": "odata.track-changes"})
    assert newer.status_code == 200


def test_top_caps_the_result_and_unsupported_options_are_refused(dv):  # noqa: F811
    client, admin, _ = dv
    admin.seed({"accounts": [{"name": f"T{i}"} for i in range(9)]})
    answer = client.get("/accounts?$top=5", headers={"Prefer": "odata.maxpagesize=2"})
    assert answer.status_code == 200
    assert len(answer.json()["value"]) == 5 and "@odata.nextLink" not in answer.json()
    assert client.get("/accounts?$skip=2").status_code == 400
    assert client.get("/accounts?$apply=groupby((name))").status_code == 400


def test_service_document_metadata_and_entity_definitions(dv):  # noqa: F811
    client, _, _ = dv
    names = {s["name"] for s in client.get("/").json()["value"]}
    assert {"accounts", "contacts", "products", "transactioncurrencies", "uoms", "organizations"} <= names
    xml = client.get("/$metadata")
    ns = {"e": "http://docs.oasis-open.org/odata/ns/edm"}
    account = ElementTree.fromstring(xml.content).find(".//e:EntityType[@Name='account']", ns)  # noqa: S314
    assert account.find("e:Property[@Name='name']", ns).get("MaxLength") == "160"
    definition = client.get(
        "/EntityDefinitions(LogicalName='product')", params={"$expand": "Attributes"}
    ).json()
    assert definition["EntitySetName"] == "products" and definition["PrimaryIdAttribute"] == "productid"
    attrs = {a["LogicalName"]: a for a in definition["Attributes"]}
    assert (
        attrs["price"]["MinValue"] == 0
        and attrs["productnumber"]["RequiredLevel"]["Value"] == "SystemRequired"
    )
    selected = client.get(
        "/EntityDefinitions(LogicalName='account')", params={"$select": "LogicalName,EntitySetName"}
    ).json()
    assert selected["LogicalName"] == "account" and "Attributes" not in selected
    assert client.get("/EntityDefinitions(LogicalName='nosuch')").status_code == 404


def test_past_the_concurrency_limit_requests_are_refused_with_429(dv):  # noqa: F811
    client, admin, _ = dv
    admin.faults(latency_ms=1000, max_concurrency=1)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: client.get("/accounts"), range(4)))
    refused = [a for a in answers if a.status_code == 429]
    assert refused and any(a.status_code == 200 for a in answers)
    assert {a.json()["error"]["code"] for a in refused} == {"0x80072326"}
    assert all(int(a.headers["Retry-After"]) >= 1 for a in refused)


@pytest.fixture(scope="module")
def https_dataverse(services):
    """A second Dataverse emulator with its HTTPS listener (the devstack CA's server certificate)."""
    env = services["env"]
    port, tls = procs.free_port(), procs.free_port()
    authority = f"{env['ENTRA_AUTHORITY_HOST']}/{env['ENTRA_TENANT_ID']}"
    proc = procs.start(
        [sys.executable, "-m", "devstack.dataverse_emulator", "--port", str(port), "--https-port", str(tls),
         "--authority", authority, "--ca", env["ENTRA_CA_BUNDLE"]],
        services["logs"] / "dataverse-https.log",
    )  # fmt: skip
    try:
        procs.wait_for_port(tls, proc=proc)
        yield f"https://127.0.0.1:{tls}", env
    finally:
        procs.stop(proc)


def test_dataverse_over_https_with_the_devstack_ca(https_dataverse):
    url, env = https_dataverse
    settings = Settings.from_env(
        {"AzureWebJobsStorage": "UseDevelopmentStorage=true", **env, "DATAVERSE_URL": url}
    )
    token = TokenProvider(settings).token(settings.dataverse_scope)
    context = ssl.create_default_context(cafile=env["ENTRA_CA_BUNDLE"])
    with httpx.Client(verify=context, headers={"Authorization": f"Bearer {token}"}, trust_env=False) as http:
        created = http.post(f"{url}/api/data/v9.2/accounts", json={"name": "Secure"})
        assert created.status_code == 204
        assert created.headers["OData-EntityId"].startswith(f"{url}/api/data/v9.2/accounts(")
        assert [a["name"] for a in http.get(f"{url}/api/data/v9.2/accounts").json()["value"]] == ["Secure"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/api/data/v9.2/accounts", verify=True, trust_env=False)  # not a public CA
