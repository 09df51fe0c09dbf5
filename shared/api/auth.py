"""Optional Entra ID bearer-token check for the portal and ribbon routes (PORTAL_AUTH_MODE=entra).

Function keys still gate every route; this adds a user token check in front of the human-facing
routes: RS256 signature via the authority's JWKS, issuer, audience, expiry. ``alg: none`` and
symmetric algorithms are refused because only RS256 is accepted.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

import jwt

from shared.api.errors import ApiError
from shared.settings import Settings

_clients: dict[str, jwt.PyJWKClient] = {}
_lock = threading.Lock()


def _issuer(settings: Settings) -> str:
    return settings.portal_auth_issuer or f"{settings.authority_host}/{settings.tenant_id}/v2.0"


def _jwks_client(settings: Settings) -> jwt.PyJWKClient:
    url = f"{settings.authority_host}/{settings.tenant_id}/discovery/v2.0/keys"
    with _lock:
        if url not in _clients:
            context = ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else None
            _clients[url] = jwt.PyJWKClient(
                url, cache_keys=True, lifespan=3600, ssl_context=context, timeout=10
            )
        return _clients[url]


def check_user(settings: Settings, headers) -> dict[str, Any] | None:
    """The validated token claims in entra mode (None in function_key mode); 401 ApiError otherwise.

    The token comes from ``Authorization: Bearer`` or, behind App Service Authentication (which signs
    the browser in and forwards its token), from ``X-MS-TOKEN-AAD-ACCESS-TOKEN``.
    """
    if settings.portal_auth_mode != "entra":
        return None
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer":
        token = headers.get("x-ms-token-aad-access-token") or ""
    if not token:
        raise ApiError(401, "Unauthorized", "a bearer token from Entra ID is required")
    try:
        key = _jwks_client(settings).get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=settings.portal_auth_audience or settings.client_id,
            issuer=_issuer(settings),
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise ApiError(401, "InvalidToken", f"bearer token rejected: {type(exc).__name__}") from None
