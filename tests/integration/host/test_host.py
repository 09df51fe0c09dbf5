"""The local Functions host, through HTTP and real Azurite queues, with a test-only function app."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devstack import procs
from devstack.stack import Stack

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    state = tmp_path_factory.mktemp("hoststack")
    out = state / "invocations.jsonl"
    out.touch()
    env = {"SAMPLE_OUT": str(out), "SAMPLE_SCHEDULE": "*/2 * * * * *"}
    stack = Stack.start(
        state,
        components=("azurite", "host"),
        workers=2,
        env=env,
        app="tests.integration.host.sample_app:app",
        host_json=HERE / "host.json",
    )
    client = httpx.Client(base_url=stack.endpoints["host"], timeout=30)
    yield stack, client, out
    client.close()
    stack.stop()


def queue(stack, name: str) -> QueueClient:
    client = QueueClient.from_connection_string(
        stack.endpoints["storage_connection_string"],
        name,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    return client


def invocations(out: Path, kind: str) -> list[dict]:
    return [e for e in map(json.loads, out.read_text().splitlines()) if e["kind"] == kind]


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_function_key_is_required_except_for_anonymous_routes(host):
    stack, client, _ = host
    key = stack.endpoints["function_key"]
    assert client.get("/api/open").text == "open"
    assert client.get("/api/items/1/parts").status_code == 401
    assert client.get("/api/items/1/parts", headers={"x-functions-key": "wrong"}).status_code == 401
    assert client.get("/api/items/1/parts", params={"code": key}).status_code == 201
    assert client.get("/api/items/1/parts", headers={"x-functions-key": key}).status_code == 201
    assert client.get("/api/nowhere", headers={"x-functions-key": key}).status_code == 404
    refused = client.delete("/api/items/1/parts", headers={"x-functions-key": key})
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "GET, POST"  # what the route takes


def test_route_params_query_body_and_headers_round_trip(host):
    stack, client, _ = host
    response = client.post(
        "/api/items/42/parts/wheel?color=red",
        content=b"raw \xc3\xa9 body",
        headers={"x-functions-key": stack.endpoints["function_key"], "x-test": "hello"},
    )
    assert response.status_code == 201
    assert response.headers["x-echo"] == "yes"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body == {
        "method": "POST",
        "route": {"id": "42", "part": "wheel"},
        "query": {"color": "red"},
        "body": "raw é body",
        "header": "hello",
    }
    optional = client.get("/api/items/7/parts", headers={"x-functions-key": stack.endpoints["function_key"]})
    assert optional.json()["route"] == {"id": "7"}


def test_redirect_is_passed_through(host):
    stack, client, _ = host
    response = client.get("/api/go", headers={"x-functions-key": stack.endpoints["function_key"]})
    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/target?a=1"


def test_queue_message_is_processed_then_deleted(host):
    stack, _, out = host
    work = queue(stack, "sample-work")
    sent = work.send_message(json.dumps({"n": "single"}))
    done = wait_for(lambda: [e for e in invocations(out, "work") if e["id"] == sent.id])
    assert done[0]["payload"] == {"n": "single"} and done[0]["dequeue"] == 1
    wait_for(lambda: work.get_queue_properties().approximate_message_count == 0)


def test_failing_function_is_retried_then_moved_to_poison(host):
    stack, _, out = host
    sent = queue(stack, "sample-fail").send_message(json.dumps({"boom": True}))
    poison = queue(stack, "sample-fail-poison")
    moved = wait_for(lambda: list(poison.peek_messages(max_messages=32)), timeout=60)
    assert json.loads(moved[0].content) == {"boom": True}
    attempts = [e["dequeue"] for e in invocations(out, "fail") if e["id"] == sent.id]
    assert attempts == [1, 2, 3]  # maxDequeueCount = 3 in this host.json


def test_output_binding_is_delivered_after_success(host):
    stack, client, out = host
    response = client.post(
        "/api/enqueue", content=b"payload-1", headers={"x-functions-key": stack.endpoints["function_key"]}
    )
    assert response.status_code == 202
    wait_for(lambda: [e for e in invocations(out, "relay") if e["body"] == "payload-1"])
    relayed = queue(stack, "sample-relayed")
    messages = wait_for(lambda: list(relayed.peek_messages(max_messages=32)))
    assert "relayed:payload-1" in [m.content for m in messages]


def test_timer_fires_on_its_schedule(host):
    _, _, out = host
    ticks = wait_for(lambda: (t := invocations(out, "tick")) and len(t) >= 2 and t, timeout=20)
    gaps = [b["at"] - a["at"] for a, b in zip(ticks, ticks[1:], strict=False)]
    assert all(g > 1.0 for g in gaps), gaps  # every 2 s, never twice at once
    assert all(t["past_due"] is False for t in ticks)


def test_two_workers_share_a_queue_without_overlap(host):
    stack, _, out = host
    assert len(stack.worker_pids()) == 2
    work = queue(stack, "sample-work")
    ids = {work.send_message(json.dumps({"n": i, "sleep": 0.3})).id for i in range(40)}
    done = wait_for(
        lambda: (e := [x for x in invocations(out, "work") if x["id"] in ids]) and len(e) >= 40 and e,
        timeout=90,
    )
    assert {e["id"] for e in done} == ids and len(done) == 40  # each exactly once
    assert {e["pid"] for e in done} == set(stack.worker_pids())  # both workers took a share


def test_devstack_up_serves_health_from_the_real_app_and_down_stops_it(tmp_path):
    state = procs.STATE_DIR
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack", "up", "--data", "none"],
        cwd=procs.REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        endpoints = wait_for(
            lambda: (
                (state / "endpoints.json").exists()
                and json.loads((state / "endpoints.json").read_text()).get("pids", {}).get("up") == proc.pid
                and json.loads((state / "endpoints.json").read_text())
            ),
            timeout=90,
        )
        health = httpx.get(f"{endpoints['host']}/api/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        down = subprocess.run(
            [sys.executable, "-m", "devstack", "down"], cwd=procs.REPO, capture_output=True, text=True
        )
        assert "host" in down.stdout or "up" in down.stdout
        proc.wait(timeout=60)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{endpoints['host']}/api/health", timeout=3)
    finally:
        if proc.poll() is None:
            procs.stop(proc)
