"""Rules that follow the real APIs' contracts (shared/contracts), against the contract-true emulators:
contacts by display name and company contact, exchange rates, products, values BC would refuse, API roots
that are not configured, expired delta links."""

from __future__ import annotations

import dataclasses

import pytest

from tests.integration.engine.test_engine_rules import account, customer, gid, rate, seed_currencies

LONG = (
    "Industrivägen 12, Building 7, Entrance C, attention of the accounts payable department, "
    + "floor 3, room 301"
)


def by(records: list[dict], **match) -> list[dict]:
    return [r for r in records if all(r.get(k) == v for k, v in match.items())]


def company_contact(h, name: str) -> dict:
    [found] = by(h.bc.records("contacts"), type="Company", displayName=name)
    return found


def test_contacts_sync_by_display_name_through_the_company_contact(harness):
    h = harness
    h.bc.seed({"customers": [customer("C100", "Acme")]})
    h.bc.seed({"vendors": [{"id": gid(), "number": "V100", "displayName": "Supplies Inc"}]})
    acme, supplies = company_contact(h, "Acme"), company_contact(h, "Supplies Inc")
    h.bc.seed(
        {
            "contacts": [
                {"id": gid(), "type": "Person", "displayName": "Anna Maria Svensson",
                 "companyNumber": acme["number"], "email": "anna@acme.test", "jobTitle": "Buyer"},
                {"id": gid(), "type": "Person", "displayName": "Vic Vendor",
                 "companyNumber": supplies["number"], "email": "vic@supplies.test"},
                {"id": gid(), "type": "Person", "displayName": "Lone Wolf", "email": "lone@example.test"},
            ]
        }
    )  # fmt: skip
    run = h.run("full", ["CUSTOMER", "CONTACT"])
    assert run["status"] == "Succeeded", run
    job = h.job(run, "CONTACT")
    # Persons of the vendor and without a company are outside the filter: neither synced nor failed.
    assert job["to_crm"]["inserted"] == 1 and job["to_crm"]["failed"] == 0, job
    [acme_account] = by(h.dv.records("accounts"), name="Acme")
    [anna] = by(h.dv.records("contacts"), emailaddress1="anna@acme.test")
    assert (anna["firstname"], anna["lastname"]) == ("Anna Maria", "Svensson")
    assert anna["_parentcustomerid_value"] == acme_account["accountid"]
    assert not by(h.dv.records("contacts"), emailaddress1="vic@supplies.test")

    # A contact made in CRM under the account becomes a BC person of the account's company contact.
    h.dv.seed(
        {
            "contacts": [
                {"contactid": gid(), "firstname": "Bo", "lastname": "Ek", "emailaddress1": "bo@acme.test",
                 "parentcustomerid_account@odata.bind": f"/accounts({acme_account['accountid']})"}
            ]
        }
    )  # fmt: skip
    run = h.run("modified", ["CUSTOMER", "CONTACT"])
    assert h.job(run, "CONTACT")["from_crm"]["inserted"] == 1, run
    [bo] = by(h.bc.records("contacts"), email="bo@acme.test")
    assert (bo["displayName"], bo["type"], bo["companyNumber"]) == ("Bo Ek", "Person", acme["number"])
    assert bo["contactBusinessRelation"] == "Customer"
    # A rename in CRM reaches BC's one name field; a BC rename reaches CRM's two.
    h.dv.seed({"contacts": [{"contactid": anna["contactid"], "firstname": "Annie"}]})
    h.bc.seed({"contacts": [{"id": bo["id"], "displayName": "Bo Gustaf Ek"}]})
    h.run("modified", ["CONTACT"])
    assert by(h.bc.records("contacts"), email="anna@acme.test")[0]["displayName"] == "Annie Svensson"
    [bo_crm] = by(h.dv.records("contacts"), emailaddress1="bo@acme.test")
    assert (bo_crm["firstname"], bo_crm["lastname"]) == ("Bo Gustaf", "Ek")
    again = h.run("modified", ["CONTACT"])
    for direction in ("to_crm", "from_crm"):
        counts = h.job(again, "CONTACT")[direction]
        assert counts["inserted"] == counts["modified"] == counts["failed"] == 0, again


