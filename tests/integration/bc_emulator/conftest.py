"""The token authority and the BC emulator as real processes on free ports; tokens through msal."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import msal
import pytest
import requests

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

    @property
    def custom(self) -> str:
        """The project's own API pages (resources, salespeoplePurchasers): api/bcsync/crm/v1.0."""
        return self.api.replace("/api/v2.0", "/api/bcsync/crm/v1.0")

    @property
    def custom_company(self) -> str:
        return f"{self.custom}/companies({COMPANY})"

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
def bc_service(services) -> Bc:
    """The session's token authority and BC emulator (tests/integration/conftest.py); a token via msal."""
    env = services["env"]
    authority, ca = f"{env['ENTRA_AUTHORITY_HOST']}/{env['ENTRA_TENANT_ID']}", env["ENTRA_CA_BUNDLE"]
    session = requests.Session()
    session.trust_env, session.verify = False, ca
    app = msal.ConfidentialClientApplication(
        env["ENTRA_CLIENT_ID"],
        client_credential=env["ENTRA_CLIENT_SECRET"],
        authority=authority,
        instance_discovery=False,
        http_client=session,
    )
    token = app.acquire_token_for_client(scopes=[BC_SCOPE])["access_token"]
    root = env["BC_API_URL"]
    return Bc(
        root,
        f"{root}/v2.0/{env['ENTRA_TENANT_ID']}/production/api/v2.0",
        f"{root}/_admin",
        authority,
        ca,
        token,
    )


@pytest.fixture
def bc(bc_service: Bc) -> Bc:
    """A freshly reset emulator (data, faults, stats)."""
    httpx.post(f"{bc_service.admin}/reset").raise_for_status()
    return bc_service


@pytest.fixture
def http(bc: Bc) -> Iterator[httpx.Client]:
    with httpx.Client(headers=bc.headers(), timeout=30) as client:
        yield client
