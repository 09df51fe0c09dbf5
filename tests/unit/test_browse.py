"""The portal's read side: continuation tokens, record links, where names live, bulk name resolution."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from shared.api import browse
from shared.api.errors import ApiError
from shared.connectors.errors import ConnectorError


def test_tokens_round_trip_and_anything_else_is_refused() -> None:
    token = {"PartitionKey": "CUSTOMER|p03", "RowKey": "bc_0a1b"}
    text = browse.encode_token(token)
    assert browse.TOKEN.match(text) and browse.decode_token(text) == token
    assert browse.encode_token(None) is None and browse.decode_token("") is None
    for store_token in ({"table": 2, "token": None}, {"table": 0, "token": token}):  # couplings' tables
        assert browse.decode_token(browse.encode_token(store_token)) == store_token
    for bad in (
        "not base64!",
        "e30",
        browse.encode_token({"x": "y"}),
        "YWJj",
        browse.encode_token({"RowKey": 1}),
        browse.encode_token({"table": 8, "token": None}),
        browse.encode_token({"table": True, "token": None}),
        browse.encode_token({"table": "1", "token": None}),
        browse.encode_token({"table": 1, "token": {"x": "y"}}),
    ):
        with pytest.raises(ApiError) as err:
            browse.decode_token(bad)
        assert err.value.status == 400 and err.value.field == "continuation"


def test_dataverse_form_links_from_the_environment_or_an_app_url() -> None:
    rid = "0a1b2c3d-0000-0000-0000-000000000001"
    assert browse.crm_url("https://org.crm4.dynamics.com", "account", rid) == (
        f"https://org.crm4.dynamics.com/main.aspx?pagetype=entityrecord&etn=account&id={rid}"
    )
    app = "https://org.crm4.dynamics.com/main.aspx?appid=11111111-2222-3333-4444-555555555555"
    assert browse.crm_url(app, "contact", rid) == f"{app}&pagetype=entityrecord&etn=contact&id={rid}"
    assert browse.crm_url("", "account", rid) is None


def test_number_and_name_fields_come_from_the_catalogue() -> None:
    assert browse.bc_shape("customers") == browse.Shape("id", "number", "displayName")
    assert browse.bc_shape("currencies") == browse.Shape("id", "code", "displayName")
    assert browse.crm_shape("accounts") == browse.Shape("accountid", "accountnumber", "name", "account")
    assert browse.crm_shape("transactioncurrencies").name == "currencyname"
    assert browse.bc_shape("noSuchEntity") is None and browse.crm_shape("nosuchset") is None


def test_counts_of_a_record_level_run_message() -> None:
    assert browse._message_counts("failed: 1, inserted: 2") == {"failed": 1, "inserted": 2}
    assert browse._message_counts(None) == {} and browse._message_counts("ambiguous match") == {}


@dataclass
class FakePage:
    records: list


class FakeSide:
    """Answers id-filtered reads from a dict, counting them (no HTTP: this is the resolver's logic)."""

    def __init__(self, key: str, records: dict[str, dict], fail: bool = False):
        self.key, self.records, self.fail, self.reads = key, records, fail, []

    def get_page(self, entity, *, filter=None, select=None, page_size=None):
        if self.fail:
            raise ConnectorError("bc", 404, "BadRequest_NotFound", "no such API page")
        wanted = [part.split(" eq ")[1] for part in filter.split(" or ")]
        self.reads.append(len(wanted))
        return FakePage([self.records[i] for i in wanted if i in self.records])

    def company_name(self) -> str:
        return "CRONUS"


def context(bc: FakeSide, crm: FakeSide):
    settings = SimpleNamespace(
        dataverse_app_url="https://org.crm.dynamics.com",
        bc_web_client_url="https://businesscentral.dynamics.com",
        bc_tenant_id="t",
        bc_environment="production",
    )
    return SimpleNamespace(bc=bc, dataverse=crm, settings=settings)


MAPPING = SimpleNamespace(name="CUSTOMER", bc_entity="customers", crm_entity="accounts")


def test_names_are_read_in_bulk_once_per_page_and_missing_records_show_as_such() -> None:
    ids = [str(uuid.UUID(int=i + 1)) for i in range(120)]
    bc = FakeSide(
        "id",
        {i: {"id": i, "number": f"C{n:05d}", "displayName": f"Customer {n}"} for n, i in enumerate(ids[:-1])},
    )
    crm = FakeSide("accountid", {})
    names = browse.Resolver(context(bc, crm))
    for i in ids + ids[:10]:  # asked twice: read once
        names.want(MAPPING, "bc", i)
    names.want(MAPPING, "crm", ids[0])
    names.resolve()
    assert bc.reads == [50, 50, 20] and crm.reads == [1]
    first = names.get(MAPPING, "bc", ids[0])
    assert (first["number"], first["name"], first["state"]) == ("C00000", "Customer 0", "found")
    assert names.get(MAPPING, "bc", ids[-1])["state"] == "missing"
    assert names.get(MAPPING, "crm", ids[0]) == {
        "id": ids[0],
        "number": None,
        "name": None,
        "state": "missing",
        "url": None,
    }


def test_a_side_that_cannot_be_read_or_an_unknown_entity_shows_ids_only() -> None:
    rid = str(uuid.uuid4())
    names = browse.Resolver(context(FakeSide("id", {}, fail=True), FakeSide("accountid", {})))
    unknown = SimpleNamespace(name="OTHER", bc_entity="noSuchEntity", crm_entity="nosuchset")
    names.want(MAPPING, "bc", rid)
    names.want(unknown, "crm", rid)
    names.resolve()
    assert names.get(MAPPING, "bc", rid)["state"] == "unknown"
    assert names.get(unknown, "crm", rid)["state"] == "unknown"
    assert names.get(None, "bc", "job-level")["state"] == "unknown"
