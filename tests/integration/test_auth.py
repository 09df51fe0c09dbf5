"""Entra ID token check for the portal/ribbon routes (PORTAL_AUTH_MODE=entra), with tokens from the
devstack authority: valid, expired, wrong audience, bad signature, alg none, missing."""

from __future__ import annotations

import base64
import json
import ssl

import httpx
import pytest

from shared.api.auth import check_user
from shared.api.errors import ApiError
from shared.settings import Settings

AUDIENCE = "api://bc-dataverse-sync-portal"


@pytest.fixture(scope="module")
def idp(services):
    env = services["env"]
    settings = Settings.from_env(
        {
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            **env,
            "PORTAL_AUTH_MODE": "entra",
            "PORTAL_AUTH_AUDIENCE": AUDIENCE,
        }
    )
    client = httpx.Client(verify=ssl.create_default_context(cafile=env["ENTRA_CA_BUNDLE"]), trust_env=False)

    def mint(aud: str = AUDIENCE, expires_in: int = 600, **claims) -> str:
        url = f"{env['ENTRA_AUTHORITY_HOST']}/{env['ENTRA_TENANT_ID']}/_admin/token"
        body = {"aud": aud, "expires_in": expires_in, "claims": claims}
        return client.post(url, json=body).raise_for_status().json()["access_token"]

    return settings, mint


def headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_valid_token_is_accepted(idp):
    settings, mint = idp
    claims = check_user(settings, headers(mint(name="Admin")))
    assert claims["aud"] == AUDIENCE and claims["name"] == "Admin"
    # Behind App Service Authentication the token arrives in its own header.
    assert check_user(settings, {"x-ms-token-aad-access-token": mint()})["aud"] == AUDIENCE


def _unsigned(token: str) -> str:
    header, payload, _ = token.split(".")
    none = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).decode().rstrip("=")
    return f"{none}.{payload}."


@pytest.mark.parametrize(
    "make",
    [
        lambda mint: mint(expires_in=-120),  # expired
        lambda mint: mint(aud="https://api.businesscentral.dynamics.com"),  # wrong audience
        lambda mint: mint()[:-4] + ("AAAA" if not mint().endswith("AAAA") else "BBBB"),  # bad signature
        lambda mint: _unsigned(mint()),  # alg none
        lambda mint: mint(iss="https://evil.example/v2.0"),  # wrong issuer
    ],
    ids=["expired", "wrong-audience", "bad-signature", "alg-none", "wrong-issuer"],
)
def test_bad_tokens_are_refused(idp, make):
    settings, mint = idp
    with pytest.raises(ApiError) as refused:
        check_user(settings, headers(make(mint)))
    assert refused.value.status == 401


def test_missing_token_is_refused_and_function_key_mode_needs_none(idp):
    settings, _ = idp
    with pytest.raises(ApiError):
        check_user(settings, {})
    keys_only = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert check_user(keys_only, {}) is None
