"""Property-based fuzzing of every JSON route over HTTP: never a 500, always the JSON error shape for a
4xx, and nothing written when a request is rejected. Plus the explicit hostile cases."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.api.conftest import Api, start_stack

ROUTES = [
    ("POST", "/api/sync/full"),
    ("POST", "/api/sync/modified"),
    ("POST", "/api/mappings/{name}/sync"),
    ("GET", "/api/runs/{id}"),
    ("POST", "/api/runs/{id}/decision"),
    ("POST", "/api/runs/{id}/cancel"),
    ("GET", "/api/mappings/{name}"),
    ("PATCH", "/api/mappings/{name}"),
    ("GET", "/api/mappings/{name}/couplings"),
    ("POST", "/api/mappings/{name}/couplings"),
    ("DELETE", "/api/mappings/{name}/couplings"),
    ("POST", "/api/mappings/{name}/records/sync"),
    ("POST", "/api/mappings/{name}/records/create"),
    ("POST", "/api/mappings/{name}/match"),
    ("POST", "/api/mappings/{name}/skipped/restore"),
    ("GET", "/api/errors"),
    ("POST", "/api/errors/retry"),
    ("GET", "/api/crm/open"),
    ("GET", "/api/browse/history"),
    ("GET", "/api/browse/jobs"),
    ("GET", "/api/browse/errors"),
    ("GET", "/api/browse/mappings/{name}/couplings"),
    ("GET", "/api/browse/mappings/{name}/records"),
]
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
HOSTILE = [
    "' or 1 eq 1",
    "x') or (1 eq 1",
    "../../etc/passwd",
    "%2e%2e%2f",
    "00000000-0000-0000-0000-000000000000",
    "CUSTOMER",
    "NOPE",
    "",
    " ",
    "é" * 70,
    "<script>",
    "1e309",
    "null",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    st.dictionaries(
        st.sampled_from(
            [
                "mappings",
                "after_full_sync",
                "dry_run",
                "full",
                "keep_sync_all_records",
                "bc_id",
                "crm_id",
                "sync",
                "bc_ids",
                "crm_ids",
                "direction",
                "fields",
                "create_unmatched",
                "ids",
                "bc_filter",
                "crm_filter",
                "direction",
                "depends_on",
                "sync_only_coupled",
            ]
        )
        | st.text(max_size=10),
        json_values,
        max_size=5,
    ).map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=200),
)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    stack = start_stack(tmp_path_factory, "fuzzstack", data="none")
    client = Api(stack)
    # Every route reads the mappings first: make them exist so rejections are judged, not first-use seeding.
    client.http.get("/api/mappings").raise_for_status()
    yield client
    stack.stop()


def snapshot(api: Api) -> tuple:
    runs = api.http.get("/api/runs", params={"limit": 200}).json()["value"]
    mappings = api.http.get("/api/mappings").json()["value"]
    couplings = api.http.get("/api/mappings/CUSTOMER/couplings").json()["value"]
    return (
        len(runs),
        json.dumps([{k: v for k, v in m.items() if k != "state"} for m in mappings]),
        len(couplings),
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), segment=st.sampled_from(HOSTILE) | st.text(max_size=30), body=bodies)
def test_no_route_answers_500_and_rejections_write_nothing(api, route, segment, body):
    method, template = route
    encoded = quote(segment, safe="")
    path = template.replace("{name}", "X" + encoded).replace("{id}", encoded or "%20")
    before = snapshot(api)
    response = api.http.request(method, path, content=body, params={"entity": segment, "id": segment})
    assert response.status_code < 500, (method, path, body, response.text)
    if 400 <= response.status_code < 500 and response.status_code not in (401, 404, 405):
        error = response.json()["error"]
        assert error["code"] and error["message"]
        assert snapshot(api) == before, (method, path, body)


@pytest.mark.parametrize("value", [v for v in HOSTILE if v not in (ZERO_GUID, "", "null")])
def test_hostile_ids_and_filters_are_refused_cleanly(api, value):
    for response in (
        api.http.post("/api/mappings/CUSTOMER/couplings", json={"bc_id": value, "crm_id": value}),
        api.http.post("/api/mappings/CUSTOMER/records/sync", json={"bc_ids": [value]}),
        api.http.get("/api/mappings/CUSTOMER/couplings", params={"bc_id": value}),
        api.http.get("/api/crm/open", params={"entity": "account", "id": value}, follow_redirects=False),
        api.http.patch("/api/mappings/CUSTOMER", json={"bc_filter": value + " eq 1"}),
    ):
        assert response.status_code in (400, 404), response.text
        assert response.json()["error"]["code"]


def test_open_redirect_attempts_never_leave_the_bc_web_client(api):
    for target in ("https://evil.example", "//evil.example", "/\\evil.example"):
        response = api.http.get(
            "/api/crm/open",
            params={"entity": "account", "id": target, "next": target},
            follow_redirects=False,
        )
        assert response.status_code == 400
        assert "location" not in response.headers


def test_wrong_key_is_refused_everywhere_but_health(api):
    anonymous = api.http.get(f"{api.stack.endpoints['host']}/api/health", headers={"x-functions-key": ""})
    assert anonymous.status_code == 200
    for method, template in ROUTES + [
        ("GET", "/api/runs"),
        ("GET", "/api/openapi.json"),
        ("GET", "/api/schedule"),
    ]:
        path = template.replace("{name}", "CUSTOMER").replace("{id}", "0000000000000-abcdef")
        response = api.http.request(method, path, headers={"x-functions-key": "not-the-key"})
        assert response.status_code == 401, path
