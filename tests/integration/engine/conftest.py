"""Engine tests: the token authority and both emulators as real processes over HTTP, Azurite for storage.

The engine is called directly (no Functions host): runs are started with the orchestrator and the
real `sync-mappings` queue in Azurite is drained by calling the worker's handler, message by message.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack import procs
from shared import settings as settings_module
from shared.settings import Settings
from shared.store import clients, sync_queue
from shared.store.tables import SYNC_QUEUE, Tables
from shared.sync import orchestrator
from shared.sync.context import SyncContext

TENANT = "7f3e0a1c-0000-4000-8000-000000000001"


@pytest.fixture(scope="session")
def services(tmp_path_factory) -> Iterator[dict]:
    """idp + Dataverse + BC emulators on free ports for the whole session."""
    state = tmp_path_factory.mktemp("idp")
    client_id, secret = str(uuid.uuid4()), secrets.token_urlsafe(24)
    idp_port, dv_port, bc_port = procs.free_port(), procs.free_port(), procs.free_port()
    py = str(procs.REPO / ".venv" / "bin" / "python")
    started = []
    try:
        idp = procs.start(
            [py, "-m", "devstack.idp", "--port", str(idp_port), "--state-dir", str(state), "--tenant", TENANT,
             "--client-id", client_id, "--client-secret", secret],
            state / "idp.log",
        )  # fmt: skip
        started.append(idp)
        procs.wait_for_port(idp_port, proc=idp)
        authority = f"https://127.0.0.1:{idp_port}/{TENANT}"
        ca = str(state / "ca.pem")
        dv = procs.start(
            [
                py,
                "-m",
                "devstack.dataverse_emulator",
                "--port",
                str(dv_port),
                "--authority",
                authority,
                "--ca",
                ca,
            ],
            state / "dataverse.log",
        )
        started.append(dv)
        bc = procs.start(
            [py, "-m", "devstack.bc_emulator", "--port", str(bc_port), "--authority", authority, "--ca", ca,
             "--tenant", TENANT, "--environment", "production"],
            state / "bc.log",
        )  # fmt: skip
        started.append(bc)
        procs.wait_for_port(dv_port, proc=dv)
        procs.wait_for_port(bc_port, proc=bc)
        yield {
            "env": {
                "ENTRA_TENANT_ID": TENANT,
                "ENTRA_CLIENT_ID": client_id,
                "ENTRA_CLIENT_SECRET": secret,
                "ENTRA_AUTHORITY_HOST": f"https://127.0.0.1:{idp_port}",
                "ENTRA_CA_BUNDLE": ca,
                "DATAVERSE_URL": f"http://127.0.0.1:{dv_port}",
                "BC_API_URL": f"http://127.0.0.1:{bc_port}",
                "BC_ENVIRONMENT": "production",
                "HTTP_MAX_ATTEMPTS": "6",
                "HTTP_MAX_RETRY_SECONDS": "60",
            },
            "dv_admin": f"http://127.0.0.1:{dv_port}/_admin",
            "bc_admin": f"http://127.0.0.1:{bc_port}/_admin",
            "logs": state,
        }
    finally:
        for proc in reversed(started):
            procs.stop(proc)


class Admin:
    """The emulators' admin API (devstack only): reset, seed, read back, stats, faults."""

    def __init__(self, url: str):
        self.url = url
        self.http = httpx.Client(timeout=60)

    def reset(self) -> None:
        self.http.post(f"{self.url}/reset").raise_for_status()

    def seed(self, data: dict[str, list[dict]]) -> dict:
        return self.http.post(f"{self.url}/seed", json=data).raise_for_status().json()

    def records(self, entity: str) -> list[dict]:
        body = self.http.get(f"{self.url}/records/{entity}").raise_for_status().json()
        return body["value"] if isinstance(body, dict) else body

    def stats(self) -> dict:
        return self.http.get(f"{self.url}/stats").raise_for_status().json()

    def reset_stats(self) -> None:
        self.http.post(f"{self.url}/stats/reset").raise_for_status()

    def faults(self, **faults) -> None:
        self.http.post(f"{self.url}/faults", json=faults).raise_for_status()


class Harness:
    def __init__(self, ctx: SyncContext, bc: Admin, dv: Admin):
        self.ctx, self.bc, self.dv = ctx, bc, dv

    def run(self, kind: str = "full", mappings: list[str] | None = None, **options) -> dict:
        """Start a run and drain the real queue until it ends; returns the run with its jobs."""
        request = orchestrator.StartRequest(
            kind, "api", mappings, options.pop("after_full_sync", "keep"), **options
        )
        run = orchestrator.start_run(self.ctx, request)
        self.drain(run.run_id)
        from shared.api import service

        return service.run_detail(self.ctx, run.run_id)

    def drain(self, run_id: str, limit: int = 500) -> None:
        queue = clients.queue(SYNC_QUEUE)
        for _ in range(limit):
            run = self.ctx.runs.get(run_id)
            if run.status not in ("Pending", "Running"):
                return
            messages = list(
                queue.receive_messages(messages_per_page=32, visibility_timeout=30, max_messages=32)
            )
            if not messages:
                # Deferred messages (mapping lease held) become visible later: the sweeper's job here.
                orchestrator.sweep(self.ctx)
                continue
            for msg in messages:
                body = sync_queue.parse(msg.content)
                if body["run"] == run_id:
                    orchestrator.handle_message(self.ctx, body)
                queue.delete_message(msg)
        raise AssertionError(f"run {run_id} did not finish")

    def job(self, run: dict, mapping: str) -> dict:
        return next(j for j in run["jobs"] if j["mapping"] == mapping)


@pytest.fixture
def harness(services, storage_connection_string, unique_name, monkeypatch) -> Iterator[Harness]:
    env = {
        **services["env"],
        "AzureWebJobsStorage": storage_connection_string,
        "STORAGE_TABLE_PREFIX": unique_name,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for cached in (
        settings_module.get_settings,
        clients._cached_table_service,
        clients._cached_queue_service,
    ):
        cached.cache_clear()
    settings = Settings.from_env()
    ctx = SyncContext(settings, Tables(prefix=unique_name))
    ctx.tables.ensure()
    sync_queue.ensure()
    clients.queue(SYNC_QUEUE).clear_messages()
    bc, dv = Admin(services["bc_admin"]), Admin(services["dv_admin"])
    bc.reset()
    dv.reset()
    yield Harness(ctx, bc, dv)
    for cached in (
        settings_module.get_settings,
        clients._cached_table_service,
        clients._cached_queue_service,
    ):
        cached.cache_clear()


def dump(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, default=str))
