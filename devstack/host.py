"""A local stand-in for the Azure Functions host: runs a Python v2 `FunctionApp` like `func start`.

Functions are discovered only through `app.get_functions()`. HTTP triggers are served under
`/<routePrefix>/<route>` with methods and auth levels (function key in `x-functions-key` or `?code=`);
queue triggers poll Azurite with host.json `extensions.queues` semantics (batchSize,
newBatchThreshold, maxPollingInterval, visibilityTimeout, maxDequeueCount → `<queue>-poison`, base64
messages, delete only after success); queue output bindings are sent after success; timer triggers use
6-field NCRONTAB (croniter) with `%SETTING%` placeholders, `run_on_startup` and `past_due`.
`--workers N` runs N extra processes that only consume queues (scale-out on one box).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hmac
import importlib
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("host")
PROCESSING_VISIBILITY = 30  # seconds a message stays hidden while running; renewed every third of that


# --- configuration ---------------------------------------------------------------------------------
def load_settings(path: Path) -> None:
    """`Values` of local.settings.json into the environment, never overriding what is already set."""
    if not path.exists():
        return
    values = json.loads(path.read_text()).get("Values", {})
    for name, value in values.items():
        os.environ.setdefault(name, str(value))


def resolve(value: str) -> str:
    """App-setting placeholders (`%NAME%`) as the host resolves them in binding properties."""

    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise KeyError(f"binding refers to app setting %{name}% which is not set")
        return os.environ[name]

    return re.sub(r"%([A-Za-z0-9_]+)%", lookup, value)


def parse_timespan(value: str | None, default: float) -> float:
    if not value:
        return default
    parts = [float(p) for p in str(value).split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    hours, minutes, seconds = parts[-3:]
    return hours * 3600 + minutes * 60 + seconds


@dataclass
class QueueOptions:
    batch_size: int = 16
    new_batch_threshold: int | None = None
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    base64: bool = True

    @classmethod
    def from_host_json(cls, host_json: Path) -> QueueOptions:
        data = json.loads(host_json.read_text()) if host_json.exists() else {}
        q = data.get("extensions", {}).get("queues", {})
        options = cls(
            batch_size=int(q.get("batchSize", 16)),
            max_polling_interval=parse_timespan(q.get("maxPollingInterval"), 60.0),
            visibility_timeout=parse_timespan(q.get("visibilityTimeout"), 0.0),
            max_dequeue_count=int(q.get("maxDequeueCount", 5)),
            base64=str(q.get("messageEncoding", "base64")).lower() != "none",
        )
        options.new_batch_threshold = int(q.get("newBatchThreshold", options.batch_size // 2))
        return options


def route_prefix(host_json: Path) -> str:
    data = json.loads(host_json.read_text()) if host_json.exists() else {}
    return str(data.get("extensions", {}).get("http", {}).get("routePrefix", "api")).strip("/")


# --- discovery -------------------------------------------------------------------------------------
@dataclass
class Function:
    name: str
    trigger: dict[str, Any]
    outputs: list[dict[str, Any]]
    user_function: Any
    pattern: re.Pattern | None = None
    specificity: tuple = field(default_factory=tuple)

    @property
    def kind(self) -> str:
        return self.trigger["type"]


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def discover(app_ref: str) -> list[Function]:
    module_name, _, attr = app_ref.partition(":")
    app = getattr(importlib.import_module(module_name), attr or "app")
    functions = []
    for fn in app.get_functions():  # may be called once per app object
        bindings = [{k: _plain(v) for k, v in b.get_dict_repr().items()} for b in fn.get_bindings()]
        for b in bindings:
            if isinstance(b.get("methods"), list):
                b["methods"] = [str(_plain(m)).upper() for m in b["methods"]]
        trigger = next(b for b in bindings if str(b["type"]).endswith("Trigger"))
        outputs = [b for b in bindings if _plain(b.get("direction")) in (1, "out") and b["type"] != "http"]
        functions.append(Function(fn.get_function_name(), trigger, outputs, fn.get_user_function()))
    return functions


def compile_route(template: str) -> tuple[re.Pattern, tuple]:
    """`a/{name}/b/{id:guid}/{rest?}` / `{*path}` → a regex with named groups, plus a sort key."""
    parts, literals, params = [], 0, 0
    for segment in template.strip("/").split("/"):
        match = re.fullmatch(r"\{(\*)?([A-Za-z_]\w*)(?::(\w+))?(\?)?\}", segment)
        if not match:
            parts.append("/" + re.escape(segment))
            literals += 1
            continue
        catch_all, name, constraint, optional = match.groups()
        params += 1
        body = {
            "guid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            "int": r"-?\d+",
        }.get(constraint or "", ".*" if catch_all else "[^/]+")
        piece = f"/(?P<{name}>{body})"
        parts.append(f"(?:{piece})?" if optional or catch_all else piece)
    return re.compile("^" + "".join(parts) + "/?$"), (-literals, params)


# --- HTTP ------------------------------------------------------------------------------------------
def build_http_app(functions: list[Function], prefix: str, key: str):
    import azure.functions as func
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    http = [f for f in functions if f.kind == "httpTrigger"]
    for f in http:
        f.pattern, f.specificity = compile_route(f.trigger.get("route") or f.name)
    http.sort(key=lambda f: f.specificity)

    async def dispatch(request: Request) -> Response:
        path = "/" + request.path_params.get("path", "")
        matched = [(f, m) for f in http if (m := f.pattern.match(path))]
        if not matched:
            return Response(status_code=404)
        allowed = [
            (f, m) for f, m in matched if request.method in (f.trigger.get("methods") or [request.method])
        ]
        if not allowed:  # RFC 9110 §15.5.6: a 405 lists the methods the resource supports
            methods = sorted({m for f, _ in matched for m in f.trigger.get("methods") or []})
            return Response(status_code=405, headers={"Allow": ", ".join(methods)})
        fn, match = allowed[0]
        if str(fn.trigger.get("authLevel", "function")).lower() != "anonymous":
            given = request.headers.get("x-functions-key") or request.query_params.get("code") or ""
            if not key or not hmac.compare_digest(given.encode(), key.encode()):
                return Response(status_code=401)
        body = await request.body()
        route_params = {k: v for k, v in match.groupdict().items() if v is not None}
        req = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=dict(request.headers),
            params=dict(request.query_params),
            route_params=route_params,
            body=body,
        )
        outs = {b["name"]: _Out() for b in fn.outputs}
        started = time.perf_counter()
        invocation = uuid.uuid4().hex[:12]
        try:
            result = await run_in_threadpool(fn.user_function, req, **outs)
        except Exception:
            log.exception("function=%s invocation=%s outcome=error", fn.name, invocation)
            return JSONResponse({"error": {"code": "InternalError", "message": "function failed"}}, 500)
        log.info(
            "function=%s invocation=%s status=%s ms=%.1f",
            fn.name,
            invocation,
            getattr(result, "status_code", "-"),
            (time.perf_counter() - started) * 1000,
        )
        await run_in_threadpool(send_outputs, fn, outs)
        if result is None:
            return Response(status_code=204)
        headers = {k: v for k, v in result.headers.items() if k.lower() != "content-length"}
        if result.mimetype and "content-type" not in {k.lower() for k in headers}:
            charset = (
                f"; charset={result.charset}"
                if result.charset and result.mimetype.startswith("text/")
                else ""
            )
            if result.mimetype == "application/json":
                charset = ""
            headers["Content-Type"] = result.mimetype + charset
        return Response(result.get_body(), status_code=result.status_code, headers=headers)

    routes = [
        Route(
            f"/{prefix}/{{path:path}}" if prefix else "/{path:path}",
            dispatch,
            methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        )
    ]
    # A path no route matches (e.g. one with a newline, which Starlette's path pattern refuses) gets
    # the host's bare 404, like every other unknown path.
    return Starlette(routes=routes, exception_handlers={404: lambda request, exc: Response(status_code=404)})


class _Out:
    """A `func.Out` for output bindings: the value is sent after the function succeeded."""

    def __init__(self):
        self.value = None

    def set(self, value) -> None:
        self.value = value

    def get(self):
        return self.value


def _queue_client(queue_name: str, connection: str | None, encode: bool):
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    conn = os.environ.get(connection or "AzureWebJobsStorage") or os.environ.get("AzureWebJobsStorage", "")  # noqa: SIM112 - the Functions setting name
    policies = {
        "message_encode_policy": TextBase64EncodePolicy(),
        "message_decode_policy": TextBase64DecodePolicy(),
    }
    client = QueueClient.from_connection_string(conn, resolve(queue_name), **(policies if encode else {}))
    try:
        client.create_queue()
    except Exception as exc:  # already exists
        if "QueueAlreadyExists" not in str(exc) and "already exists" not in str(exc).lower():
            raise
    return client


def send_outputs(fn: Function, outs: dict[str, _Out]) -> None:
    for binding in fn.outputs:
        value = outs[binding["name"]].get()
        if value is None or binding["type"] != "queue":
            continue
        client = _queue_client(binding["queueName"], binding.get("connection"), True)
        for item in value if isinstance(value, list) else [value]:
            client.send_message(item.decode() if isinstance(item, bytes) else str(item))


# --- queues ----------------------------------------------------------------------------------------
class QueueListener:
    """Polls one queue for one function with the host's queue semantics."""

    def __init__(self, fn: Function, options: QueueOptions, stop: threading.Event):
        self.fn, self.options, self.stop = fn, options, stop
        self.name = resolve(fn.trigger["queueName"])
        self.client = _queue_client(self.name, fn.trigger.get("connection"), False)
        self.pool = ThreadPoolExecutor(max_workers=options.batch_size, thread_name_prefix=f"q-{self.name}")
        self.in_flight = 0
        self.lock = threading.Lock()

    def decode(self, content: str) -> bytes:
        if not self.options.base64:
            return content.encode()
        try:
            return base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("message is not valid base64 (messageEncoding is base64)") from None

    def run(self) -> None:
        delay = 0.1
        while not self.stop.is_set():
            with self.lock:
                room = self.options.batch_size - self.in_flight
                fetch = self.in_flight <= (self.options.new_batch_threshold or 0) and room > 0
            messages = []
            if fetch:
                try:
                    messages = list(
                        self.client.receive_messages(
                            messages_per_page=min(32, room),
                            max_messages=min(32, room),
                            visibility_timeout=PROCESSING_VISIBILITY,
                        )
                    )
                except Exception as exc:  # storage down: back off and keep polling (Azurite may restart)
                    log.warning("queue=%s receive failed: %s", self.name, type(exc).__name__)
            if messages:
                delay = 0.1
                for msg in messages:
                    with self.lock:
                        self.in_flight += 1
                    self.pool.submit(self.process, msg)
                continue
            self.stop.wait(delay if fetch else 0.05)
            if fetch:
                delay = min(self.options.max_polling_interval, delay * 2)
        self.pool.shutdown(wait=True)

    def process(self, msg) -> None:
        from azure.functions.queue import QueueMessage

        receipt = {"value": msg.pop_receipt}
        done = threading.Event()

        def keep_hidden() -> None:  # the real host also keeps a running message invisible
            while not done.wait(PROCESSING_VISIBILITY / 3):
                try:
                    updated = self.client.update_message(
                        msg.id, receipt["value"], visibility_timeout=PROCESSING_VISIBILITY
                    )
                    receipt["value"] = updated.pop_receipt
                except Exception:
                    return

        renewer = threading.Thread(target=keep_hidden, daemon=True)
        renewer.start()
        invocation = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        try:
            body = self.decode(msg.content)
            message = QueueMessage(
                id=msg.id,
                body=body,
                dequeue_count=msg.dequeue_count,
                pop_receipt=msg.pop_receipt,
                insertion_time=msg.inserted_on,
                expiration_time=msg.expires_on,
                time_next_visible=msg.next_visible_on,
            )
            outs = {b["name"]: _Out() for b in self.fn.outputs}
            self.fn.user_function(message, **outs)
            send_outputs(self.fn, outs)
            failed = None
        except Exception as exc:
            failed = exc
            log.exception(
                "function=%s invocation=%s message=%s dequeue=%s outcome=error",
                self.fn.name,
                invocation,
                msg.id,
                msg.dequeue_count,
            )
        finally:
            done.set()
            renewer.join(timeout=5)
        try:
            if failed is None:
                self.client.delete_message(msg.id, receipt["value"])
                log.info(
                    "function=%s invocation=%s message=%s outcome=ok ms=%.1f",
                    self.fn.name,
                    invocation,
                    msg.id,
                    (time.perf_counter() - started) * 1000,
                )
            elif msg.dequeue_count >= self.options.max_dequeue_count:
                poison = _queue_client(f"{self.name}-poison", self.fn.trigger.get("connection"), False)
                poison.send_message(msg.content)
                self.client.delete_message(msg.id, receipt["value"])
                log.warning("function=%s message=%s moved to %s-poison", self.fn.name, msg.id, self.name)
            else:
                self.client.update_message(
                    msg.id, receipt["value"], visibility_timeout=int(self.options.visibility_timeout)
                )
        except Exception as exc:  # the receipt went stale: the message will simply reappear
            log.warning("queue=%s message=%s settle failed: %s", self.name, msg.id, type(exc).__name__)
        finally:
            with self.lock:
                self.in_flight -= 1


