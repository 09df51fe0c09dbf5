"""OAuth2 client credentials through msal: one ConfidentialClientApplication per process and client.

msal caches tokens and serves them until shortly before expiry. Locally the authority is devstack's
HTTPS token authority whose CA is trusted through ENTRA_CA_BUNDLE — only for the token requests (an
injected HTTP client), never process-wide.
"""

from __future__ import annotations

import hashlib
import ssl
import threading
from pathlib import Path
from typing import Any

import httpx
import msal

from shared.connectors.errors import Unauthorized
from shared.settings import Settings

ENTRA_HOSTS = ("login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn")


class _Response:
    """What msal needs of an HTTP response."""

    def __init__(self, response: httpx.Response):
        self.status_code = response.status_code
        self.text = response.text
        self.headers = response.headers

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise RuntimeError(f"token authority answered HTTP {self.status_code}")


class _HttpClient:
    """An msal http_client over httpx that trusts exactly the CA bundle when one is set (and ignores
    proxy env vars)."""

    def __init__(self, ca_bundle: str, timeout: float, transport: httpx.BaseTransport | None = None):
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self._client = httpx.Client(verify=verify, trust_env=False, timeout=timeout, transport=transport)

    def get(self, url: str, params=None, headers=None, **_: Any) -> _Response:
        return _Response(self._client.get(url, params=params, headers=headers))

    def post(self, url: str, params=None, data=None, headers=None, **_: Any) -> _Response:
        return _Response(self._client.post(url, params=params, data=data, headers=headers))

    def close(self) -> None:
        self._client.close()


def _credential(settings: Settings) -> Any:
    if settings.client_certificate_path:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        pem = Path(settings.client_certificate_path).read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        thumbprint = hashlib.sha1(cert.public_bytes(Encoding.DER)).hexdigest()  # noqa: S324 - x5t is SHA-1
        return {"private_key": pem.decode(), "thumbprint": thumbprint, "public_certificate": pem.decode()}
    if not settings.client_secret:
        raise Unauthorized("entra", None, None, "set ENTRA_CLIENT_SECRET or ENTRA_CLIENT_CERTIFICATE_PATH")
    return settings.client_secret


class TokenProvider:
    """Bearer tokens per scope; ``transport`` (tests) carries the token requests instead of the network."""

    _apps: dict[tuple[Any, ...], msal.ConfidentialClientApplication] = {}
    _lock = threading.Lock()

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None):
        self.settings = settings
        self.transport = transport
        self.authority = f"{settings.authority_host}/{settings.tenant_id}"
        self.acquired = 0  # tokens fetched from the authority (not from the cache): tests and stats read it

    def _app(self) -> msal.ConfidentialClientApplication:
        # One app (and token cache) per authority, client and transport: a test's transport never
        # serves another provider's tokens.
        key = (self.authority, self.settings.client_id, self.transport)
        with self._lock:
            app = self._apps.get(key)
            if app is None:
                options: dict[str, Any] = {}
                if self.settings.ca_bundle or self.transport is not None:
                    options["http_client"] = _HttpClient(
                        self.settings.ca_bundle, self.settings.http_timeout_seconds, self.transport
                    )
                host = self.settings.authority_host.split("://", 1)[-1].split("/", 1)[0]
                app = msal.ConfidentialClientApplication(
                    self.settings.client_id,
                    client_credential=_credential(self.settings),
                    authority=self.authority,
                    instance_discovery=host in ENTRA_HOSTS,
                    **options,
                )
                self._apps[key] = app
            return app

    def token(self, scope: str, force_refresh: bool = False) -> str:
        """A bearer token for ``scope`` (cached until near expiry unless ``force_refresh``)."""
        app = self._app()
        if force_refresh:
            # msal's acquire_token_for_client refuses force_refresh (ValueError): drop the client's
            # cached tokens instead, so the next acquisition goes to the authority.
            app.remove_tokens_for_client()
        result = app.acquire_token_for_client(scopes=[scope])
        if "access_token" not in result:
            code = result.get("error")
            description = (result.get("error_description") or "").splitlines()[0][:300]
            raise Unauthorized("entra", None, code, description or "no token")
        if result.get("token_source") != "cache":
            self.acquired += 1
        return result["access_token"]