def test_currencies_are_upserted_one_by_one_with_bc_exchange_rates(harness):
    h = harness
    seed_currencies(h)  # EUR 100 = USD 108, SEK 1000 = USD 95; LCY and the Dataverse base are USD
    h.bc.seed(
        {
            "currencies": [
                {"id": gid(), "code": "NOK", "displayName": "Norwegian krone", "symbol": ""},
                {"id": gid(), "code": "LONGCODE", "displayName": "Too long for Dataverse"},
                {"id": gid(), "code": "XAU", "displayName": "Gold (no rate)"},
            ],
            "currencyExchangeRates": [rate("NOK", 1000, 92), rate("NOK", 1000, 1, start="2999-01-01")],
        }
    )
    h.dv.reset_stats()
    run = h.run("full", ["CURRENCY"])
    job = h.job(run, "CURRENCY")
    assert job["to_crm"]["inserted"] == 3 and job["to_crm"]["failed"] == 2, job
    rows = {c["isocurrencycode"]: c for c in h.dv.records("transactioncurrencies")}
    assert rows["EUR"]["exchangerate"] == pytest.approx(1.08**-1 * 1)  # EUR per USD
    assert rows["SEK"]["exchangerate"] == pytest.approx(1000 / 95)
    assert rows["NOK"]["exchangerate"] == pytest.approx(1000 / 92)  # the rate that has started
    assert rows["NOK"]["currencysymbol"] == "NOK"  # BC's blank symbol: the code
    assert rows["EUR"]["currencyprecision"] == 2
    messages = " | ".join(e.message for e in h.ctx.errors.list(run_id=run["run_id"]))
    assert "isocurrencycode is 8 characters" in messages and "no exchange rate for XAU" in messages
    assert not any("Multiple" in k for k in h.dv.stats()), h.dv.stats()  # no bulk message on this table
    # Rates are refreshed on every sync, not only when the currency changes.
    h.bc.seed({"currencyExchangeRates": [rate("EUR", 100, 120, start="2025-01-01")]})
    run = h.run("modified", ["CURRENCY"])  # the currency itself did not change
    assert h.job(run, "CURRENCY")["to_crm"]["modified"] == 1, run
    rows = {c["isocurrencycode"]: c for c in h.dv.records("transactioncurrencies")}
    assert rows["EUR"]["exchangerate"] == pytest.approx(100 / 120)


def test_products_get_a_unit_are_published_clamped_and_retired_with_their_item(harness):
    h = harness
    box = gid()
    h.bc.seed({"unitsOfMeasure": [{"id": box, "code": "BOX", "displayName": "Box"}]})
    h.bc.seed(
        {
            "items": [
                {"id": gid(), "number": "1000", "displayName": "Widget", "type": "Inventory",
                 "unitPrice": 10, "unitCost": -2, "inventory": -5, "baseUnitOfMeasureId": box},
                {"id": gid(), "number": "1001", "displayName": "Retired gadget", "type": "Inventory",
                 "unitPrice": 3, "unitCost": 1, "inventory": 1, "blocked": True, "baseUnitOfMeasureId": box},
            ]
        }
    )  # fmt: skip
    run = h.run("full", ["UNIT OF MEASURE", "ITEM-PRODUCT"])
    job = h.job(run, "ITEM-PRODUCT")
    assert job["to_crm"]["inserted"] == 2 and job["to_crm"]["failed"] == 0, job
    assert "sent as the Dataverse minimum" in (job["message"] or ""), job
    products = {p["productnumber"]: p for p in h.dv.records("products")}
    [group] = h.dv.records("uomschedules")
    [unit] = by(h.dv.records("uoms"), _uomscheduleid_value=group["uomscheduleid"])
    widget, gadget = products["1000"], products["1001"]
    assert (widget["statecode"], widget["statuscode"]) == (0, 1)  # published
    assert (gadget["statecode"], gadget["statuscode"]) == (1, 2)  # retired: its item is blocked
    assert widget["_defaultuomscheduleid_value"] == group["uomscheduleid"]
    assert widget["_defaultuomid_value"] == unit["uomid"] and widget["quantitydecimal"] == 2
    assert (widget["quantityonhand"], widget["standardcost"], widget["price"]) == (0, 0, 10)
    # Blocking and unblocking the item retires and activates the product.
    items = {i["number"]: i for i in h.bc.records("items")}
    h.bc.seed(
        {
            "items": [
                {"id": items["1000"]["id"], "blocked": True},
                {"id": items["1001"]["id"], "blocked": False},
            ]
        }
    )
    h.run("modified", ["ITEM-PRODUCT"])
    products = {p["productnumber"]: p for p in h.dv.records("products")}
    assert products["1000"]["statecode"] == 1 and products["1001"]["statecode"] == 0


