"""Engine tests: the token authority and both emulators as real processes over HTTP, Azurite for storage.

The engine is called directly (no Functions host): runs are started with the orchestrator and the
real `sync-mappings` queue in Azurite is drained by calling the worker's handler, message by message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import settings as settings_module
from shared.settings import Settings
from shared.store import clients, sync_queue
from shared.store.tables import SYNC_QUEUE, Tables
from shared.sync import orchestrator
from shared.sync.context import SyncContext
from tests.integration.conftest import Admin


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
