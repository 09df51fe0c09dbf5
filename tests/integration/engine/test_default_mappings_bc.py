"""BC's default mappings (CDS Setup Defaults) end to end through the engine, against the emulators over HTTP
and Azurite: option mappings PAYMENT TERMS / SHIPMENT METHOD before CUSTOMER, the customer's options,
an unknown option value, owner toward Dataverse only, BC's customer table filter, contact addresses."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from shared.connectors.option_sets import FIRST_VALUE


def gid() -> str:
    return str(uuid.uuid4())


def customer(number: str, name: str, **extra) -> dict:
    return {"id": gid(), "number": number, "displayName": name, "type": "Company", "blocked": " ", **extra}


def account(name: str, **extra) -> dict:
    return {"accountid": gid(), "name": name, "customertypecode": 3, "statecode": 0, **extra}


def accounts_by_name(h) -> dict:
    return {a["name"]: a for a in h.dv.records("accounts")}


def customers_by_number(h) -> dict:
    return {c["number"]: c for c in h.bc.records("customers")}


TERMS_NET30, TERMS_14 = gid(), gid()
SHIP_FOB, SHIP_PICKUP = gid(), gid()


def seed_codes(h) -> None:
    h.bc.seed(
        {
            # "NET 30" matches Dataverse's own "Net 30" (case-insensitive) and renames it; "14 DAYS" is new.
            "paymentTerms": [
                {
                    "id": TERMS_NET30,
                    "code": "NET 30",
                    "displayName": "Net 30 days",
                    "dueDateCalculation": "30D",
                },
                {"id": TERMS_14, "code": "14 DAYS", "displayName": "14 days", "dueDateCalculation": "14D"},
            ],
            "shipmentMethods": [
                {"id": SHIP_FOB, "code": "FOB", "displayName": "Free on board"},
                {"id": SHIP_PICKUP, "code": "PICKUP", "displayName": "Pick-up at location"},
            ],
        }
    )


def options(h, attribute: str) -> dict[str, int]:
    return {r["label"]: r["value"] for r in h.ctx.dataverse.option_sets.options(f"accounts.{attribute}")}


def test_option_mappings_run_before_customer_and_the_options_land_on_accounts(harness):
    h = harness
    seed_codes(h)
    h.bc.seed(
        {
            "customers": [
                customer("C1", "Uses new codes", paymentTermsId=TERMS_14, shipmentMethodId=SHIP_PICKUP),
                customer("C2", "Uses matched codes", paymentTermsId=TERMS_NET30, shipmentMethodId=SHIP_FOB),
            ]
        }
    )
    run = h.run("full", ["PAYMENT TERMS", "SHIPMENT METHOD", "CUSTOMER"])
    assert run["status"] == "Succeeded", run
    assert [j["mapping"] for j in run["jobs"]] == ["PAYMENT TERMS", "SHIPMENT METHOD", "CUSTOMER"]
    terms = h.job(run, "PAYMENT TERMS")["to_crm"]
    assert terms["inserted"] == 1 and terms["coupled"] == 1, terms
    # The options CUSTOMER needs exist before its first record is written: it failed none.
    assert h.job(run, "CUSTOMER")["to_crm"]["failed"] == 0
    pay, ship = options(h, "paymenttermscode"), options(h, "address1_freighttermscode")
    assert pay["NET 30"] == 1 and pay["14 DAYS"] >= FIRST_VALUE
    assert ship["FOB"] == 1 and ship["PICKUP"] >= FIRST_VALUE
    accounts = accounts_by_name(h)
    assert accounts["Uses new codes"]["paymenttermscode"] == pay["14 DAYS"]
    assert accounts["Uses new codes"]["address1_freighttermscode"] == ship["PICKUP"]
    assert accounts["Uses matched codes"]["paymenttermscode"] == 1
    assert accounts["Uses matched codes"]["address1_freighttermscode"] == 1
    # A second full sync creates no option twice.
    again = h.run("full", ["PAYMENT TERMS", "SHIPMENT METHOD"])
    assert h.job(again, "PAYMENT TERMS")["to_crm"]["inserted"] == 0
    assert options(h, "paymenttermscode") == pay
    # A renamed BC code renames its option; the account keeps the option.
    h.bc.seed({"paymentTerms": [{"id": TERMS_14, "code": "14D"}]})
    h.run("modified", ["PAYMENT TERMS"])
    renamed = options(h, "paymenttermscode")
    assert renamed.get("14D") == pay["14 DAYS"] and "14 DAYS" not in renamed


def test_unknown_option_value_fails_that_account_only(harness):
    h = harness
    seed_codes(h)
    h.run("full", ["PAYMENT TERMS", "SHIPMENT METHOD"])
    # "Net 45" (3) is one of Dataverse's own options that no BC code is coupled with.
    h.dv.seed(
        {
            "accounts": [
                account("Unknown terms", paymenttermscode=3),
                account("Known terms", paymenttermscode=1, address1_freighttermscode=1),
            ]
        }
    )
    run = h.run("full", ["CUSTOMER"])
    job = h.job(run, "CUSTOMER")
    assert run["status"] == "FinishedWithErrors", run
    assert job["from_crm"]["failed"] == 1 and job["from_crm"]["inserted"] == 1, job
    errors = [e.message for e in h.ctx.errors.list(run_id=run["run_id"])]
    assert any(
        "paymenttermscode option 3 ('Net 45') is not coupled in mapping PAYMENT TERMS" in m for m in errors
    )
    by_name = {c["displayName"]: c for c in h.bc.records("customers")}
    assert "Unknown terms" not in by_name
    assert by_name["Known terms"]["paymentTermsId"] == TERMS_NET30
    assert by_name["Known terms"]["shipmentMethodId"] == SHIP_FOB
    # Nothing else changed: no option was added, no account rewritten.
    assert set(options(h, "paymenttermscode")) == {"NET 30", "2% 10, Net 30", "Net 45", "Net 60", "14 DAYS"}
    assert accounts_by_name(h)["Unknown terms"]["paymenttermscode"] == 3


def test_concurrent_creates_of_one_option_make_one_option(harness):
    h = harness
    option_id = str(uuid.uuid4())
    record = {"optionid": option_id, "label": "TWICE"}

    def create(_):
        return h.ctx.dataverse.upsert_multiple("accounts.paymenttermscode", "option", [dict(record)])

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [r for batch in pool.map(create, range(2)) for r in batch]
    assert all(r.ok for r in results), results
    rows = [
        r for r in h.ctx.dataverse.option_sets.options("accounts.paymenttermscode") if r["label"] == "TWICE"
    ]
    assert len(rows) == 1 and rows[0]["optionid"] == option_id


def test_owner_flows_toward_dataverse_only(harness):
    h = harness
    sam, ann = gid(), gid()
    user = {"isdisabled": False, "islicensed": True, "accessmode": 0}
    h.dv.seed(
        {
            "systemusers": [
                {"systemuserid": sam, "firstname": "Sam", "lastname": "Seller", **user,
                 "internalemailaddress": "sam@example.com"},
                {"systemuserid": ann, "firstname": "Ann", "lastname": "Other", **user,
                 "internalemailaddress": "ann@example.com"},
            ]
        }
    )  # fmt: skip
    h.run("full", ["SALESPEOPLE"])
    codes = {s["email"]: s["code"] for s in h.bc.records("salespeoplePurchasers")}
    h.bc.seed({"customers": [customer("C10", "Owned", salespersonCode=codes["sam@example.com"])]})
    h.run("full", ["CUSTOMER"])
    owned = accounts_by_name(h)["Owned"]
    assert owned["_ownerid_value"] == sam
    # A new owner in Dataverse does not change the BC salesperson.
    h.dv.seed({"accounts": [{"accountid": owned["accountid"], "ownerid@odata.bind": f"/systemusers({ann})"}]})
    h.run("modified", ["CUSTOMER"])
    assert customers_by_number(h)["C10"]["salespersonCode"] == codes["sam@example.com"]


def test_customer_table_filter_is_blocked_blank_as_in_bc(harness):
    h = harness
    h.bc.seed(
        {
            "customers": [
                customer("C20", "Open"),
                customer("C21", "Blocked for shipping", blocked="Ship"),
                customer("C22", "Blocked for all", blocked="All"),
            ]
        }
    )
    h.run("full", ["CUSTOMER"])
    assert set(accounts_by_name(h)) == {"Open"}


def test_contact_address_flows_both_ways(harness):
    h = harness
    h.bc.seed({"customers": [customer("C30", "Address Co")]})
    h.run("full", ["CUSTOMER"])
    company = next(c for c in h.bc.records("contacts") if c["type"] == "Company")
    h.bc.seed(
        {
            "contacts": [
                {"id": gid(), "type": "Person", "displayName": "Ada Street", "email": "ada@example.com",
                 "companyNumber": company["number"], "addressLine1": "1 Main St", "city": "Seattle",
                 "postalCode": "98101"},
            ]
        }
    )  # fmt: skip
    h.run("full", ["CONTACT"])
    ada = next(c for c in h.dv.records("contacts") if c.get("emailaddress1") == "ada@example.com")
    assert (ada["address1_line1"], ada["address1_city"], ada["address1_postalcode"]) == (
        "1 Main St",
        "Seattle",
        "98101",
    )