# --- timers ----------------------------------------------------------------------------------------
def ncrontab(expression: str, start: datetime):
    from croniter import croniter

    fields = expression.split()
    if len(fields) != 6:
        raise ValueError(f"NCRONTAB needs 6 fields (seconds first), got {expression!r}")
    return croniter(" ".join(fields[1:] + fields[:1]), start)


def run_timer(fn: Function, stop: threading.Event) -> None:
    from azure.functions.timer import TimerRequest

    schedule = resolve(fn.trigger["schedule"])
    cron = ncrontab(schedule, datetime.now(UTC))
    first = bool(fn.trigger.get("runOnStartup"))
    previous = None
    while not stop.is_set():
        if first:
            due, first = datetime.now(UTC), False
        else:
            due = cron.get_next(datetime)
            if stop.wait(max(0.0, (due - datetime.now(UTC)).total_seconds())):
                return
        interval = (due - previous).total_seconds() if previous else None
        lateness = (datetime.now(UTC) - due).total_seconds()
        past_due = bool(interval and lateness > interval)
        previous = due
        started, invocation = time.perf_counter(), uuid.uuid4().hex[:12]
        try:
            fn.user_function(TimerRequest(past_due=past_due))
            log.info(
                "function=%s invocation=%s outcome=ok past_due=%s ms=%.1f",
                fn.name,
                invocation,
                past_due,
                (time.perf_counter() - started) * 1000,
            )
        except Exception:
            log.exception("function=%s invocation=%s outcome=error", fn.name, invocation)
        if past_due:
            cron = ncrontab(schedule, datetime.now(UTC) - timedelta(seconds=0.001))


