"""The two services as a page's source and destination (shared/sync/endpoint.py): pure logic, with stand-ins
for the clients that record what they are asked."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from shared.connectors.bc import BatchResult
from shared.connectors.errors import ConnectorError
from shared.connectors.results import Page, RecordResult
from shared.mappings.defaults import default_mappings
from shared.model.status import Pass
from shared.store.couplings import Coupling
from shared.sync.endpoint import (
    ID_CHUNK,
    BcEndpoint,
    DataverseEndpoint,
    NewRecord,
    bc_create_id,
    crm_create_id,
    endpoints,
)

MAPPINGS = {m.name: m for m in default_mappings()}
CUSTOMER = MAPPINGS["CUSTOMER"]
SALESPEOPLE = MAPPINGS["SALESPEOPLE"]
BC_ID = "0A1B2C3D-0000-4000-8000-000000000001"
CRM_ID = "9F8E7D6C-0000-4000-8000-000000000002"


def field(m, bc: str | None, crm: str | None):
    return next(f for f in m.fields if f.bc == bc and f.crm == crm)


class Calls:
    """A client stand-in: records each call and answers from ``answers`` (a function of the call)."""

    def __init__(self, answer):
        self.calls: list[tuple[str, tuple, dict]] = []
        self.answer = answer

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return self.answer(name, *args, **kwargs)

        return call


def ctx(bc=None, dataverse=None, **couplings) -> Any:
    derived = SimpleNamespace(
        country_code=lambda value: {"Sweden": "SE"}.get(value, value),
        new_code=lambda entity, value, size: str(value).upper()[:size],
    )
    return SimpleNamespace(
        bc=bc, dataverse=dataverse, derived=derived, couplings=SimpleNamespace(**couplings)
    )


def test_endpoints_of_a_pass():
    source, destination = endpoints(ctx(), CUSTOMER, Pass.TO_CRM)
    assert (source.side, destination.side) == ("bc", "crm")
    source, destination = endpoints(ctx(), CUSTOMER, Pass.FROM_CRM)
    assert (source.side, destination.side) == ("crm", "bc")
    # Each endpoint names the pass that writes it: a restore from it runs in that pass.
    assert (source.toward, destination.toward) == (Pass.TO_CRM, Pass.FROM_CRM)


def test_ids_and_hashes_of_a_coupling_by_side():
    bc, crm = BcEndpoint(ctx(), CUSTOMER), DataverseEndpoint(ctx(), CUSTOMER)
    c = Coupling("CUSTOMER", BC_ID, CRM_ID, bc_hashes={"a": "1"}, crm_hashes={"a": "2"})
    assert bc.record_id({"id": BC_ID}) == BC_ID.lower() == bc.coupling_id(c)
    assert crm.record_id({"accountid": CRM_ID}) == CRM_ID.lower() == crm.coupling_id(c)
    assert (bc.hashes(c), crm.hashes(c)) == ({"a": "1"}, {"a": "2"})
    bc.hashes(c)["b"] = "3"  # the coupling's own dict
    crm.set_hashes(c, {"z": "9"})
    assert (c.bc_hashes, c.crm_hashes) == ({"a": "1", "b": "3"}, {"z": "9"})
    assert bc.pair("own", "other") == ("own", "other")
    assert crm.pair("own", "other") == ("other", "own")


def test_values_as_each_side_holds_them():
    bc, crm = BcEndpoint(ctx(), CUSTOMER), DataverseEndpoint(ctx(), CUSTOMER)
    currency = field(CUSTOMER, "currencyId", "transactioncurrencyid")
    assert bc.value(currency, {"currencyId": "x"}) == "x"
    assert crm.value(currency, {"_transactioncurrencyid_value": "y"}) == "y"  # a lookup's _x_value
    assert crm.payload(currency, CRM_ID) == {
        "transactioncurrencyid@odata.bind": f"/transactioncurrencies({CRM_ID})"
    }
    assert bc.payload(currency, BC_ID) == {"currencyId": BC_ID}


def test_stamp_keeps_each_sides_modified_time_and_the_bc_reference():
    bc, crm = BcEndpoint(ctx(), CUSTOMER), DataverseEndpoint(ctx(), CUSTOMER)
    c = Coupling("CUSTOMER", BC_ID, CRM_ID)
    bc.stamp(c, {"lastModifiedDateTime": "t1", "number": "C100"})
    crm.stamp(c, {"modifiedon": "t2"})
    assert (c.bc_modified, c.bc_ref, c.crm_modified) == ("t1", "C100", "t2")
    bc.stamp(c, None)  # no record (a create that answered with none): nothing changes
    crm.stamp(c, None)
    assert (c.bc_modified, c.bc_ref, c.crm_modified) == ("t1", "C100", "t2")


def test_create_ids_are_deterministic_per_side():
    bc, crm = BcEndpoint(ctx(), CUSTOMER), DataverseEndpoint(ctx(), CUSTOMER)
    assert (
        crm.create_id(BC_ID) == crm_create_id("CUSTOMER", BC_ID) == crm_create_id("CUSTOMER", BC_ID.lower())
    )
    assert bc.create_id(CRM_ID) == bc_create_id("CUSTOMER", CRM_ID)
    assert bc.create_id(CRM_ID) != crm.create_id(CRM_ID)


def test_accept_converts_for_bc_and_checks_for_dataverse():
    bc, crm = BcEndpoint(ctx(), CUSTOMER), DataverseEndpoint(ctx(), CUSTOMER)
    country = field(CUSTOMER, "country", "address1_country")
    assert bc.accept(country, "Sweden") == ("SE", None)  # BC holds a country/region code
    assert crm.accept(country, "Sweden") == ("Sweden", None)


def test_missing_on_create_names_each_sides_fields():
    contact = MAPPINGS["CONTACT"]
    crm = DataverseEndpoint(ctx(), contact)
    name = next(f for f in contact.fields if f.transform == "person_name")
    assert crm.missing({}, [], []) == ["lastname"]
    assert crm.missing({name: "Ann Lee"}, [], []) == []  # the name's parts are sent
    assert crm.missing({name: ""}, [], []) == ["lastname"]
    bc = BcEndpoint(ctx(), SALESPEOPLE)
    assert bc.missing({}, [], []) == ["code"]
    assert bc.missing({}, [], [field(SALESPEOPLE, "code", "fullname")]) == []  # made at create


def test_read_by_ids_in_chunks_keyed_by_lower_case_id():
    ids = [f"0000000a-0000-4000-8000-{i:012d}" for i in range(ID_CHUNK + 1)]
    found = {"id": ids[0].upper()}
    bc_client = Calls(lambda name, entity, filter: Page([found]))
    assert BcEndpoint(ctx(bc=bc_client), CUSTOMER).read(ids) == {ids[0]: found}
    assert [c[0] for c in bc_client.calls] == ["get_page", "get_page"]
    assert bc_client.calls[0][1] == ("customers",)
    dv = Calls(lambda name, entity, filter: Page([]))
    assert DataverseEndpoint(ctx(dataverse=dv), CUSTOMER).read(ids[:2]) == {}
    assert "accountid" in dv.calls[0][2]["filter"]


def test_couplings_by_this_sides_ids():
    by_bc = Calls(lambda *a: {"bc": True})
    by_crm = Calls(lambda *a: {"crm": True})
    context = ctx(by_bc=by_bc.by_bc, by_crm=by_crm.by_crm)
    assert BcEndpoint(context, CUSTOMER).couplings(["a"]) == {"bc": True}
    assert DataverseEndpoint(context, CUSTOMER).couplings(["b"]) == {"crm": True}
    assert by_bc.calls == [("by_bc", ("CUSTOMER", ["a"]), {})]
    assert by_crm.calls == [("by_crm", ("CUSTOMER", ["b"]), {})]


def test_bc_updates_carry_the_etag_and_keep_the_new_modified_time():
    def answer(name, ops):
        return [
            BatchResult(200, {"lastModifiedDateTime": "t9"}),
            BatchResult(412, error=ConnectorError("bc", 412, None, "x")),
        ]

    client = Calls(answer)
    c1, c2 = Coupling("CUSTOMER", BC_ID, CRM_ID), Coupling("CUSTOMER", CRM_ID, BC_ID)
    rows = [(c1, {"displayName": "A"}, {"@odata.etag": 'W/"1"'}), (c2, {"displayName": "B"}, {})]
    errors = BcEndpoint(ctx(bc=client), CUSTOMER).update_many(rows)
    assert list(errors) == [1]
    ops = client.calls[0][1][0]
    assert [(o.method, o.id, o.etag, o.body) for o in ops] == [
        ("PATCH", c1.bc_id, 'W/"1"', {"displayName": "A"}),
        ("PATCH", c2.bc_id, None, {"displayName": "B"}),
    ]
    assert (c1.bc_modified, c2.bc_modified) == ("t9", None)


def test_dataverse_updates_are_one_update_multiple_keyed_by_the_coupled_id():
    client = Calls(lambda name, *a: [RecordResult(0, None, True), RecordResult(1, None, False, "e")])
    c1, c2 = Coupling("CUSTOMER", BC_ID, CRM_ID), Coupling("CUSTOMER", CRM_ID, BC_ID)
    errors = DataverseEndpoint(ctx(dataverse=client), CUSTOMER).update_many(
        [(c1, {"name": "A"}, {}), (c2, {}, {})]
    )
    assert errors == {1: "e"}
    name, args, _ = client.calls[0]
    assert name == "update_multiple" and args[:2] == ("accounts", "account")
    assert args[2] == [{"name": "A", "accountid": c1.crm_id}, {"accountid": c2.crm_id}]


def test_dataverse_creates_upsert_under_deterministic_ids():
    client = Calls(lambda name, *a: [RecordResult(0, None, True), RecordResult(1, None, False, "refused")])
    rows = [NewRecord("a", {"name": "A"}), NewRecord("b", {"name": "B"})]
    created = DataverseEndpoint(ctx(dataverse=client), CUSTOMER).create_many(rows)
    assert client.calls[0][0] == "upsert_multiple"
    assert [(r.id, r.ok, r.error, r.record) for r in created] == [
        (crm_create_id("CUSTOMER", "a"), True, None, None),
        (crm_create_id("CUSTOMER", "b"), False, "refused", None),
    ]


@pytest.mark.parametrize("again", [True, False])
def test_bc_creates_post_then_read_back_what_an_earlier_attempt_made(again):
    def answer(name, ops):
        if ops[0].method == "POST":
            return [
                BatchResult(201, {"id": "NEW-1"}),
                BatchResult(400, error=ConnectorError("bc", 400, None, "dup")),
            ]
        return (
            [BatchResult(200, {"id": ops[0].id.upper()})]
            if again
            else [BatchResult(404, error=ConnectorError("bc", 412, None, "x"))]
        )

    client = Calls(answer)
    code = field(SALESPEOPLE, "code", "fullname")
    rows = [NewRecord("a", {"displayName": "A"}, {code: "ann"}), NewRecord("b", {"displayName": "B"})]
    created = BcEndpoint(ctx(bc=client), SALESPEOPLE).create_many(rows)
    posted = client.calls[0][1][0]
    assert [o.body for o in posted] == [
        {"displayName": "A", "code": "ANN", "id": bc_create_id("SALESPEOPLE", "a")},
        {"displayName": "B", "id": bc_create_id("SALESPEOPLE", "b")},
    ]
    assert [(o.method, o.id) for o in client.calls[1][1][0]] == [("GET", bc_create_id("SALESPEOPLE", "b"))]
    assert (created[0].id, created[0].ok, created[0].record) == ("new-1", True, {"id": "NEW-1"})
    if again:  # the record exists under our id: it counts as created
        assert (created[1].id, created[1].ok) == (bc_create_id("SALESPEOPLE", "b"), True)
    else:
        assert (created[1].id, created[1].ok, created[1].error.message) == (None, False, "dup")