def test_crm_values_bc_would_refuse_fail_their_record_alone(harness):
    h = harness
    h.dv.seed(
        {
            "accounts": [
                account("Long street", address1_line1=LONG),
                account("Free-text country", address1_country="sweden"),
                account("Unknown country", address1_country="Atlantis"),
                account("Fine", address1_city="Oslo"),
            ]
        }
    )
    h.bc.reset_stats()
    run = h.run("full", ["CUSTOMER"])
    job = h.job(run, "CUSTOMER")
    assert job["from_crm"]["inserted"] == 2 and job["from_crm"]["failed"] == 2, job
    names = {c["displayName"]: c for c in h.bc.records("customers")}
    assert set(names) == {"Free-text country", "Fine"}
    assert names["Free-text country"]["country"] == "SE"  # a country's name, as BC spells it, is its code
    messages = {e.message for e in h.ctx.errors.list(run_id=run["run_id"])}
    assert (
        f"addressLine1 is {len(LONG)} characters; Business Central customers.addressLine1 holds at most 100"
        in messages
    )
    assert any("'Atlantis' is not a country/region code" in m for m in messages), messages
    # The good records went in one $batch: the refused ones never reached BC.
    assert h.bc.stats().get("POST batch", 0) <= 2, h.bc.stats()


def test_a_mapping_without_an_api_root_is_not_configured_and_the_run_succeeds(harness, monkeypatch):
    h = harness
    monkeypatch.setattr(h.ctx, "settings", dataclasses.replace(h.ctx.settings, bc_api_roots={}))
    h.ctx.__dict__.pop("bc", None)  # a BC client with the changed settings
    run = h.run("full", ["UNIT OF MEASURE", "RESOURCE-PRODUCT"])
    assert run["status"] == "Succeeded", run
    job = h.job(run, "RESOURCE-PRODUCT")
    assert job["status"] == "NotConfigured" and "BC_API_ROOTS=resources=" in job["message"], job


def test_resources_come_from_the_custom_api_page(harness):
    h = harness
    hour = gid()
    h.bc.seed({"unitsOfMeasure": [{"id": hour, "code": "HOUR", "displayName": "Hour"}]})
    h.bc.seed(
        {"resources": [{"id": gid(), "number": "R0010", "displayName": "Consulting", "type": "Person",
                        "unitPrice": 120, "unitCost": 80, "baseUnitOfMeasureCode": "HOUR"}]}
    )  # fmt: skip
    run = h.run("full", ["UNIT OF MEASURE", "RESOURCE-PRODUCT"])
    assert h.job(run, "RESOURCE-PRODUCT")["to_crm"]["inserted"] == 1, run
    [product] = by(h.dv.records("products"), productnumber="R0010")
    assert (product["name"], product["producttypecode"], product["statecode"]) == ("Consulting", 3, 0)


def test_an_expired_delta_link_restarts_tracking_and_the_gap_is_synced(harness):
    h = harness
    h.dv.seed({"accounts": [account("Tracked", emailaddress1="tracked@example.test")]})
    h.run("full", ["CUSTOMER"])
    assert h.ctx.states.get("CUSTOMER").crm_delta_link
    [tracked] = by(h.dv.records("accounts"), name="Tracked")
    h.dv.http.post(f"{h.dv.url}/clock", json={"advance_days": 8}).raise_for_status()  # default expiry: 7
    h.dv.seed({"accounts": [{"accountid": tracked["accountid"], "telephone1": "+47 555 0001"}]})
    run = h.run("modified", ["CUSTOMER"])
    job = h.job(run, "CUSTOMER")
    assert run["status"] == "Succeeded" and job["from_crm"]["modified"] == 1, job
    assert "tracking restarted" in (job["message"] or ""), job
    [bc] = by(h.bc.records("customers"), displayName="Tracked")
    assert bc["phoneNumber"] == "+47 555 0001"
    state = h.ctx.states.get("CUSTOMER")
    assert state.crm_delta_link  # a fresh link: the next run uses tracking again
    again = h.run("modified", ["CUSTOMER"])
    assert "tracking restarted" not in (h.job(again, "CUSTOMER")["message"] or "")
