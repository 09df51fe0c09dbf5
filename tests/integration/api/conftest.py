"""The whole stack (Azurite, token authority, both emulators, the host running function_app.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from devstack.stack import Stack

TERMINAL = ("Succeeded", "FinishedWithErrors", "Failed", "Cancelled", "AwaitingDecision")


class Api:
    def __init__(self, stack: Stack):
        self.stack = stack
        e = stack.endpoints
        self.http = httpx.Client(
            base_url=e["host"], headers={"x-functions-key": e["function_key"]}, timeout=60
        )
        self.bc = httpx.Client(base_url=e["bc"]["admin"], timeout=60)
        self.dv = httpx.Client(base_url=e["dataverse"]["admin"], timeout=60)

    def start(self, path: str = "/api/sync/full", **body) -> str:
        response = self.http.post(path, json=body)
        assert response.status_code == 202, response.text
        return response.json()["run_id"]

    def wait(self, run_id: str, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.http.get(f"/api/runs/{run_id}").json()
            if run["status"] in TERMINAL:
                return run
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} did not finish: {run}")

    def records(self, side: str, entity: str) -> list[dict]:
        client = self.bc if side == "bc" else self.dv
        return client.get(f"/records/{entity}").raise_for_status().json()["value"]

    def seed(self, side: str, data: dict) -> None:
        (self.bc if side == "bc" else self.dv).post("/seed", json=data).raise_for_status()

    def job(self, run: dict, mapping: str) -> dict:
        return next(j for j in run["jobs"] if j["mapping"] == mapping)


def start_stack(tmp_path_factory, name: str, **options) -> Stack:
    env = {"SLICE_MAX_RECORDS": "100", "SLICE_CLAIM_SECONDS": "8", "LEASE_SECONDS": "30"}
    env.update(options.pop("env", {}))
    return Stack.start(tmp_path_factory.mktemp(name), env=env, **options)


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[Api]:
    stack = start_stack(tmp_path_factory, "apistack", data="demo", records=150, workers=2)
    client = Api(stack)
    yield client
    stack.stop()
