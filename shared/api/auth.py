"""Entra ID bearer-token check for every route but /api/health (PORTAL_AUTH_MODE=entra).

Function keys still gate every route; in entra mode each call also needs an access token issued to
this API: RS256 signature via the authority's JWKS, expiry, tenant, audience, issuer and an app role
in ``roles``. ``alg: none`` and symmetric algorithms are refused because only RS256 is accepted.

Entra issues v1.0 or v2.0 access tokens depending on the API registration's
``requestedAccessTokenVersion``; both are accepted, each with its own issuer
(https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference):

- v1.0: ``iss`` ``https://sts.windows.net/<tenant>/``; ``aud`` the App ID URI or the client id;
- v2.0: ``iss`` ``<authority>/<tenant>/v2.0``; ``aud`` the client id.
"""

from __future__ import annotations

import hashlib
import ssl
import threading
from typing import Any

import jwt

from shared.api.errors import ApiError
from shared.settings import Settings

ADMIN_ROLE = "Sync.Admin"  # every JSON route and the portal
OPEN_ROLE = "Sync.Open"  # the CRM ribbon button only
ADMIN = (ADMIN_ROLE,)
RIBBON = (OPEN_ROLE, ADMIN_ROLE)
V1_ISSUER = "https://sts.windows.net/{tenant}/"

_clients: dict[str, jwt.PyJWKClient] = {}
_lock = threading.Lock()


def issuers(settings: Settings) -> dict[str, str]:
    """Accepted issuer per token version ("1.0", "2.0"); PORTAL_AUTH_ISSUER replaces the v2.0 one."""
    return {
        "1.0": V1_ISSUER.format(tenant=settings.tenant_id),
        "2.0": settings.portal_auth_issuer or f"{settings.authority_host}/{settings.tenant_id}/v2.0",
    }


def audiences(settings: Settings) -> list[str]:
    """PORTAL_AUTH_AUDIENCE (comma-separated: App ID URI and/or client id); empty = ENTRA_CLIENT_ID."""
    given = [a.strip() for a in settings.portal_auth_audience.split(",") if a.strip()]
    return given or [settings.client_id]


def _jwks_client(settings: Settings) -> jwt.PyJWKClient:
    # One key set signs both token versions.
    url = f"{settings.authority_host}/{settings.tenant_id}/discovery/v2.0/keys"
    with _lock:
        if url not in _clients:
            context = ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else None
            _clients[url] = jwt.PyJWKClient(
                url, cache_keys=True, lifespan=3600, ssl_context=context, timeout=10
            )
        return _clients[url]


def _refused(reason: str) -> ApiError:
    return ApiError(401, "InvalidToken", f"bearer token rejected: {reason}")


def check_user(settings: Settings, headers, roles: tuple[str, ...] = ADMIN) -> dict[str, Any] | None:
    """The validated token claims in entra mode (None in function_key mode).

    401 ApiError without a valid token, 403 when the token carries none of ``roles``. The token comes
    from ``Authorization: Bearer`` or, behind App Service Authentication (which signs the browser in
    and forwards its token), from ``X-MS-TOKEN-AAD-ACCESS-TOKEN``.
    """
    if settings.portal_auth_mode != "entra":
        return None
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer":
        token = headers.get("x-ms-token-aad-access-token") or ""
    token = token.strip()
    if not token:
        raise ApiError(401, "Unauthorized", "a bearer token from Entra ID is required")
    try:
        key = _jwks_client(settings).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=audiences(settings),
            options={"require": ["exp", "iss", "aud", "tid"], "verify_iss": False},
        )
    except jwt.PyJWTError as exc:
        raise _refused(type(exc).__name__) from None
    if claims.get("tid") != settings.tenant_id:
        raise _refused("token is from another tenant")
    version = str(claims.get("ver") or ("1.0" if str(claims["iss"]).startswith("https://sts.") else "2.0"))
    if claims["iss"] != issuers(settings).get(version):
        raise _refused(f"issuer does not match a v{version} token of tenant {settings.tenant_id}")
    granted = claims.get("roles") or []
    if not isinstance(granted, list) or not set(granted) & set(roles):
        raise ApiError(403, "Forbidden", f"the token needs the app role {' or '.join(roles)}")
    return claims


def caller_id(claims: dict[str, Any] | None, function_key: str) -> str:
    """Who is calling, for per-caller limits: the token's object id, else a digest of the function key."""
    if claims:
        return "user-" + hashlib.sha256(str(claims.get("oid") or claims.get("sub")).encode()).hexdigest()[:24]
    return "key-" + hashlib.sha256(function_key.encode()).hexdigest()[:24]
