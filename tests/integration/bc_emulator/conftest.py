"""The token authority and the BC emulator as real processes on free ports; tokens through msal."""

from __future__ import annotations

import secrets
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import msal
import pytest
import requests

from devstack import procs

TENANT = "7f3e0a1c-0000-4000-8000-00000000bc01"
COMPANY = "c0c0c0c0-0000-4000-8000-000000000001"
BC_SCOPE = "https://api.businesscentral.dynamics.com/.default"


@dataclass
class Bc:
    url: str  # emulator root
    api: str  # .../api/v2.0
    admin: str
    authority: str
    ca: str
    token: str

    @property
    def company(self) -> str:
        return f"{self.api}/companies({COMPANY})"

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def mint(self, aud: str, expires_in: int = 3600, **claims) -> str:
        """A token signed by the real idp key but with chosen claims (wrong audience, expired, tenant)."""
        context = ssl.create_default_context(cafile=self.ca)
        body = {"aud": aud, "expires_in": expires_in, "claims": claims}
        with httpx.Client(verify=context, trust_env=False) as http:
            answer = http.post(f"{self.authority}/_admin/token", json=body)
        return answer.raise_for_status().json()["access_token"]


@pytest.fixture(scope="session")
def bc_service(tmp_path_factory) -> Iterator[Bc]:
    state = tmp_path_factory.mktemp("bcidp")
    client_id, secret = str(uuid.uuid4()), secrets.token_urlsafe(24)
    idp_port, bc_port = procs.free_port(), procs.free_port()
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
        authority, ca = f"https://127.0.0.1:{idp_port}/{TENANT}", str(state / "ca.pem")
        bc = procs.start(
            [py, "-m", "devstack.bc_emulator", "--port", str(bc_port), "--authority", authority, "--ca", ca,
             "--tenant", TENANT, "--environment", "production"],
            state / "bc.log",
        )  # fmt: skip
        started.append(bc)
        procs.wait_for_port(bc_port, proc=bc)
        session = requests.Session()
        session.trust_env, session.verify = False, ca
        app = msal.ConfidentialClientApplication(
            client_id, client_credential=secret, authority=authority, instance_discovery=False,
            http_client=session,
        )  # fmt: skip
        token = app.acquire_token_for_client(scopes=[BC_SCOPE])["access_token"]
        root = f"http://127.0.0.1:{bc_port}"
        yield Bc(root, f"{root}/v2.0/{TENANT}/production/api/v2.0", f"{root}/_admin", authority, ca, token)
    finally:
        for proc in reversed(started):
            procs.stop(proc)


@pytest.fixture
def bc(bc_service: Bc) -> Bc:
    """A freshly reset emulator (data, faults, stats)."""
    httpx.post(f"{bc_service.admin}/reset").raise_for_status()
    return bc_service


@pytest.fixture
def http(bc: Bc) -> Iterator[httpx.Client]:
    with httpx.Client(headers=bc.headers(), timeout=30) as client:
        yield client
