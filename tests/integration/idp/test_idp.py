"""The token authority over real HTTPS with msal: discovery, client credentials, cache, JWKS, errors."""

from __future__ import annotations

import ssl
import sys
import time
import uuid
from collections.abc import Iterator

import jwt
import msal
import pytest
import requests

from devstack import procs
from devstack.idp.client import msal_http_client

TENANT = "contoso-dev"
CLIENT_ID = "11aa11aa-0000-4000-8000-000000000001"
SECRET = "s3cret-value"
BC = "https://api.businesscentral.dynamics.com"
CRM = "http://127.0.0.1:9999"


@pytest.fixture(scope="module")
def idp(tmp_path_factory) -> Iterator[dict]:
    state = tmp_path_factory.mktemp("idp-state")
    port = procs.free_port()
    args = [sys.executable, "-m", "devstack.idp", "--port", str(port), "--state-dir", str(state)]
    args += ["--tenant", TENANT, "--client-id", CLIENT_ID, f"--client-secret={SECRET}"]
    proc = procs.start(args, state / "idp.log")
    try:
        procs.wait_for_port(port, proc=proc)
        yield {"authority": f"https://127.0.0.1:{port}/{TENANT}", "ca": str(state / "ca.pem")}
    finally:
        procs.stop(proc)


def app(idp: dict, secret: str = SECRET) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=secret,
        authority=idp["authority"],
        instance_discovery=False,
        http_client=msal_http_client(idp["ca"]),
    )


def verify(idp: dict, token: str, aud: str) -> dict:
    ctx = ssl.create_default_context(cafile=idp["ca"])
    jwks = jwt.PyJWKClient(f"{idp['authority']}/discovery/v2.0/keys", ssl_context=ctx)
    key = jwks.get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=aud, issuer=f"{idp['authority']}/v2.0")


def test_both_scopes_cache_and_claims(idp):
    client = app(idp)
    for resource in (BC, CRM):
        first = client.acquire_token_for_client([f"{resource}/.default"])
        assert "access_token" in first, first
        assert first["token_source"] == "identity_provider"
        second = client.acquire_token_for_client([f"{resource}/.default"])
        assert second["token_source"] == "cache"
        assert second["access_token"] == first["access_token"]
        claims = verify(idp, first["access_token"], resource)
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, "oid:" + CLIENT_ID))
        assert claims["appid"] == claims["azp"] == CLIENT_ID and claims["tid"] == TENANT
        assert claims["oid"] == claims["sub"] == oid and claims["ver"] == "2.0"
        assert claims["nbf"] <= time.time() < claims["exp"]


def test_wrong_secret_and_bad_scope_are_refused(idp):
    result = app(idp, secret="wrong").acquire_token_for_client([f"{BC}/.default"])
    assert result.get("error") == "invalid_client" and 7000215 in result["error_codes"]
    session = msal_http_client(idp["ca"])
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
    r = session.post(f"{idp['authority']}/oauth2/v2.0/token", data={**form, "scope": f"{BC}/user.read"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = session.post(f"{idp['authority']}/oauth2/v2.0/token", data={**form, "scope": f"{BC}/.default"})
    assert r.status_code == 200 and verify(idp, r.json()["access_token"], BC)["aud"] == BC


def test_minted_expired_token_is_signed_but_expired(idp):
    session = msal_http_client(idp["ca"])
    r = session.post(f"{idp['authority']}/_admin/token", json={"aud": BC, "expires_in": -600})
    token = r.json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["exp"] < time.time()
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(idp, token, BC)


def test_default_trust_store_does_not_trust_the_devstack_ca(idp):
    plain = requests.Session()
    plain.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        plain.get(f"{idp['authority']}/v2.0/.well-known/openid-configuration")
