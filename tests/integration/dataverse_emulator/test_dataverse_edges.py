"""Dataverse emulator edge cases over HTTP: not-found shapes, bad binds, delta tokens, literal quoting,
request stats and injected connection resets."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.dataverse_emulator.test_dataverse_api import dv  # noqa: F401 - shared fixture


def test_get_and_delete_of_a_missing_record_answer_404_with_the_not_found_code(dv):  # noqa: F811
    client, _, _ = dv
    missing = uuid.uuid4()
    for response in (client.get(f"/accounts({missing})"), client.delete(f"/accounts({missing})")):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "0x80040217"


def test_delete_then_delete_again_is_404(dv):  # noqa: F811
    client, _, _ = dv
    key = uuid.uuid4()
    assert client.patch(f"/accounts({key})", json={"name": "Gone"}).status_code in (200, 204)
    assert client.delete(f"/accounts({key})").status_code == 204
    assert client.delete(f"/accounts({key})").status_code == 404


def test_bind_to_a_missing_record_or_an_unknown_property_is_rejected_and_writes_nothing(dv):  # noqa: F811
    client, admin, _ = dv
    bad_bind = {"name": "A", "transactioncurrencyid@odata.bind": f"/transactioncurrencies({uuid.uuid4()})"}
    assert client.post("/accounts", json=bad_bind).status_code == 404
    unknown = client.post("/accounts", json={"name": "A", "nosuchcolumn": 1})
    assert unknown.status_code == 400 and "nosuchcolumn" in unknown.json()["error"]["message"]
    assert admin.records("accounts") == []


def test_a_garbage_delta_token_is_400(dv):  # noqa: F811
    client, _, _ = dv
    response = client.get("/accounts", params={"$deltatoken": "not-a-token"})
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message"}


def test_an_injection_looking_filter_value_is_one_string_literal(dv):  # noqa: F811
    client, admin, _ = dv
    admin.seed({"accounts": [{"name": "x' or 1 eq 1"}, {"name": "other"}]})
    found = client.get("/accounts", params={"$filter": "name eq 'x'' or 1 eq 1'", "$select": "name"})
    assert found.status_code == 200
    assert [r["name"] for r in found.json()["value"]] == ["x' or 1 eq 1"]


def test_stats_count_requests_by_method_and_kind(dv):  # noqa: F811
    client, admin, _ = dv
    admin.reset_stats()
    client.get("/accounts")
    client.get("/accounts")
    client.post("/accounts", json={"name": "S"})
    stats = admin.stats()
    assert stats["total"] == 3
    assert sum(v for k, v in stats.items() if k.startswith("GET ")) == 2
    assert sum(v for k, v in stats.items() if k.startswith("POST ")) == 1


def test_injected_resets_break_the_connection_for_httpx(dv):  # noqa: F811
    client, admin, _ = dv
    admin.faults(reset_rate=1.0)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get("/accounts")
    admin.faults()
    assert client.get("/accounts").status_code == 200
