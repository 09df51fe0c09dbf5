"""Concurrency and hardening over HTTP through the local host: mapping edits under ETags, one run per
mapping, one decision per run, idempotent ribbon, robust input, Entra on every route, rate limits."""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.data.tables import TableServiceClient

from shared.mappings.entities import CRM_ENTITIES
from tests.integration.api.conftest import Api, start_stack

ACCOUNTS = [f"a1000000-0000-4000-8000-{i:012d}" for i in range(1, 6)]
BODY_ROUTES = [
    ("POST", "/api/sync/full"),
    ("POST", "/api/sync/modified"),
    ("POST", "/api/mappings/CUSTOMER/sync"),
    ("POST", "/api/runs/0000000000000-abcdef/decision"),
    ("PATCH", "/api/mappings/CUSTOMER"),
    ("POST", "/api/mappings/CUSTOMER/couplings"),
    ("DELETE", "/api/mappings/CUSTOMER/couplings"),
    ("POST", "/api/mappings/CUSTOMER/records/sync"),
    ("POST", "/api/mappings/CUSTOMER/records/create"),
    ("POST", "/api/mappings/CUSTOMER/match"),
    ("POST", "/api/mappings/CUSTOMER/skipped/restore"),
    ("POST", "/api/errors/retry"),
]


