"""The demo data set: deterministic, scaled, overlapping on purpose, referentially intact."""

from devstack.demo_data import OVERLAP_CUSTOMERS, build, summary
from shared.mappings.entities import BC_ENTITIES, CRM_ENTITIES


def test_deterministic_and_scaled():
    assert build(200, seed=3) == build(200, seed=3)
    assert build(200, seed=3) != build(200, seed=4)
    counts = summary(build(1000))
    assert counts["bc.customers"] == 1000 and counts["bc.contacts"] == 2000 and counts["bc.items"] == 500
    assert counts["overlap.customers"] == int(1000 * OVERLAP_CUSTOMERS)
    assert counts["overlap.contacts"] > 0 and counts["overlap.products"] > 0


def test_references_point_at_existing_records_and_fields_are_known():
    data = build(300)
    bc, dv = data["bc"], data["dataverse"]
    numbers = {c["number"] for c in bc["customers"]}
    assert all(c["companyNumber"] in numbers for c in bc["contacts"])
    units = {u["id"] for u in bc["unitsOfMeasure"]}
    assert all(i["baseUnitOfMeasureId"] in units for i in bc["items"] + bc["resources"])
    accounts = {a["accountid"] for a in dv["accounts"]}
    for contact in dv["contacts"]:
        assert contact["parentcustomerid_account@odata.bind"][len("/accounts(") : -1] in accounts
    for entity, rows in bc.items():
        allowed = set(BC_ENTITIES[entity]) | {"id"}
        assert all(set(r) <= allowed for r in rows), entity
    for entity_set, rows in dv.items():
        e = CRM_ENTITIES[entity_set]
        allowed = set(e.fields) | {e.key, "statecode", "statuscode"}
        allowed |= {f"{nav}@odata.bind" for nav, _ in e.lookups.values()}
        assert all(set(r) <= allowed for r in rows), entity_set


def test_some_records_violate_the_filters():
    data = build(1000)
    assert any(c["blocked"] == "All" for c in data["bc"]["customers"])
    assert any(a["statecode"] == 1 for a in data["dataverse"]["accounts"])
    assert any(a["customertypecode"] != 3 for a in data["dataverse"]["accounts"])
    assert any(i["blocked"] for i in data["bc"]["items"])
