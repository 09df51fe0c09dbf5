"""The demo data set: deterministic, scaled, overlapping on purpose, referentially intact, and shaped
like the real services' contracts (shared/contracts)."""

from devstack.demo_data import LCY, OVERLAP_CUSTOMERS, build, summary
from shared.contracts import bc_entities, dataverse_tables


def test_deterministic_and_scaled():
    assert build(200, seed=3) == build(200, seed=3)
    assert build(200, seed=3) != build(200, seed=4)
    counts = summary(build(1000))
    assert counts["bc.customers"] == 1000 and counts["bc.items"] == 500 and counts["bc.vendors"] == 50
    assert counts["bc.contacts"] == 2000 + 50  # persons of customers and of vendors
    assert counts["bc.company_contacts"] == 1050  # created by the emulator from customers and vendors
    assert counts["overlap.customers"] == int(1000 * OVERLAP_CUSTOMERS)
    assert counts["overlap.contacts"] > 0 and counts["overlap.products"] > 0


def test_rows_use_only_contract_fields():
    data = build(300)
    entities, tables = bc_entities(), dataverse_tables()
    for entity, rows in data["bc"].items():
        allowed = set(entities[entity].properties) | {"id"}
        if entity in ("customers", "vendors"):
            allowed.add("companyContact")  # seed-only: the company contact's keys
        assert all(set(r) <= allowed for r in rows), entity
    for entity_set, rows in data["dataverse"].items():
        t = tables[entity_set]
        allowed = {t.key} | {
            p for p, prop in t.properties.items() if prop.type not in ("Lookup", "Owner", "Customer")
        }
        allowed |= {f"{t.bind.get(p, p)}@odata.bind" for p, prop in t.properties.items() if prop.targets}
        assert all(set(r) <= allowed for r in rows), (entity_set, [set(r) - allowed for r in rows][:1])


def test_references_point_at_existing_records():
    data = build(300)
    bc, dv = data["bc"], data["dataverse"]
    company_contacts = {c["companyContact"]["number"] for c in bc["customers"] + bc["vendors"]}
    assert all(c["companyNumber"] in company_contacts for c in bc["contacts"])
    assert all(c["type"] == "Person" and "firstName" not in c for c in bc["contacts"])
    vendor_contacts = {v["companyContact"]["number"] for v in bc["vendors"]}
    assert any(c["companyNumber"] in vendor_contacts for c in bc["contacts"])
    codes = {s["code"] for s in bc["salespeoplePurchasers"]}
    assert all(len(c) <= 20 for c in codes)
    assert {c["salespersonCode"] for c in bc["customers"]} <= codes | {""}
    emails = {s["email"] for s in bc["salespeoplePurchasers"]}
    assert len(emails & {u["internalemailaddress"] for u in dv["systemusers"]}) >= 5
    units = {u["id"] for u in bc["unitsOfMeasure"]}
    assert all(i["baseUnitOfMeasureId"] in units for i in bc["items"])
    assert {r["baseUnitOfMeasureCode"] for r in bc["resources"]} <= {u["code"] for u in bc["unitsOfMeasure"]}
    accounts = {a["accountid"] for a in dv["accounts"]}
    for contact in dv["contacts"]:
        assert contact["parentcustomerid_account@odata.bind"][len("/accounts(") : -1] in accounts


def test_currencies_rates_and_lcy():
    data = build(100)
    bc = data["bc"]
    assert bc["companyInformation"][0]["currencyCode"] == LCY
    codes = {c["code"] for c in bc["currencies"]}
    assert LCY not in codes  # the LCY is not a currencies row
    assert {r["currencyCode"] for r in bc["currencyExchangeRates"]} == codes
    dates = {}
    for r in bc["currencyExchangeRates"]:
        dates.setdefault(r["currencyCode"], set()).add(r["startingDate"])
        assert r["relationalCurrencyCode"] == "" and r["relationalExchangeRateAmount"] > 0
    assert any(len(d) > 1 for d in dates.values())
    assert any(c["symbol"] == "" for c in bc["currencies"])
    assert LCY not in {c["isocurrencycode"] for c in data["dataverse"]["transactioncurrencies"]}


def test_some_records_violate_the_filters_or_bcs_limits():
    data = build(1000)
    bc, dv = data["bc"], data["dataverse"]
    assert any(c["blocked"] == "All" for c in bc["customers"])
    assert any(a["statecode"] == 1 for a in dv["accounts"])
    assert any(a["customertypecode"] != 3 for a in dv["accounts"])
    assert any(i["blocked"] for i in bc["items"])
    assert any(i["inventory"] < 0 for i in bc["items"]) and any(i["unitCost"] < 0 for i in bc["items"])
    assert any(len(a.get("address1_line1", "")) > 100 for a in dv["accounts"])
    assert any(len(a.get("address1_city", "")) > 30 for a in dv["accounts"])
    assert any(a.get("address1_country") == "United States" for a in dv["accounts"])
    assert any(len(c.get("jobtitle", "")) > 30 for c in dv["contacts"])
    assert any(p.get("statecode") == 0 for p in dv["products"]) and any(
        "statecode" not in p for p in dv["products"]
    )
