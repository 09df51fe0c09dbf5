"""`devstack up --data demo` seeds both emulators through /_admin/seed: every row is accepted, and
the links BC would make (company contacts, business relations, contactsInformation) are there."""

from __future__ import annotations

import httpx

from devstack.demo_data import build
from tests.integration.bc_emulator.conftest import Bc
from tests.integration.conftest import Admin


def test_demo_data_seeds_both_emulators_with_consistent_links(bc: Bc, http: httpx.Client, services):
    data = build(120)
    bc_admin, dv_admin = Admin(bc.admin), Admin(services["dv_admin"])
    dv_admin.reset()
    assert bc_admin.seed(data["bc"])["seeded"]["customers"] == 120
    assert dv_admin.seed(data["dataverse"])["seeded"]["products"] == len(data["dataverse"]["products"])
    contacts = bc_admin.records("contacts")
    companies = [c for c in contacts if c["type"] == "Company"]
    assert len(companies) == 120 + len(data["bc"]["vendors"])
    relation = {c["number"]: c["contactBusinessRelation"] for c in companies}
    assert sum(1 for r in relation.values() if r == "Customer") == 120
    assert sum(1 for r in relation.values() if r == "Vendor") == len(data["bc"]["vendors"])
    persons = [c for c in contacts if c["type"] == "Person"]
    assert all(p["contactBusinessRelation"] == relation[p["companyNumber"]] for p in persons)
    assert all(p["companyName"] for p in persons)
    customer = data["bc"]["customers"][0]
    bound = http.get(f"{bc.company}/customers({customer['id']})/contactsInformation").json()["value"]
    assert sorted(r["contactType"] for r in bound) == ["Company", "Person", "Person"]
    rates = http.get(f"{bc.company}/currencyExchangeRates").json()["value"]
    assert len(rates) == len(data["bc"]["currencyExchangeRates"])
    resources = http.get(f"{bc.custom_company}/resources").json()["value"]
    assert len(resources) == len(data["bc"]["resources"])
    products = dv_admin.records("products")
    assert {p["statecode"] for p in products} == {0, 2}
    assert all(p["_defaultuomid_value"] for p in products)
