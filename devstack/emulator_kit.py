"""What both emulators share: a SQLite record store with OData querying, bearer-token validation,
fault injection (latency, errors, connection resets, throttling, concurrency limit), per-user service
limits, an advanceable clock, request stats and the `/_admin` API
(`reset|seed|records|faults|stats|clock|health`).

Filters are parsed by the engine's own parser (`shared.odata_filter`) and compiled to SQL with bound
parameters; keyset paging on the key keeps pages stable while records change.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sqlite3
import ssl
import threading
import time
from collections import Counter, deque
from datetime import UTC, date, datetime
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.odata_filter import Call, Compare, FilterError, Literal, Logical, Not, Prop, parse


class ServiceError(Exception):
    """An error answered in the service's own shape: status, code, message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ODataError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
        self.message = message


def stamp(moment: datetime | None = None) -> str:
    """Fixed-width UTC timestamps (microseconds, Z) so string order is time order."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Clock:
    """Strictly increasing timestamps: two writes never share a modified time. `advance` moves the
    emulator's time forward (tests expire tokens without waiting)."""

    def __init__(self):
        self._last = ""
        self._lock = threading.Lock()
        self.offset = 0.0

    def moment(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self.offset, UTC)

    def epoch(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.offset += max(0.0, float(seconds))

    def now(self) -> str:
        with self._lock:
            value = stamp(self.moment())
            if value <= self._last:
                moment = datetime.strptime(self._last, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
                value = stamp(datetime.fromtimestamp(moment.timestamp() + 1e-6, UTC))
            self._last = value
            return value


# --- filters -> SQL --------------------------------------------------------------------------------
def _sql(node, columns: dict[str, str], params: list) -> str:
    if isinstance(node, Logical):
        return f"({_sql(node.left, columns, params)} {node.op.upper()} {_sql(node.right, columns, params)})"
    if isinstance(node, Not):
        return f"(NOT {_sql(node.operand, columns, params)})"
    if isinstance(node, Compare):
        left, right = _sql(node.left, columns, params), _sql(node.right, columns, params)
        op = {"eq": "IS", "ne": "IS NOT", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}[node.op]
        return f"({left} {op} {right})"
    if isinstance(node, Call):
        args = [_sql(a, columns, params) for a in node.args]
        if node.name == "tolower":
            return f"lower({args[0]})"
        if node.name == "toupper":
            return f"upper({args[0]})"
        if node.name == "contains":
            return f"(instr({args[0]}, {args[1]}) > 0)"
        # The needle appears twice in the SQL: compile it twice so each placeholder gets its parameter.
        again = _sql(node.args[1], columns, params)
        if node.name == "startswith":
            return f"(substr({args[0]}, 1, length({args[1]})) = {again})"
        return f"(substr({args[0]}, -length({args[1]})) = {again})"
    if isinstance(node, Prop):
        if node.name not in columns:
            raise ODataError(f"Could not find a property named '{node.name}'.")
        return columns[node.name]
    if isinstance(node, Literal):
        value = node.value
        if isinstance(value, datetime):
            value = stamp(value)
        elif isinstance(value, date):  # Edm.Date columns hold "YYYY-MM-DD": text order is date order
            value = value.isoformat()
        elif isinstance(value, bool):
            value = 1 if value else 0
        params.append(value)
        return "?"
    raise ODataError("unsupported filter expression")


def compile_filter(text: str | None, columns: dict[str, str]) -> tuple[str, list]:
    try:
        node = parse(text or "")
    except FilterError as exc:
        raise ODataError(f"Syntax error in $filter: {exc}") from None
    if node is None:
        return "1=1", []
    params: list = []
    return _sql(node, columns, params), params


# --- the record store ------------------------------------------------------------------------------
class Store:
    """Records per entity in SQLite: key, JSON data, version (for change tracking), partition (company)."""

    def __init__(self, entities: list[str], path: str = ":memory:"):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.lock = threading.RLock()
        self.entities = entities
        self.version = 0
        self.reset()

    def reset(self) -> None:
        with self.lock:
            for e in self.entities:
                self.db.execute(f'DROP TABLE IF EXISTS "{e}"')
                self.db.execute(f'DROP TABLE IF EXISTS "{e}__deleted"')
                self.db.execute(
                    f'CREATE TABLE "{e}" (key TEXT PRIMARY KEY, part TEXT, version INTEGER, data TEXT)'
                )
                self.db.execute(f'CREATE INDEX "{e}_version" ON "{e}"(version)')
                self.db.execute(f'CREATE TABLE "{e}__deleted" (key TEXT, part TEXT, version INTEGER)')
            self.version = 0

    def next_version(self) -> int:
        self.version += 1
        return self.version

    def get(self, entity: str, key: str, part: str | None = None) -> dict[str, Any] | None:
        """The record with this key; with `part`, only if it lives in that partition (company)."""
        if part is None:
            row = self.db.execute(f'SELECT data FROM "{entity}" WHERE key = ?', (key,)).fetchone()
        else:
            row = self.db.execute(
                f'SELECT data FROM "{entity}" WHERE key = ? AND part = ?', (key, part)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def put(
        self, entity: str, key: str, data: dict[str, Any], part: str = "", version: int | None = None
    ) -> None:
        version = version if version is not None else self.next_version()
        self.db.execute(
            f'INSERT OR REPLACE INTO "{entity}" (key, part, version, data) VALUES (?, ?, ?, ?)',
            (key, part, version, json.dumps(data)),
        )

    def delete(self, entity: str, key: str, part: str = "") -> bool:
        gone = self.db.execute(f'DELETE FROM "{entity}" WHERE key = ?', (key,)).rowcount > 0
        if gone:
            self.db.execute(
                f'INSERT INTO "{entity}__deleted" VALUES (?, ?, ?)', (key, part, self.next_version())
            )
        return gone

    def query(
        self,
        entity: str,
        where: str,
        params: list,
        *,
        part: str | None = None,
        after: str | None = None,
        order: str | None = None,
        offset: int = 0,
        limit: int = 5000,
        min_version: int | None = None,
        max_version: int | None = None,
    ) -> list[dict[str, Any]]:
        clauses, args = [f"({where})"], list(params)
        if part is not None:
            clauses.append("part = ?")
            args.append(part)
        if after is not None:
            clauses.append("key > ?")
            args.append(after)
        if min_version is not None:
            clauses.append("version > ?")
            args.append(min_version)
        if max_version is not None:
            clauses.append("version <= ?")
            args.append(max_version)
        where_sql = " AND ".join(clauses)
        sql = f'SELECT data FROM "{entity}" WHERE {where_sql} ORDER BY {order or "key"} LIMIT ? OFFSET ?'
        try:
            rows = self.db.execute(sql, [*args, limit, offset]).fetchall()
        except sqlite3.Error as exc:
            raise ODataError(f"The query could not be evaluated: {exc}") from None
        return [json.loads(r[0]) for r in rows]

    def count(
        self, entity: str, where: str = "1=1", params: list | None = None, part: str | None = None
    ) -> int:
        sql, args = f'SELECT count(*) FROM "{entity}" WHERE ({where})', list(params or [])
        if part is not None:
            sql += " AND part = ?"
            args.append(part)
        return self.db.execute(sql, args).fetchone()[0]

    def deleted_since(self, entity: str, version: int, upto: int, part: str | None = None) -> list[str]:
        sql = f'SELECT key FROM "{entity}__deleted" WHERE version > ? AND version <= ?'
        args: list = [version, upto]
        if part is not None:
            sql += " AND part = ?"
            args.append(part)
        return [r[0] for r in self.db.execute(sql + " ORDER BY version", args)]


def json_columns(fields: list[str], key: str) -> dict[str, str]:
    """OData property -> SQL expression over the JSON document (the key has its own column)."""
    columns = {f: f"json_extract(data, '$.\"{f}\"')" for f in fields}
    columns[key] = "key"
    return columns


def order_clause(text: str | None, columns: dict[str, str]) -> str | None:
    if not text:
        return None
    parts = []
    for item in text.split(","):
        words = item.split()
        if not words or len(words) > 2 or words[0] not in columns:
            raise ODataError(f"Invalid $orderby: {item.strip()!r}")
        direction = (words[1] if len(words) == 2 else "asc").lower()
        if direction not in ("asc", "desc"):
            raise ODataError(f"Invalid $orderby direction {direction!r}")
        parts.append(f"{columns[words[0]]} {direction.upper()}")
    return ", ".join(parts + ["key"])


# --- faults, throttling, stats ---------------------------------------------------------------------
class Faults:
    """Injected faults (set through `/_admin/faults`). `max_concurrency` is the number of requests per
    user the service processes at once; what happens to the next one is the emulator's `Limits`."""

    def __init__(self, default_concurrency: int):
        self.default_concurrency = default_concurrency
        self.clear()
        self.lock = threading.Lock()
        self.stats: Counter = Counter()

    def clear(self) -> None:
        self.latency_ms = 0.0
        self.error_rate = 0.0
        self.status = 503
        self.reset_rate = 0.0
        self.throttle: dict[str, float] | None = None
        self.max_concurrency = getattr(self, "default_concurrency", 0)
        self.queue_timeout_s = 0.0  # 0: the service's own (BC: 8 minutes)
        self.window = deque()

    def configure(self, body: dict[str, Any]) -> None:
        if not body:
            self.clear()
            return
        self.latency_ms = float(body.get("latency_ms", self.latency_ms))
        self.error_rate = float(body.get("error_rate", self.error_rate))
        self.status = int(body.get("status", self.status))
        self.reset_rate = float(body.get("reset_rate", self.reset_rate))
        if "throttle" in body:
            self.throttle = body["throttle"] or None
            self.window = deque()
        self.max_concurrency = int(body.get("max_concurrency", self.max_concurrency))
        self.queue_timeout_s = float(body.get("queue_timeout_s", self.queue_timeout_s))

    def throttled(self) -> float | None:
        """Seconds to wait when the injected request-rate limit is exceeded (None when allowed)."""
        if not self.throttle:
            return None
        now, window = time.monotonic(), float(self.throttle.get("window_s", 1))
        while self.window and self.window[0] <= now - window:
            self.window.popleft()
        limit = int(self.throttle.get("requests", 1))
        if limit <= 0:
            return window  # everything is refused
        if len(self.window) >= limit:
            return max(0.0, self.window[0] + window - now)
        self.window.append(now)
        return None


class Limits:
    """A service's documented per-user limits: `rate` requests per `window_s` seconds, and what happens
    past the concurrency limit: queued (up to `queue` waiting, then 429; 503 after `queue_timeout_s`)
    or, with `queue=None`, 429."""

    def __init__(self, rate: int, window_s: float, queue: int | None, queue_timeout_s: float = 480):
        self.rate, self.window_s, self.queue, self.queue_timeout_s = rate, window_s, queue, queue_timeout_s
        self.lock = threading.Lock()
        self.in_flight: Counter = Counter()
        self.waiting: Counter = Counter()
        self.freed = asyncio.Event()
        self.reset()

    def reset(self) -> None:
        """Forget the request windows (requests in flight or queued keep their places)."""
        with self.lock:
            self.windows: dict[str, deque[float]] = {}

    def rate_exceeded(self, user: str) -> float | None:
        now = time.monotonic()
        with self.lock:
            window = self.windows.setdefault(user, deque())
            while window and window[0] <= now - self.window_s:
                window.popleft()
            if len(window) >= self.rate:
                return max(1.0, window[0] + self.window_s - now)
            window.append(now)
        return None


class Emulator:
    """Base: auth, faults, stats and the admin API around an emulator's own routes."""

    name = "emulator"
    error_codes = {
        "unauthorized": "Unauthorized",
        "throttled": "TooManyRequests",
        "server": "InternalServerError",
    }

    def __init__(self, authority: str, ca: str, audience: str | list[str], concurrency: int, limits: Limits):
        self.authority = authority.rstrip("/")
        self.audience = audience
        self.faults = Faults(concurrency)
        self.limits = limits
        self.clock = Clock()
        context = ssl.create_default_context(cafile=ca)
        self.jwks = jwt.PyJWKClient(
            f"{self.authority}/discovery/v2.0/keys", ssl_context=context, lifespan=3600
        )
        self.lock = threading.RLock()

    # subclasses implement these
    def routes(self) -> list[Route]:
        raise NotImplementedError

    def kind(self, request: Request) -> str:
        return "write" if request.method in ("POST", "PATCH", "PUT", "DELETE") else "read"

    def error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": code, "message": message}}, status_code=status, headers=headers
        )

    def reset(self) -> None:
        raise NotImplementedError

    def seed(self, data: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
        """Write admin rows in one transaction: much faster, and all or nothing."""
        self.store.db.execute("SAVEPOINT seed")
        try:
            counts = self._seed(data)
        except BaseException:
            self.store.db.execute("ROLLBACK TO seed")
            self.store.db.execute("RELEASE seed")
            raise
        self.store.db.execute("RELEASE seed")
        return counts

    def _seed(self, data: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
        raise NotImplementedError

    def records(self, entity: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    # auth
    def claims(self, request: Request) -> dict[str, Any] | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
            return jwt.decode(
                token, key.key, algorithms=["RS256"], audience=self.audience, issuer=f"{self.authority}/v2.0"
            )
        except jwt.PyJWTError:
            return None

    # the ASGI wrapper
    def app(self) -> Starlette:
        admin = [
            Route("/_admin/reset", self._admin_reset, methods=["POST"]),
            Route("/_admin/seed", self._admin_seed, methods=["POST"]),
            Route("/_admin/records/{entity}", self._admin_records),
            Route("/_admin/stats", self._admin_stats),
            Route("/_admin/stats/reset", self._admin_stats_reset, methods=["POST"]),
            Route("/_admin/faults", self._admin_faults, methods=["POST", "GET"]),
            Route("/_admin/clock", self._admin_clock, methods=["POST", "GET"]),
            Route("/_admin/health", lambda r: JSONResponse({"status": "ok", "emulator": self.name})),
        ]
        inner = Starlette(routes=admin + self.routes())
        emulator = self

        async def asgi(scope, receive, send):
            if scope["type"] != "http" or scope["path"].startswith("/_admin"):
                await inner(scope, receive, send)
                return
            await emulator._guarded(scope, receive, send, inner)

        return asgi  # type: ignore[return-value]

    @staticmethod
    def user_of(claims: dict[str, Any]) -> str:
        return str(claims.get("oid") or claims.get("appid") or claims.get("azp") or claims.get("sub") or "")

    def too_many(self, message: str, retry: float, kind: str = "throttled") -> JSONResponse:
        with self.faults.lock:
            self.faults.stats["throttled"] += 1
        code = self.error_codes.get(kind, self.error_codes["throttled"])
        return self.error(429, code, message, {"Retry-After": str(max(1, math.ceil(retry)))})

    async def _guarded(self, scope, receive, send, inner) -> None:
        request = Request(scope, receive)
        f, limits = self.faults, self.limits
        with f.lock:
            f.stats[f"{scope['method']} {self.kind(request)}"] += 1
            f.stats["total"] += 1
        with f.lock:
            wait = f.throttled()
        if wait is not None:
            await self.too_many("Rate limit is exceeded.", wait)(scope, receive, send)
            return
        claims = self.claims(request)
        if claims is None:
            response = self.error(
                401,
                self.error_codes["unauthorized"],
                "Bearer token missing or invalid.",
                {"WWW-Authenticate": f'Bearer authorization_uri="{self.authority}"'},
            )
            await response(scope, receive, send)
            return
        user = self.user_of(claims)
        wait = limits.rate_exceeded(user)
        if wait is not None:
            message = (
                f"Number of requests exceeded the limit of {limits.rate} over {limits.window_s:g} seconds."
            )
            await self.too_many(message, wait)(scope, receive, send)
            return
        # Past the concurrency limit a request either waits its turn (BC) or is refused (Dataverse).
        deadline = time.monotonic() + (f.queue_timeout_s or limits.queue_timeout_s)
        while f.max_concurrency and limits.in_flight[user] >= f.max_concurrency:
            if limits.queue is None or limits.waiting[user] >= limits.queue:
                message = f"Number of concurrent requests exceeded the limit of {f.max_concurrency}."
                await self.too_many(message, 1, "concurrency")(scope, receive, send)
                return
            limits.waiting[user] += 1
            with f.lock:
                f.stats["queued"] += 1
            try:
                limits.freed.clear()
                await asyncio.wait_for(limits.freed.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                response = self.error(
                    503, self.error_codes["server"], "The request waited too long in the queue."
                )
                await response(scope, receive, send)
                return
            finally:
                limits.waiting[user] -= 1
        limits.in_flight[user] += 1
        try:
            if f.latency_ms:  # a slow service: the request holds its slot meanwhile
                await asyncio.sleep(f.latency_ms / 1000)
            if f.reset_rate and random.random() < f.reset_rate:
                with f.lock:
                    f.stats["resets"] += 1
                # Promise a body and break off: the client sees the connection die mid-response.
                await send(
                    {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]}
                )
                await send({"type": "http.response.body", "body": b"{", "more_body": True})
                raise ConnectionAbortedError("injected connection reset")
            if f.error_rate and random.random() < f.error_rate:
                with f.lock:
                    f.stats["errors"] += 1
                response = self.error(f.status, self.error_codes["server"], "Injected failure.")
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["claims"] = claims
            await inner(scope, receive, send)
        finally:
            limits.in_flight[user] -= 1
            limits.freed.set()

    # admin handlers
    async def _admin_reset(self, request: Request) -> Response:
        with self.lock:
            self.clock.offset = 0.0
            self.reset()
            self.faults.clear()
            self.faults.stats.clear()
        return JSONResponse({"reset": True})

    async def _admin_clock(self, request: Request) -> Response:
        """GET: the emulator's time; POST {"advance_s": N}: move it forward (never back)."""
        if request.method == "POST":
            body = await request.json()
            try:
                self.clock.advance(
                    float(body.get("advance_s", 0)) + 86400 * float(body.get("advance_days", 0))
                )
            except (TypeError, ValueError):
                return self.error(400, "BadRequest", "advance_s / advance_days must be numbers")
        return JSONResponse({"now": stamp(self.clock.moment()), "offset_s": self.clock.offset})

    async def _admin_seed(self, request: Request) -> Response:
        body = await request.json()
        with self.lock:
            try:
                counts = self.seed(body)
            except KeyError as exc:
                return self.error(400, "BadRequest", f"unknown entity {exc}")
        return JSONResponse({"seeded": counts})

    async def _admin_records(self, request: Request) -> Response:
        with self.lock:
            try:
                return JSONResponse({"value": self.records(request.path_params["entity"])})
            except KeyError:
                return self.error(404, "NotFound", "unknown entity")

    async def _admin_stats(self, request: Request) -> Response:
        with self.faults.lock:
            return JSONResponse(dict(self.faults.stats))

    async def _admin_stats_reset(self, request: Request) -> Response:
        with self.faults.lock:
            self.faults.stats.clear()
        return JSONResponse({"reset": True})

    async def _admin_faults(self, request: Request) -> Response:
        if request.method == "POST":
            self.faults.configure(await request.json())
        f = self.faults
        return JSONResponse(
            {
                "latency_ms": f.latency_ms,
                "error_rate": f.error_rate,
                "status": f.status,
                "reset_rate": f.reset_rate,
                "throttle": f.throttle,
                "max_concurrency": f.max_concurrency,
                "queue_timeout_s": f.queue_timeout_s,
            }
        )


def serve(app, port: int, https: tuple[int, str, str] | None = None) -> None:
    """Serve on `port` (plain HTTP) and, with `https=(port, certfile, keyfile)`, on a TLS port too."""
    import uvicorn

    configs = [uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_keep_alive=30)]
    if https:
        tls_port, cert, key = https
        configs.append(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=tls_port,
                log_level="warning",
                timeout_keep_alive=30,
                ssl_certfile=cert,
                ssl_keyfile=key,
            )
        )

    async def run() -> None:
        await asyncio.gather(*(uvicorn.Server(c).serve() for c in configs))

    asyncio.run(run())
