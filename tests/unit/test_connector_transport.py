"""The connectors' retry, Retry-After, backoff bound, connection-reset and 401-refresh paths, through
``httpx.MockTransport`` (no network, no sleeping: ``ServiceClient.sleep`` records the waits).

The emulator-backed tests (tests/integration/connectors) show the same client against the services'
contract; these pin the policy itself, branch by branch.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest

from shared.connectors.auth import TokenProvider
from shared.connectors.bc import BatchOp, BcClient
from shared.connectors.dataverse import DataverseClient
from shared.connectors.errors import BadRequest, Throttled, Transient, Unauthorized
from shared.settings import Settings

COMPANY = "11111111-2222-3333-4444-555555555555"
ENV = {
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "PORTAL_AUTH_MODE": "function_key",
    "ENTRA_TENANT_ID": "tenant-t",
    "ENTRA_CLIENT_ID": "client-c",
    "ENTRA_CLIENT_SECRET": "secret-s",
    "ENTRA_AUTHORITY_HOST": "https://idp.test",
    "DATAVERSE_URL": "https://org.test",
    "BC_API_URL": "https://bc.test",
    "BC_ENVIRONMENT": "production",
    "BC_COMPANY_ID": COMPANY,
    "HTTP_MAX_ATTEMPTS": "4",
    "HTTP_MAX_RETRY_SECONDS": "60",
}

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env(ENV)


class Tokens:
    """A token provider that hands out tok1, tok2, … and counts forced refreshes."""

    def __init__(self):
        self.current, self.refreshes = 1, 0

    def token(self, scope: str, force_refresh: bool = False) -> str:
        if force_refresh:
            self.current += 1
            self.refreshes += 1
        return f"tok{self.current}"


class Script:
    """A MockTransport handler answering from a list (one response or exception per request; the last one
    repeats), recording every request it saw."""

    def __init__(self, *answers: httpx.Response | Exception):
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _dataverse(settings: Settings, script: Script, tokens=None) -> tuple[DataverseClient, list[float]]:
    client = DataverseClient(settings, tokens or Tokens(), transport=httpx.MockTransport(script))
    waits: list[float] = []
    client.http.sleep = waits.append
    return client, waits


def _rows(*names: str) -> httpx.Response:
    return httpx.Response(200, json={"value": [{"name": n} for n in names]})


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": code}}, headers=headers)


# --- Dataverse: one request's retry policy -----------------------------------------------------------
def test_429_waits_exactly_the_retry_after_seconds_then_succeeds(settings):
    script = Script(_error(429, "0x80072321", {"Retry-After": "2"}), _rows("a"))
    client, waits = _dataverse(settings, script)
    page = client.get_page("accounts", filter="name eq 'a'")
    assert [r["name"] for r in page.records] == ["a"]
    assert waits == [2.0]
    stats = client.stats()
    assert stats["requests"] == 2 and stats["retries"] == 1
    assert stats["throttled"] == 1 and stats["throttled_wait_ms"] == 2000
    # The replay is the same request: same URL, same query.
    assert script.seen[0].url == script.seen[1].url
    assert parse_qs(script.seen[1].url.query.decode())["$filter"] == ["name eq 'a'"]


def test_retry_after_as_an_http_date_in_the_past_means_no_wait(settings):
    past = "Mon, 01 Jan 2001 00:00:00 GMT"
    script = Script(_error(503, "ServiceUnavailable", {"Retry-After": past}), _rows("a"))
    client, waits = _dataverse(settings, script)
    client.get_page("accounts")
    assert waits == [0.0]
    assert "throttled" not in client.stats()  # a 503 is retried but is not throttling


def test_5xx_backs_off_with_bounded_jitter_and_gives_up_after_max_attempts(settings):
    script = Script(_error(502, "BadGateway"))
    client, waits = _dataverse(settings, script)
    with pytest.raises(Transient) as caught:
        client.get_page("accounts")
    assert caught.value.status == 502
    assert len(script.seen) == settings.http_max_attempts == 4
    assert len(waits) == 3
    for attempt, wait in enumerate(waits, start=1):
        assert 0 <= wait <= min(30.0, 0.25 * 2 ** (attempt - 1))


def test_a_retry_after_beyond_the_budget_is_not_waited_for(settings):
    script = Script(_error(429, "0x80072321", {"Retry-After": "3600"}), _rows("never"))
    client, waits = _dataverse(settings, script)
    with pytest.raises(Throttled):
        client.get_page("accounts")
    assert len(script.seen) == 1 and waits == []


def test_the_time_budget_bounds_the_retries_too(settings, monkeypatch):
    tight = dataclasses.replace(settings, http_max_attempts=50, http_max_retry_seconds=5)
    script = Script(_error(429, "0x80072321", {"Retry-After": "2"}))
    client, waits = _dataverse(tight, script)
    clock = [1000.0]  # a fake monotonic clock that the recorded sleeps advance
    monkeypatch.setattr("shared.connectors.http.time.monotonic", lambda: clock[0])

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    client.http.sleep = sleep
    with pytest.raises(Throttled):
        client.get_page("accounts")
    # t=0: 0+2 <= 5 wait; t=2: 2+2 <= 5 wait; t=4: 4+2 > 5 give up.
    assert waits == [2.0, 2.0] and len(script.seen) == 3


@pytest.mark.parametrize(
    "reset",
    [
        httpx.ReadError("Connection reset by peer"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("x"),
    ],
)
def test_a_connection_reset_is_retried(settings, reset):
    script = Script(reset, _rows("a"))
    client, waits = _dataverse(settings, script)
    assert [r["name"] for r in client.get_page("accounts").records] == ["a"]
    assert len(waits) == 1 and client.stats()["retries"] == 1


def test_a_connection_that_keeps_resetting_ends_in_a_transient_error(settings):
    script = Script(httpx.ReadError("Connection reset by peer"))
    client, waits = _dataverse(settings, script)
    with pytest.raises(Transient) as caught:
        client.get_page("accounts")
    assert caught.value.code == "ReadError" and caught.value.status is None
    assert len(script.seen) == 4 and len(waits) == 3


def test_a_client_error_is_not_retried(settings):
    script = Script(_error(400, "0x80060888"), _rows("never"))
    client, waits = _dataverse(settings, script)
    with pytest.raises(BadRequest) as caught:
        client.get_page("accounts", filter="nosuchfield eq 1")
    assert caught.value.code == "0x80060888"
    assert len(script.seen) == 1 and waits == []


def test_401_refreshes_the_token_once_and_replays_the_request(settings):
    script = Script(_error(401, "Unauthorized"), httpx.Response(204))
    tokens = Tokens()
    client, waits = _dataverse(settings, script, tokens)
    client.update("accounts", str(uuid.uuid4()), {"name": "x"}, etag='W/"1"')
    assert [r.headers["Authorization"] for r in script.seen] == ["Bearer tok1", "Bearer tok2"]
    assert [r.content for r in script.seen] == [b'{"name":"x"}'] * 2
    assert all(r.headers["If-Match"] == 'W/"1"' for r in script.seen)
    assert tokens.refreshes == 1 and waits == []
    assert client.stats()["token_refresh"] == 1


def test_a_second_401_is_an_error_not_a_loop(settings):
    script = Script(_error(401, "Unauthorized"))
    tokens = Tokens()
    client, _ = _dataverse(settings, script, tokens)
    with pytest.raises(Unauthorized):
        client.get_page("accounts")
    assert len(script.seen) == 2 and tokens.refreshes == 1


def test_bulk_writes_retry_a_throttled_chunk_as_a_whole(settings):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    script = Script(_error(429, "0x80072321", {"Retry-After": "1"}), httpx.Response(200, json={}))
    client, waits = _dataverse(settings, script)
    results = client.upsert_multiple("accounts", "account", [{"accountid": i, "name": i} for i in ids])
    assert [r.ok for r in results] == [True] * 3 and waits == [1.0]
    sent = [json.loads(r.content)["Targets"] for r in script.seen]
    assert sent[0] == sent[1] and [t["accountid"] for t in sent[1]] == ids


# --- Business Central ---------------------------------------------------------------------------------
def _bc(settings: Settings, handler: Handler, tokens=None) -> tuple[BcClient, list[float]]:
    client = BcClient(settings, tokens or Tokens(), transport=httpx.MockTransport(handler))
    waits: list[float] = []
    client.http.sleep = waits.append
    return client, waits


class BcService:
    """Companies plus a scripted answer for everything else."""

    def __init__(self, script: Script):
        self.script = script
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.path.endswith("/companies"):
            return httpx.Response(200, json={"value": [{"id": COMPANY, "name": "CRONUS"}]})
        return self.script(request)


def test_bc_page_read_retries_a_429_and_a_reset(settings):
    script = Script(
        _error(429, "Application_TooManyRequests", {"Retry-After": "5"}),
        httpx.ReadError("Connection reset by peer"),
        _rows("c1", "c2"),
    )
    client, waits = _bc(settings, BcService(script))
    page = client.get_page("customers", filter="number eq '10000'", page_size=50)
    assert [r["name"] for r in page.records] == ["c1", "c2"]
    assert waits[0] == 5.0 and len(waits) == 2
    assert all(r.headers["Prefer"] == "odata.maxpagesize=50" for r in script.seen)
    assert all(f"companies({COMPANY})/customers" in r.url.path for r in script.seen)


def test_bc_401_refreshes_once(settings):
    script = Script(_error(401, "Authentication_InvalidCredentials"), _rows("c1"))
    tokens = Tokens()
    client, _ = _bc(settings, BcService(script), tokens)
    assert client.get_page("customers").records == [{"name": "c1"}]
    assert [r.headers["Authorization"] for r in script.seen] == ["Bearer tok1", "Bearer tok2"]
    assert tokens.refreshes == 1


def _batch_answer(*responses: dict) -> httpx.Response:
    return httpx.Response(200, json={"responses": list(responses)})


def test_bc_batch_retries_only_the_operations_throttled_inside_it(settings):
    ops = [
        BatchOp("POST", "customers", body={"displayName": "A"}),
        BatchOp("PATCH", "customers", id=str(uuid.uuid4()), body={"displayName": "B"}, etag='W/"7"'),
        BatchOp("DELETE", "customers", id=str(uuid.uuid4())),
    ]
    first = _batch_answer(
        {"id": "0", "status": 201, "body": {"id": "new"}},
        {"id": "1", "status": 429, "headers": {"Retry-After": "3"}, "body": None},
        {"id": "2", "status": 404, "body": {"error": {"code": "Internal_RecordNotFound", "message": "gone"}}},
    )
    second = _batch_answer({"id": "1", "status": 200, "body": {"displayName": "B"}})
    script = Script(first, second)
    client, waits = _bc(settings, BcService(script))
    results = client.batch(ops)
    assert [r.status for r in results] == [201, 200, 404]
    assert results[0].body == {"id": "new"} and results[2].error.code == "Internal_RecordNotFound"
    assert waits == [3.0]
    sent = [json.loads(r.content)["requests"] for r in script.seen]
    assert [q["id"] for q in sent[0]] == ["0", "1", "2"]
    assert [q["id"] for q in sent[1]] == ["1"]  # the created and the not-found ones are not sent again
    assert sent[1][0]["headers"]["If-Match"] == 'W/"7"' and sent[1][0]["method"] == "PATCH"
    assert all(r.url.path.endswith("/api/v2.0/$batch") for r in script.seen)
    assert client.stats()["throttled"] == 1


def test_bc_batch_reports_an_operation_throttled_on_every_attempt(settings):
    always = _batch_answer({"id": "0", "status": 429, "body": None})
    script = Script(always)
    client, waits = _bc(settings, BcService(script))
    [result] = client.batch([BatchOp("GET", "customers", query={"$top": "1"})])
    assert result.status == 429 and isinstance(result.error, Throttled)
    assert len(script.seen) == settings.http_max_attempts
    assert waits == [1.0] * (settings.http_max_attempts - 1)  # no hint: one second between attempts


def test_bc_batch_itself_throttled_is_retried_by_the_request_policy(settings):
    ok = _batch_answer({"id": "0", "status": 200, "body": {"value": []}})
    script = Script(_error(429, "Application_TooManyRequests", {"Retry-After": "4"}), ok)
    client, waits = _bc(settings, BcService(script))
    [result] = client.batch([BatchOp("GET", "customers", query={"$top": "1"})])
    assert result.status == 200 and waits == [4.0]


# --- the token provider over a mock authority ---------------------------------------------------------
class Authority:
    """An OpenID authority: discovery and a client-credentials token endpoint handing out idp1, idp2, …"""

    def __init__(self, base: str):
        self.base = base
        self.issued = 0
        self.token_requests: list[dict[str, list[str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": f"{self.base}/v2.0",
                    "token_endpoint": f"{self.base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{self.base}/oauth2/v2.0/authorize",
                },
            )
        if request.url.path.endswith("/oauth2/v2.0/token") and request.method == "POST":
            self.token_requests.append(parse_qs(request.content.decode()))
            self.issued += 1
            return httpx.Response(
                200, json={"access_token": f"idp{self.issued}", "token_type": "Bearer", "expires_in": 3600}
            )
        return httpx.Response(404)


def test_token_provider_caches_and_refreshes_on_demand(settings):
    authority = Authority(f"{settings.authority_host}/{settings.tenant_id}")
    tokens = TokenProvider(settings, transport=httpx.MockTransport(authority))
    scope = settings.dataverse_scope
    assert tokens.token(scope) == "idp1"
    assert tokens.token(scope) == "idp1"  # cached until near expiry
    assert tokens.acquired == 1
    assert tokens.token(scope, force_refresh=True) == "idp2"
    assert tokens.acquired == 2 and authority.issued == 2
    form = authority.token_requests[0]
    assert form["grant_type"] == ["client_credentials"] and form["client_id"] == ["client-c"]
    assert scope in form["scope"][0].split()


def test_a_401_fetches_a_new_token_from_the_authority_and_replays(settings):
    authority = Authority(f"{settings.authority_host}/{settings.tenant_id}")
    # A new transport, so a new app and token cache: the provider's apps are keyed by it.
    tokens = TokenProvider(settings, transport=httpx.MockTransport(authority))
    script = Script(_error(401, "Unauthorized"), _rows("a"))
    client, _ = _dataverse(settings, script, tokens)
    assert client.get_page("accounts").records == [{"name": "a"}]
    assert [r.headers["Authorization"] for r in script.seen] == ["Bearer idp1", "Bearer idp2"]
    assert authority.issued == 2 and tokens.acquired == 2
