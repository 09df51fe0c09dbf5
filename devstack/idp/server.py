"""The token authority: HTTPS with a CA devstack generates, discovery, JWKS, a v2.0 token endpoint.

Issues RS256 JWTs for the client-credentials grant, like Entra ID: v2.0 tokens from
``/oauth2/v2.0/token`` (``aud`` the resource of the requested ``<resource>/.default`` scope, ``iss``
``<authority>/v2.0``) and v1.0 tokens from ``/oauth2/token`` (``resource=``, ``iss``
``https://sts.windows.net/<tenant>/``, as Entra's v1 endpoint issues them). Works with msal's
ConfidentialClientApplication (authority on this host, instance discovery off, CA trusted explicitly).
``/_admin/token`` mints arbitrary tokens of either version (roles, expired, wrong audience, ...) for
tests and for signing in to the portal locally in entra mode.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs

import jwt
import trustme
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def ensure_certificates(state: Path) -> tuple[Path, Path]:
    """CA + server certificate for 127.0.0.1/localhost, made once and reused (trust survives restarts)."""
    state.mkdir(parents=True, exist_ok=True)
    ca_pem, cert_pem, key_pem = state / "ca.pem", state / "server.pem", state / "server-key.pem"
    if not (ca_pem.exists() and cert_pem.exists() and key_pem.exists()):
        ca = trustme.CA(organization_name="devstack local CA")
        server = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(str(ca_pem))
        server.private_key_pem.write_to_path(str(key_pem))
        cert_pem.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    return cert_pem, key_pem


def signing_key(state: Path) -> rsa.RSAPrivateKey:
    path = state / "signing-key.pem"
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)  # type: ignore[return-value]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    return key


def oid_for(client_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "oid:" + client_id))


def build_app(
    port: int,
    state: Path,
    tenant: str,
    client_id: str,
    secret: str,
    lifetime: int,
    app_roles: list[str] | None = None,
) -> Starlette:
    key = signing_key(state)
    numbers = key.public_key().public_numbers()
    kid = uuid.uuid5(uuid.NAMESPACE_URL, _b64(numbers.n)).hex[:16]
    base = f"https://127.0.0.1:{port}/{tenant}"
    issuer = f"{base}/v2.0"
    jwks = {
        "keys": [
            {
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": kid,
                "n": _b64(numbers.n),
                "e": _b64(numbers.e),
            }
        ]
    }

    def error(status: int, code: str, description: str, aadsts: int) -> JSONResponse:
        body = {"error": code, "error_description": f"AADSTS{aadsts}: {description}", "error_codes": [aadsts]}
        return JSONResponse(body, status_code=status)

    def mint(aud: str, expires_in: int, extra: dict | None = None, version: str = "2.0") -> str:
        now = int(time.time())
        claims = {
            "aud": aud,
            "iss": issuer if version == "2.0" else f"https://sts.windows.net/{tenant}/",
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
            "tid": tenant,
            "oid": oid_for(client_id),
            "sub": oid_for(client_id),
            "ver": version,
            "roles": list(app_roles or []),
        }
        # v1.0 names the client appid; v2.0 azp.
        claims.update({"appid": client_id} if version == "1.0" else {"azp": client_id, "appid": client_id})
        claims.update(extra or {})
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    def check_tenant(request: Request) -> JSONResponse | None:
        if request.path_params["tenant"] != tenant:
            return error(
                400, "invalid_request", f"Tenant '{request.path_params['tenant']}' not found.", 90002
            )
        return None

    async def discovery(request: Request) -> JSONResponse:
        return check_tenant(request) or JSONResponse(
            {
                "issuer": issuer,
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "tenant_region_scope": "EU",
            }
        )

    async def keys(request: Request) -> JSONResponse:
        return check_tenant(request) or JSONResponse(jwks)

    async def token(request: Request) -> JSONResponse:
        bad = check_tenant(request)
        if bad:
            return bad
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        given_id, given_secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            given_id, _, given_secret = base64.b64decode(auth[6:]).decode().partition(":")
        if form.get("grant_type") != "client_credentials":
            return error(400, "unsupported_grant_type", "Only client_credentials is supported here.", 70003)
        if given_id != client_id:
            return error(
                400, "unauthorized_client", f"Application with identifier '{given_id}' was not found.", 700016
            )
        if given_secret != secret:
            return error(401, "invalid_client", "Invalid client secret provided.", 7000215)
        if request.url.path.endswith("/oauth2/token"):  # the v1.0 endpoint: resource=, v1.0 token
            resource = str(form.get("resource") or "")
            if not resource:
                return error(400, "invalid_request", "The request body must contain 'resource'.", 900144)
            access = mint(resource, lifetime, version="1.0")
            return JSONResponse(
                {
                    "token_type": "Bearer",
                    "expires_in": str(lifetime),
                    "resource": resource,
                    "access_token": access,
                }
            )
        scope = str(form.get("scope") or "").split()
        resources = [s[: -len("/.default")] for s in scope if s.endswith("/.default")]
        if len(resources) != 1 or len(scope) != 1:
            return error(400, "invalid_scope", "The scope must be a single '<resource>/.default'.", 1002012)
        access = mint(resources[0], lifetime)
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": access,
            }
        )

    async def admin_token(request: Request) -> JSONResponse:
        bad = check_tenant(request)
        if bad:
            return bad
        body = await request.json()
        version = str(body.get("version") or "2.0")
        if version not in ("1.0", "2.0"):
            return error(400, "invalid_request", "version must be 1.0 or 2.0.", 900144)
        token = mint(body["aud"], int(body.get("expires_in", 3600)), body.get("claims"), version)
        return JSONResponse({"access_token": token})

    return Starlette(
        routes=[
            Route("/{tenant}/v2.0/.well-known/openid-configuration", discovery),
            Route("/{tenant}/.well-known/openid-configuration", discovery),
            Route("/{tenant}/discovery/v2.0/keys", keys),
            Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
            Route("/{tenant}/oauth2/token", token, methods=["POST"]),
            Route("/{tenant}/_admin/token", admin_token, methods=["POST"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="devstack token authority")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--token-lifetime", type=int, default=3600)
    parser.add_argument("--app-roles", default="", help="comma-separated roles of client-credential tokens")
    args = parser.parse_args(argv)
    cert, key = ensure_certificates(args.state_dir)
    roles = [r for r in args.app_roles.split(",") if r]
    app = build_app(
        args.port, args.state_dir, args.tenant, args.client_id, args.client_secret, args.token_lifetime, roles
    )
    print(json.dumps({"idp": f"https://127.0.0.1:{args.port}/{args.tenant}"}), flush=True)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
    )
    return 0
