"""The HTTP layer both connectors share: pooled httpx client, bearer tokens, retries, counters, a cap.

Retry policy: 429 and 503 wait for ``Retry-After`` (seconds or an HTTP date); other 5xx and
connection/read/protocol errors back off exponentially with full jitter; both bounded by
HTTP_MAX_ATTEMPTS and HTTP_MAX_RETRY_SECONDS, after which a typed error is raised. Every request is
counted by method and kind (read/write/bulk/batch) — the benchmark reads these counts.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections import Counter
from typing import Any

import httpx

from shared import usage
from shared.connectors.auth import TokenProvider
from shared.connectors.errors import ConnectorError, Throttled, Transient, Unauthorized, parse_error
from shared.settings import Settings

log = logging.getLogger("connectors")
RETRY_STATUSES = {429, 500, 502, 503, 504}
NETWORK_ERRORS = (httpx.TransportError,)


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class ServiceClient:
    """One service (BC or Dataverse): base URL, scope, concurrency cap, retry policy, counters."""

    def __init__(
        self,
        service: str,
        settings: Settings,
        scope: str,
        max_concurrency: int,
        tokens: TokenProvider | None = None,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        """``transport`` replaces httpx's network transport (tests pass an ``httpx.MockTransport``)."""
        self.service = service
        self.settings = settings
        self.scope = scope
        self.tokens = tokens or TokenProvider(settings)
        limits = httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency)
        self.http = httpx.Client(
            timeout=settings.http_timeout_seconds,
            limits=limits,
            headers=headers or {},
            trust_env=False,
            transport=transport,
        )
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._lock = threading.Lock()
        self._counts: Counter = Counter()
        self.sleep = time.sleep  # tests may replace it to count waits

    # --- counters -------------------------------------------------------------------------------
    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def stats(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self._counts)
        counts["requests"] = sum(v for k, v in counts.items() if k.startswith("request:"))
        return counts

    def reset_stats(self) -> None:
        with self._lock:
            self._counts.clear()

    # --- requests -------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        kind: str,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> httpx.Response:
        """Send with retries; returns the response for an ``ok`` status, raises a typed error otherwise."""
        started = time.monotonic()
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            self.count(f"request:{method}:{kind}")
            usage.add(f"{self.service}_requests")
            try:
                token = self.tokens.token(self.scope)
                request_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
                with self._slots:
                    response = self.http.request(
                        method, url, json=json, content=content, headers=request_headers, params=params
                    )
                # httpx links a response and its stream both ways: the body (megabytes for a page) would
                # wait for the cyclic GC, which seldom runs in a process holding large indexes. The body
                # is read by now, so break the cycle.
                response.stream = httpx.ByteStream(response.content)
            except NETWORK_ERRORS as exc:
                wait = self._backoff(attempt)
                if not self._may_retry(attempt, started, wait):
                    raise Transient(
                        self.service, None, type(exc).__name__, str(exc) or type(exc).__name__
                    ) from exc
                log.warning("%s %s %s: %s, retry %d in %.1fs", self.service, method, _path(url),
                            type(exc).__name__, attempt, wait)  # fmt: skip
                self.count("retries")
                self.sleep(wait)
                continue
            if response.status_code in ok:
                return response
            if response.status_code == 401 and not refreshed:
                refreshed = True  # the token may have expired or been revoked: fetch a new one once
                self.count("token_refresh")
                self.tokens.token(self.scope, force_refresh=True)
                continue
            if response.status_code in RETRY_STATUSES:
                hinted = retry_after_seconds(response.headers.get("Retry-After"))
                wait = hinted if hinted is not None else self._backoff(attempt)
                if self._may_retry(attempt, started, wait):
                    if response.status_code == 429:
                        self.count("throttled")
                        self.count("throttled_wait_ms", int(wait * 1000))
                    log.warning("%s %s %s: HTTP %d, retry %d in %.1fs", self.service, method, _path(url),
                                response.status_code, attempt, wait)  # fmt: skip
                    self.count("retries")
                    self.sleep(wait)
                    continue
            raise self.error(response)

    def error(self, response: httpx.Response) -> ConnectorError:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        err = parse_error(self.service, response.status_code, body)
        if isinstance(err, Unauthorized | Throttled | Transient):
            log.warning("%s: %s %s", self.service, response.status_code, err.code)
        return err

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(30.0, 0.25 * 2 ** (attempt - 1)))

    def _may_retry(self, attempt: int, started: float, wait: float) -> bool:
        if attempt >= self.settings.http_max_attempts:
            return False
        return time.monotonic() - started + wait <= self.settings.http_max_retry_seconds

    def close(self) -> None:
        self.http.close()


class Connector:
    """What both service clients expose of their HTTP layer: request counters and the pool."""

    http: ServiceClient

    def stats(self) -> dict[str, int]:
        return self.http.stats()

    def reset_stats(self) -> None:
        self.http.reset_stats()

    def close(self) -> None:
        self.http.close()


def _path(url: str) -> str:
    """The URL without its query (queries may carry filter values; logs keep method and path only)."""
    return url.split("?", 1)[0]