# --- processes -------------------------------------------------------------------------------------
def start_background(
    functions: list[Function], options: QueueOptions, queues: bool, timers: bool, stop: threading.Event
) -> list[threading.Thread]:
    threads = []
    for fn in functions:
        if queues and fn.kind == "queueTrigger":
            listener = QueueListener(fn, options, stop)
            threads.append(threading.Thread(target=listener.run, name=f"queue-{fn.name}", daemon=True))
        if timers and fn.kind == "timerTrigger":
            threads.append(
                threading.Thread(target=run_timer, args=(fn, stop), name=f"timer-{fn.name}", daemon=True)
            )
    for t in threads:
        t.start()
    return threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local Azure Functions host for function_app.py")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--app", default="function_app:app")
    parser.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    parser.add_argument(
        "--host-json", type=Path, default=None, help="default: host.json beside the app module"
    )
    parser.add_argument("--workers", type=int, default=0, help="extra processes that only consume queues")
    parser.add_argument("--function-key", default=None, help="default: $FUNCTIONS_KEY")
    parser.add_argument("--queues-only", action="store_true", help="(internal) a worker process")
    parser.add_argument("--no-timers", action="store_true")
    parser.add_argument("--no-http", action="store_true", help="serve no HTTP (timers and queues only)")
    parser.add_argument("--worker-pids", type=Path, default=None, help="write the worker pids here (JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    for noisy in ("azure", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    load_settings(args.settings)
    sys.path.insert(0, os.getcwd())
    functions = discover(args.app)
    module_dir = Path(sys.modules[args.app.partition(":")[0]].__file__ or ".").resolve().parent
    host_json = args.host_json or module_dir / "host.json"
    options = QueueOptions.from_host_json(host_json)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.queues_only:
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        threads = start_background(functions, options, queues=True, timers=False, stop=stop)
        log.info("worker %d consuming %d queue function(s)", os.getpid(), len(threads))
        while not stop.wait(0.5):
            pass
        for t in threads:
            t.join(timeout=30)
        return 0
    workers = []
    for _ in range(args.workers):
        # DEVSTACK_WORKER_WRAPPER: interpreter options before the module, to profile the workers
        # (`-m memray run --aggregate -o FILE`).
        command = [
            sys.executable,
            *shlex.split(os.environ.get("DEVSTACK_WORKER_WRAPPER", "")),
            "-m",
            "devstack.host",
            "--queues-only",
            "--app",
            args.app,
            "--settings",
            str(args.settings),
            "--host-json",
            str(host_json),
        ]
        workers.append(subprocess.Popen(command, env=os.environ.copy()))
    if args.worker_pids:
        args.worker_pids.write_text(json.dumps([w.pid for w in workers]))
    start_background(functions, options, queues=args.workers == 0, timers=not args.no_timers, stop=stop)
    key = args.function_key or os.environ.get("FUNCTIONS_KEY", "")
    app = build_http_app(functions, route_prefix(host_json), key)
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    log.info(
        "host on %s with %d function(s), %d worker process(es)",
        "no HTTP" if args.no_http else f"http://127.0.0.1:{args.port}",
        len(functions),
        args.workers,
    )
    try:
        if args.no_http:  # only the worker processes (and timers here) run
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            while not stop.wait(0.5):
                pass
        else:
            asyncio.run(server.serve())
    finally:
        stop.set()
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
