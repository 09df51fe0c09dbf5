"""Entra ID token check (PORTAL_AUTH_MODE=entra), with tokens from the devstack authority: v1.0 and
v2.0 tokens, app roles, tenant, expired, wrong audience, bad signature, alg none, missing."""

from __future__ import annotations

import base64
import json
import ssl

import httpx
import jwt
import pytest

from shared.api.auth import check_user
from shared.api.errors import ApiError
from shared.settings import Settings

AUDIENCE = "api://bc-dataverse-sync-portal"  # App ID URI: what v1.0 tokens name
API_CLIENT_ID = "5e1f0000-0000-4000-8000-00000000a11d"  # client id: what v2.0 tokens name


@pytest.fixture(scope="module")
def idp(services):
    env = services["env"]
    settings = Settings.from_env(
        {
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            **env,
            "PORTAL_AUTH_MODE": "entra",
            "PORTAL_AUTH_AUDIENCE": f"{AUDIENCE}, {API_CLIENT_ID}",
        }
    )
    client = httpx.Client(verify=ssl.create_default_context(cafile=env["ENTRA_CA_BUNDLE"]), trust_env=False)

    def mint(aud: str = AUDIENCE, expires_in: int = 600, version: str = "2.0", **claims) -> str:
        url = f"{env['ENTRA_AUTHORITY_HOST']}/{env['ENTRA_TENANT_ID']}/_admin/token"
        claims.setdefault("roles", ["Sync.Admin"])
        body = {"aud": aud, "expires_in": expires_in, "claims": claims, "version": version}
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
        lambda mint: mint(version="1.0", iss="https://evil.example/"),  # wrong v1 issuer
        lambda mint: mint(ver="1.0"),  # a v2.0 issuer on a token claiming v1.0
        lambda mint: mint(tid="00000000-0000-4000-8000-000000000099"),  # another tenant
    ],
    ids=[
        "expired",
        "wrong-audience",
        "bad-signature",
        "alg-none",
        "wrong-issuer",
        "wrong-v1-issuer",
        "version-mismatch",
        "other-tenant",
    ],  # fmt: skip
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


def test_v1_and_v2_tokens_are_both_accepted(idp):
    settings, mint = idp
    tenant = settings.tenant_id
    v1 = check_user(settings, headers(mint(version="1.0")))
    assert v1["iss"] == f"https://sts.windows.net/{tenant}/" and v1["ver"] == "1.0" and v1["aud"] == AUDIENCE
    v2 = check_user(settings, headers(mint(aud=API_CLIENT_ID)))
    assert v2["iss"] == f"{settings.authority_host}/{tenant}/v2.0" and v2["aud"] == API_CLIENT_ID
    # A v1.0 token may name the client id as well (it depends on how the client asked for it).
    assert check_user(settings, headers(mint(aud=API_CLIENT_ID, version="1.0")))["ver"] == "1.0"


def test_app_roles_are_checked(idp):
    from shared.api.auth import RIBBON

    settings, mint = idp
    for roles in ([], ["Sync.Open"], ["Other"], "Sync.Admin"):
        with pytest.raises(ApiError) as refused:
            check_user(settings, headers(mint(roles=roles)))
        assert refused.value.status == 403
    assert check_user(settings, headers(mint(roles=["Sync.Open"])), RIBBON)["roles"] == ["Sync.Open"]
    assert check_user(settings, headers(mint(roles=["Sync.Admin", "x"])), RIBBON)


def test_client_credentials_v1_endpoint_issues_v1_tokens(idp, services):
    env = services["env"]
    client = httpx.Client(verify=ssl.create_default_context(cafile=env["ENTRA_CA_BUNDLE"]), trust_env=False)
    url = f"{env['ENTRA_AUTHORITY_HOST']}/{env['ENTRA_TENANT_ID']}/oauth2/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": env["ENTRA_CLIENT_ID"],
        "client_secret": env["ENTRA_CLIENT_SECRET"],
        "resource": AUDIENCE,
    }
    token = client.post(url, data=form).raise_for_status().json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["ver"] == "1.0" and claims["iss"] == f"https://sts.windows.net/{env['ENTRA_TENANT_ID']}/"
    assert claims["aud"] == AUDIENCE and claims["appid"] == env["ENTRA_CLIENT_ID"]
