"""Fixtures for integration tests: the token authority and both emulators as real processes."""

from __future__ import annotations

import secrets
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from devstack import procs

TENANT = "7f3e0a1c-0000-4000-8000-000000000001"


@pytest.fixture(scope="session")
def services(tmp_path_factory) -> Iterator[dict]:
    """idp + Dataverse + BC emulators on free ports for the whole session."""
    state = tmp_path_factory.mktemp("idp")
    client_id, secret = str(uuid.uuid4()), secrets.token_urlsafe(24)
    idp_port, dv_port, bc_port = procs.free_port(), procs.free_port(), procs.free_port()
    py = sys.executable
    started = []
    try:
        idp = procs.start(
            [py, "-m", "devstack.idp", "--port", str(idp_port), "--state-dir", str(state), "--tenant", TENANT,
             "--client-id", client_id, f"--client-secret={secret}"],
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
                "BC_API_ROOTS": "resources=bcsync/crm/v1.0",
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