def at_once(calls: list) -> list:
    """Run the calls in threads released together (a barrier), answers in call order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    stack = start_stack(
        tmp_path_factory, "hardstack", data="none", workers=1, env={"RATE_LIMIT_RUN_STARTS": "0"}
    )
    client = Api(stack)
    client.http.get("/api/mappings").raise_for_status()
    client.seed(
        "dataverse",
        {
            "accounts": [
                {"accountid": a, "name": f"Ribbon Account {i}", "customertypecode": 3, "statecode": 0}
                for i, a in enumerate(ACCOUNTS)
            ]
        },
    )
    yield client
    stack.stop()


def runs_table(api: Api):
    service = TableServiceClient.from_connection_string(api.stack.endpoints["storage_connection_string"])
    return service.get_table_client("Runs")


def mappings(api: Api) -> dict[str, dict]:
    return {m["name"]: m for m in api.http.get("/api/mappings").json()["value"]}


# --- lost mapping edits --------------------------------------------------------------------------
def test_concurrent_patches_to_different_mappings_are_all_kept(api):
    before = mappings(api)
    edits: list[tuple[str, dict]] = []
    for name, m in before.items():
        crm_key = CRM_ENTITIES[m["crm_entity"]].key
        edits += [
            (name, {"bc_filter": f"id ne {uuid.uuid4()}"}),
            (name, {"crm_filter": f"{crm_key} ne {uuid.uuid4()}"}),
            (
                name,
                {
                    "update_conflict": "GetUpdateFromIntegration"
                    if m["update_conflict"] != "GetUpdateFromIntegration"
                    else "SendUpdateToIntegration"
                },
            ),  # fmt: skip
            (
                name,
                {
                    "deletion_conflict": "RestoreRecords"
                    if m["deletion_conflict"] != "RestoreRecords"
                    else "RemoveCoupling"
                },
            ),  # fmt: skip
        ]
    edits += [
        (name, {"sync_only_coupled": not before[name]["sync_only_coupled"]}) for name in list(before)[:2]
    ]
    assert len(edits) == 4 * len(before) + 2
    try:
        answers = at_once([lambda n=n, e=e: api.http.patch(f"/api/mappings/{n}", json=e) for n, e in edits])
        assert all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200]
        after = mappings(api)
        lost = [(n, e) for n, e in edits if any(after[n][k] != v for k, v in e.items())]
        assert not lost, f"{len(lost)} of {len(edits)} edits lost: {lost}"
    finally:
        api.http.post("/api/mappings/reset").raise_for_status()


def test_concurrent_patches_of_one_field_win_or_conflict_never_vanish(api):
    values = [f"accountid ne {uuid.uuid4()}" for _ in range(8)]
    try:
        answers = at_once(
            [lambda v=v: api.http.patch("/api/mappings/CUSTOMER", json={"crm_filter": v}) for v in values]
        )
        codes = Counter(r.status_code for r in answers)
        assert set(codes) <= {200, 409} and codes[200] >= 1, codes
        assert all(r.json()["error"]["code"] == "MappingChanged" for r in answers if r.status_code == 409)
        won = {v for v, r in zip(values, answers, strict=True) if r.status_code == 200}
        assert mappings(api)["CUSTOMER"]["crm_filter"] in won
    finally:
        api.http.post("/api/mappings/reset").raise_for_status()


# --- one run per mapping, one decision per run ---------------------------------------------------
def test_simultaneous_starts_sharing_a_mapping_exactly_one_wins(api):
    starts = [
        lambda: api.http.post("/api/mappings/CURRENCY/sync", json={}),
        lambda: api.http.post("/api/sync/full", json={"mappings": ["CURRENCY"], "after_full_sync": "keep"}),
        lambda: api.http.post("/api/sync/modified", json={"mappings": ["CURRENCY", "UNIT OF MEASURE"]}),
        lambda: api.http.post("/api/mappings/CURRENCY/sync", json={"full": True, "after_full_sync": "keep"}),
    ]
    for calls in (starts[:2], starts):
        answers = at_once(calls)
        codes = sorted(r.status_code for r in answers)
        assert codes == [202] + [409] * (len(calls) - 1), [r.text for r in answers]
        winner = next(r for r in answers if r.status_code == 202).json()["run_id"]
        assert api.wait(winner)["status"] == "Succeeded"


def test_a_lock_left_by_a_crashed_start_frees_the_mapping_after_its_grace(api):
    table = runs_table(api)
    ghost = "0000000000001-dead00"  # a run row that never appeared
    fresh = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    old = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    table.upsert_entity({"PartitionKey": "lock", "RowKey": "CURRENCY", "run_id": ghost, "taken_at": fresh})
    try:
        refused = api.http.post("/api/mappings/CURRENCY/sync", json={})
        assert refused.status_code == 409, refused.text  # within its grace the starter may still be working
    finally:
        table.upsert_entity({"PartitionKey": "lock", "RowKey": "CURRENCY", "run_id": ghost, "taken_at": old})
    started = api.http.post("/api/mappings/CURRENCY/sync", json={})
    assert started.status_code == 202, started.text
    assert api.wait(started.json()["run_id"])["status"] == "Succeeded"


def test_opposite_decisions_at_once_exactly_one_wins(api):
    run_id = api.start("/api/mappings/CURRENCY/sync", full=True, after_full_sync="ask")
    assert api.wait(run_id)["status"] == "AwaitingDecision"
    answers = at_once(
        [
            lambda keep=keep: api.http.post(
                f"/api/runs/{run_id}/decision", json={"keep_sync_all_records": keep}
            )
            for keep in (True, False)
        ]
    )
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    winner = next(r for r in answers if r.status_code == 200).json()
    run = api.http.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "Succeeded" and run["decision"] == winner["decision"]


# --- robustness ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_json_nested_2000_deep_is_a_clear_400(api, method, path):
    body = b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}"
    response = api.http.request(method, path, content=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "NestedTooDeep"


def test_oversized_body_is_413(api):
    body = json.dumps({"ids": ["x" * 1000] * 1100}).encode()
    response = api.http.post("/api/errors/retry", content=body)
    assert response.status_code == 413 and response.json()["error"]["code"] == "BodyTooLarge"


@pytest.mark.parametrize(
    "flt",
    [
        "(" * 200 + "number eq 'X'" + ")" * 200,
        "lastModifiedDateTime gt 2024-13-45T00:00:00Z",
        "not " * 300 + "number eq 'X'",
    ],
    ids=["200-parentheses", "invalid-datetime", "300-nots"],
)
def test_hostile_filters_are_400_and_not_stored(api, flt):
    before = mappings(api)["CUSTOMER"]["bc_filter"]
    response = api.http.patch("/api/mappings/CUSTOMER", json={"bc_filter": flt})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "bc_filter"
    assert mappings(api)["CUSTOMER"]["bc_filter"] == before


def test_a_filter_the_service_refuses_is_not_stored(api):
    before = mappings(api)["CUSTOMER"]
    api.bc.post("/faults", json={"error_rate": 1.0, "status": 400}).raise_for_status()
    try:
        response = api.http.patch("/api/mappings/CUSTOMER", json={"bc_filter": "number ne 'ZZ'"})
    finally:
        api.bc.post("/faults", json={}).raise_for_status()
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "FilterRefused" and error["field"] == "bc_filter"
    assert "number ne 'ZZ'" in error["message"] and "Injected failure" in error["message"]
    assert mappings(api)["CUSTOMER"] == before
    # Accepted by the service: stored.
    ok = api.http.patch("/api/mappings/CUSTOMER", json={"bc_filter": "number ne 'ZZ'"})
    try:
        assert ok.status_code == 200 and mappings(api)["CUSTOMER"]["bc_filter"] == "number ne 'ZZ'"
    finally:
        api.http.post("/api/mappings/reset").raise_for_status()


@pytest.mark.parametrize(
    "error_id", ["abc/def", "MTIzNDU2Nzg5MDEyMy1hYmNkZWZ8Q1VTVE9NRVJ8dG9fY3JtfGEvYg", "a+b"]
)
def test_malformed_error_ids_are_400(api, error_id):
    response = api.http.post("/api/errors/retry", json={"ids": [error_id]})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "InvalidErrorId"


# --- the ribbon ------------------------------------------------------------------------------------
def test_concurrent_ribbon_clicks_create_one_customer_and_all_open_it(api):
    api.http.patch("/api/mappings/CUSTOMER", json={"sync_only_coupled": False}).raise_for_status()
    try:
        params = {"entity": "account", "id": ACCOUNTS[0]}
        answers = at_once(
            [lambda: api.http.get("/api/crm/open", params=params, follow_redirects=False) for _ in range(6)]
        )
        assert [r.status_code for r in answers] == [302] * 6, [r.text[:200] for r in answers]
        assert len({r.headers["location"] for r in answers}) == 1
        created = [c for c in api.records("bc", "customers") if c["displayName"] == "Ribbon Account 0"]
        assert len(created) == 1, created
        couplings = api.http.get("/api/mappings/CUSTOMER/couplings", params={"crm_id": ACCOUNTS[0]}).json()
        assert [c["bc_id"] for c in couplings["value"]] == [created[0]["id"]]
        again = api.http.get("/api/crm/open", params=params, follow_redirects=False)
        assert again.status_code == 302 and again.headers["location"] == answers[0].headers["location"]
        assert len([c for c in api.records("bc", "customers") if c["displayName"] == "Ribbon Account 0"]) == 1
    finally:
        api.http.post("/api/mappings/reset").raise_for_status()


def test_a_prefetched_ribbon_link_creates_nothing(api):
    api.http.patch("/api/mappings/CUSTOMER", json={"sync_only_coupled": False}).raise_for_status()
    try:
        params = {"entity": "account", "id": ACCOUNTS[1]}
        for header in (
            {"Sec-Purpose": "prefetch"},
            {"Sec-Purpose": "prefetch;prerender"},
            {"Purpose": "prefetch"},
        ):
            response = api.http.get("/api/crm/open", params=params, headers=header, follow_redirects=False)
            assert response.status_code == 503 and "location" not in response.headers
        assert not [c for c in api.records("bc", "customers") if c["displayName"] == "Ribbon Account 1"]
    finally:
        api.http.post("/api/mappings/reset").raise_for_status()


# --- Entra on every route, rate limits -------------------------------------------------------------
AUDIENCE = "api://bc-dataverse-sync"  # the API registration's App ID URI (v1.0 tokens name it)
API_CLIENT_ID = "5e1f0000-0000-4000-8000-00000000a11d"  # its client id (v2.0 tokens name it)


class Entra(Api):
    def mint(self, roles: list[str], version: str = "2.0", subject: str | None = None, **claims) -> str:
        idp = self.stack.endpoints["idp"]
        client = httpx.Client(verify=ssl.create_default_context(cafile=idp["ca"]), trust_env=False)
        subject = subject or str(uuid.uuid4())
        aud = AUDIENCE if version == "1.0" else API_CLIENT_ID
        body = {
            "aud": aud,
            "version": version,
            "claims": {"roles": roles, "oid": subject, "sub": subject, **claims},
        }
        return (
            client.post(f"{idp['authority']}/_admin/token", json=body)
            .raise_for_status()
            .json()["access_token"]
        )

    def call(self, method: str, path: str, token: str | None, **kwargs) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, path, headers=headers, follow_redirects=False, **kwargs)


@pytest.fixture(scope="module")
def entra(tmp_path_factory):
    stack = start_stack(
        tmp_path_factory,
        "entrastack",
        data="none",
        workers=1,
        env={
            "PORTAL_AUTH_MODE": "entra",
            "PORTAL_AUTH_AUDIENCE": f"{AUDIENCE},{API_CLIENT_ID}",
            "RATE_LIMIT_WINDOW_SECONDS": "3600",
            "RATE_LIMIT_RUN_STARTS": "3",
            "RATE_LIMIT_DRY_RUNS": "2",
        },
    )
    yield Entra(stack)
    stack.stop()


ROUTES = [
    ("GET", "/api/mappings"),
    ("GET", "/api/mappings/CUSTOMER"),
    ("GET", "/api/runs"),
    ("GET", "/api/errors"),
    ("GET", "/api/schedule"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/portal"),
    ("GET", "/api/mappings/CUSTOMER/couplings"),
]


def test_entra_mode_requires_a_token_with_the_admin_role_on_every_route(entra):
    admin_v2, admin_v1 = entra.mint(["Sync.Admin"]), entra.mint(["Sync.Admin"], version="1.0")
    opener, nobody = entra.mint(["Sync.Open"]), entra.mint([])
    other_tenant = entra.mint(["Sync.Admin"], tid=str(uuid.uuid4()))
    for method, path in ROUTES:
        assert entra.call(method, path, None).status_code == 401, path
        assert entra.call(method, path, other_tenant).status_code == 401, path
        assert entra.call(method, path, nobody).status_code == 403, path
        assert entra.call(method, path, opener).status_code == 403, path
        assert entra.call(method, path, admin_v2).status_code == 200, path
        assert entra.call(method, path, admin_v1).status_code == 200, path
    for method, path in (("POST", "/api/sync/full"), ("PATCH", "/api/mappings/CUSTOMER")):
        assert entra.call(method, path, None, json={}).status_code == 401
        assert entra.call(method, path, opener, json={}).status_code == 403
    assert entra.http.get("/api/health").status_code == 200  # anonymous, as before


def test_entra_mode_ribbon_takes_the_open_role(entra):
    params = {"entity": "account", "id": str(uuid.uuid4())}
    assert entra.call("GET", "/api/crm/open", None, params=params).status_code == 401
    assert entra.call("GET", "/api/crm/open", entra.mint([]), params=params).status_code == 403
    for roles in (["Sync.Open"], ["Sync.Admin"]):
        response = entra.call("GET", "/api/crm/open", entra.mint(roles, version="1.0"), params=params)
        assert response.status_code == 404 and response.json()["error"]["code"] == "RecordNotFound"


def test_run_starts_and_dry_runs_are_limited_per_caller(entra):
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    token = entra.mint(["Sync.Admin"], subject=alice)
    full = {"full": True, "after_full_sync": "keep"}
    answers = at_once(
        [lambda: entra.call("POST", "/api/mappings/CURRENCY/sync", token, json=full) for _ in range(8)]
    )
    codes = Counter(r.status_code for r in answers)
    assert codes[429] == 5 and codes[202] == 1 and codes[409] == 2, codes  # 3 counted, 5 refused
    for r in answers:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) > 0 and r.json()["error"]["code"] == "TooManyRequests"
    winner = next(r for r in answers if r.status_code == 202).json()["run_id"]
    other = entra.mint(["Sync.Admin"], subject=bob)
    dry = [
        lambda: entra.call("POST", "/api/sync/full", other, json={"mappings": ["CURRENCY"], "dry_run": True}),
        lambda: entra.call("POST", "/api/mappings/CURRENCY/match", other, json={"dry_run": True}),
        lambda: entra.call("POST", "/api/mappings/CURRENCY/match", other, json={"dry_run": True}),
    ]
    dry_codes = Counter(r.status_code for r in at_once(dry))
    assert dry_codes[429] == 1 and sum(dry_codes.values()) == 3, dry_codes
    # Alice's limit is spent; Bob's run starts are his own.
    assert entra.call("POST", "/api/sync/modified", token, json={}).status_code == 429
    assert entra.call(
        "POST", "/api/sync/modified", other, json={"mappings": ["SALESPEOPLE"]}
    ).status_code in (202, 409)
    entra.http.headers["authorization"] = f"Bearer {token}"
    try:
        assert entra.wait(winner)["status"] == "Succeeded"
    finally:
        del entra.http.headers["authorization"]
