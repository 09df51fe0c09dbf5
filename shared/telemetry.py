"""Telemetry: the one place that configures OpenTelemetry and names what the app emits.

Off unless a destination is set: ``APPLICATIONINSIGHTS_CONNECTION_STRING`` (Azure Monitor
OpenTelemetry distro, the package Microsoft documents for Python Functions:
https://learn.microsoft.com/azure/azure-monitor/app/opentelemetry-enable?tabs=python and
https://learn.microsoft.com/azure/azure-functions/opentelemetry-howto), else
``OTEL_EXPORTER_OTLP_ENDPOINT`` (an OTLP/HTTP collector) or ``TELEMETRY_CONSOLE=1`` (stderr) locally.
While off, the OpenTelemetry API is a no-op and every hook below costs next to nothing.

Traces: one per run — ``sync.run`` (the start) → ``sync.job`` (one per mapping) → ``sync.slice``
(one per queue message) → the httpx calls to BC and Dataverse. The run's and the job's trace
context travel in the optional ``trace`` field of the queue message; a message without it still
works (its slice starts a trace of its own). Run id, mapping, pass and slice are attributes of the
spans and of every log record written meanwhile.

A bad configuration (a malformed connection string, an unreachable collector) never stops a sync:
it is reported by one warning at start and the app runs on.

infra/ (alert rules, workbook) queries these names; tests/unit/test_infra.py checks them against
``EMITTED`` below, so rename here and there together.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.model.status import COUNTERS, RunStatus

log = logging.getLogger("telemetry")
log.setLevel(logging.INFO)  # the run-finished records the alerts query pass whatever the root level

# --- what the app emits (the names infra/ refers to) ------------------------------------------------
SCOPE = "bc_dataverse_sync"
SPAN_RUN = "sync.run"
SPAN_JOB = "sync.job"
SPAN_SLICE = "sync.slice"
SPAN_POISON = "sync.poison"
SPAN_TIMER = "sync.timer"
METRIC_RECORDS = "sync.records"  # counter: records per result, mapping and direction
METRIC_RUNS = "sync.runs"  # counter: finished runs per status and kind
METRIC_SLICE_DURATION = "sync.slice.duration"  # histogram, seconds
METRIC_THROTTLED = "sync.http.throttled"  # counter: 429 answers per service
METRIC_THROTTLE_WAIT = "sync.http.throttle_wait"  # counter: seconds waited on Retry-After per service
METRIC_RETRIES = "sync.http.retries"  # counter: retried requests (429, 5xx, network) per service
METRIC_SINCE_SUCCESS = "sync.mapping.since_last_success"  # gauge, seconds, per mapping
METRIC_POISON = "sync.poison_messages"  # counter
EVENT_RUN_FINISHED = "sync.run.finished"  # log record (attribute "event") with status and failed records
EVENT_POISON = "sync.poison"  # log record for a message moved to the poison queue
ATTR_RUN, ATTR_MAPPING, ATTR_PASS, ATTR_SLICE = "sync.run_id", "sync.mapping", "sync.pass", "sync.slice"
ATTR_STATUS, ATTR_KIND, ATTR_FAILED = "sync.status", "sync.kind", "sync.failed_records"
ATTR_DIRECTION, ATTR_RESULT, ATTR_SERVICE = "sync.direction", "sync.result", "sync.service"
EMITTED = frozenset(
    {SPAN_RUN, SPAN_JOB, SPAN_SLICE, SPAN_POISON, SPAN_TIMER, EVENT_RUN_FINISHED, EVENT_POISON}
    | {METRIC_RECORDS, METRIC_RUNS, METRIC_SLICE_DURATION, METRIC_THROTTLED, METRIC_THROTTLE_WAIT}
    | {METRIC_RETRIES, METRIC_SINCE_SUCCESS, METRIC_POISON}
    | {ATTR_RUN, ATTR_MAPPING, ATTR_PASS, ATTR_SLICE, ATTR_STATUS, ATTR_KIND, ATTR_FAILED}
    | {ATTR_DIRECTION, ATTR_RESULT, ATTR_SERVICE, "event"}
)
RESULTS = tuple(str(c) for c in COUNTERS)
FRESH_KINDS = ("modified", "full", "mapping")  # a successful run of these synced the mapping's changes
SYNCED = (
    RunStatus.SUCCEEDED,
    RunStatus.FINISHED_WITH_ERRORS,
)  # ran to the end (some records may have failed)

_tracer = trace.get_tracer(SCOPE)
_meter = metrics.get_meter(SCOPE)  # proxies: they forward to the providers once configure() set them
_records = _meter.create_counter(METRIC_RECORDS, unit="{record}", description="records per sync result")
_runs = _meter.create_counter(METRIC_RUNS, unit="{run}", description="finished runs per status")
_slice_seconds = _meter.create_histogram(METRIC_SLICE_DURATION, unit="s", description="one slice")
_throttled = _meter.create_counter(METRIC_THROTTLED, unit="{request}", description="HTTP 429 answers")
_throttle_wait = _meter.create_counter(METRIC_THROTTLE_WAIT, unit="s", description="Retry-After waits")
_retries = _meter.create_counter(METRIC_RETRIES, unit="{request}", description="retried requests")
_poison = _meter.create_counter(METRIC_POISON, unit="{message}", description="poison messages")
_propagator = TraceContextTextMapPropagator()


# --- the current run/job/slice: span parents, message trace context, log record attributes -----------
@dataclass(frozen=True)
class _Scope:
    run_id: str | None = None
    run_ctx: Any = None  # the run span's context (parent of job spans)
    mapping: str | None = None
    job_ctx: Any = None  # the job span's context (parent of slice spans)
    job_carrier: dict | None = None
    sync_pass: str | None = None
    seq: int | None = None

    def attributes(self) -> dict[str, Any]:
        pairs = ((ATTR_RUN, self.run_id), (ATTR_MAPPING, self.mapping), (ATTR_PASS, self.sync_pass))
        out: dict[str, Any] = {k: v for k, v in pairs if v}
        if self.seq is not None:
            out[ATTR_SLICE] = self.seq
        return out


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("sync_scope", default=None)


@contextmanager
def _scoped(scope: _Scope) -> Iterator[_Scope]:
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def _install_record_factory() -> None:
    """Every log record written inside a run/slice carries its run id, mapping, pass and slice."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_sync_scope", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        scope = _scope.get()
        if scope is not None:
            for key, value in scope.attributes().items():
                setattr(record, key, value)
        return record

    factory._sync_scope = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _carrier(ctx: Any) -> dict[str, str]:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=ctx)
    return carrier


def _extract(carrier: Any) -> Any:
    if not isinstance(carrier, dict) or not isinstance(carrier.get("traceparent"), str):
        return None
    ctx = _propagator.extract({"traceparent": carrier["traceparent"]})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def message_trace(run_id: str, mapping: str) -> dict[str, dict[str, str]] | None:
    """The ``trace`` field of a queue message for (run, mapping): the job's context, creating the
    job's span (a child of the run) when the message starts a job. None outside a run or slice."""
    scope = _scope.get()
    if scope is None or scope.run_id not in (None, run_id):
        return None
    if scope.mapping == mapping and scope.job_carrier:
        job = scope.job_carrier
    elif scope.run_ctx is not None:
        span = _tracer.start_span(
            SPAN_JOB, context=scope.run_ctx, attributes={ATTR_RUN: run_id, ATTR_MAPPING: mapping}
        )
        job = _carrier(trace.set_span_in_context(span))
        span.end()
    else:
        return None
    if not job:
        return None  # telemetry off: nothing to propagate
    out = {"job": job}
    run = _carrier(scope.run_ctx) if scope.run_ctx is not None else {}
    if run:
        out["run"] = run
    return out


# --- hooks the engine and the functions call -----------------------------------------------------------
def traced_run(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator of ``start_run``: the run's root span; job spans and messages are created under it."""

    @functools.wraps(fn)
    def wrapper(ctx: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        attributes = {
            ATTR_KIND: getattr(request, "kind", ""),
            "sync.trigger": getattr(request, "trigger", ""),
        }
        with _tracer.start_as_current_span(SPAN_RUN, attributes=attributes) as span:
            with _scoped(_Scope(run_ctx=otel_context.get_current())):
                run = fn(ctx, request, *args, **kwargs)
            span.set_attribute(ATTR_RUN, run.run_id)
            return run

    return wrapper


def traced_slice(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator of the orchestrator's one-message handler: the slice span, child of the job's span
    carried by the message; run id, mapping, pass and slice on the span and on log records."""

    @functools.wraps(fn)
    def wrapper(ctx: Any, body: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        carried = body.get("trace") if isinstance(body.get("trace"), dict) else {}
        job_ctx = _extract(carried.get("job"))
        scope = _Scope(
            run_id=body.get("run"),
            run_ctx=_extract(carried.get("run")),
            mapping=body.get("mapping"),
            job_ctx=job_ctx,
            job_carrier=carried.get("job") if job_ctx is not None else None,
            sync_pass=body.get("pass"),
            seq=body.get("seq"),
        )
        with _tracer.start_as_current_span(
            SPAN_SLICE, context=job_ctx, kind=SpanKind.CONSUMER, attributes=scope.attributes()
        ) as span:
            if scope.job_carrier is None:  # an old message, or a re-enqueue outside any trace
                scope = replace(scope, job_carrier=_carrier(otel_context.get_current()) or None)
            with _scoped(scope):
                result = fn(ctx, body, *args, **kwargs)
            outcome = result[0] if isinstance(result, tuple) else result
            span.set_attribute("sync.outcome", str(outcome))
            return result

    return wrapper


@contextmanager
def timer_span() -> Iterator[None]:
    """Around the timer function: the scheduled run's trace starts here."""
    with _tracer.start_as_current_span(SPAN_TIMER, kind=SpanKind.CONSUMER):
        yield


class _HttpDeltas:
    """The connectors count per process (shared/connectors/http.py); metrics want what changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[int, dict[str, int]] = {}

    def take(self, client: Any) -> dict[str, int]:
        stats = client.stats()
        with self._lock:
            before = self._seen.get(id(client), {})
            self._seen[id(client)] = stats
        # A counter lower than before was reset (the benchmark does): all of it is new.
        return {k: v - before.get(k, 0) if v >= before.get(k, 0) else v for k, v in stats.items()}


_http = _HttpDeltas()


def slice_finished(ctx: Any, run: Any, mapping: str, result: Any, seconds: float) -> None:
    """After a slice's counters were committed: records, duration, throttling per service."""
    try:
        direction = result.sync_pass
        base = {ATTR_MAPPING: mapping, ATTR_DIRECTION: direction, "sync.dry_run": bool(run.dry_run)}
        for outcome, n in dict(result.counts).items():
            if n:
                _records.add(n, {**base, ATTR_RESULT: outcome})
        _slice_seconds.record(seconds, {ATTR_MAPPING: mapping, ATTR_DIRECTION: direction})
        span = trace.get_current_span()
        span.set_attribute(ATTR_PASS, direction)
        span.set_attribute("sync.processed", int(result.processed))
        for service in ("bc", "dataverse"):
            client = ctx.__dict__.get(service)  # only a connector this process has created
            if client is None or not hasattr(client, "stats"):
                continue
            delta = _http.take(client)
            if delta.get("throttled"):
                _throttled.add(delta["throttled"], {ATTR_SERVICE: service})
            if delta.get("throttled_wait_ms"):
                _throttle_wait.add(delta["throttled_wait_ms"] / 1000, {ATTR_SERVICE: service})
            if delta.get("retries"):
                _retries.add(delta["retries"], {ATTR_SERVICE: service})
    except Exception:  # telemetry never fails a slice
        log.debug("slice telemetry failed", exc_info=True)


def run_finished(run: Any, jobs: list[Any]) -> None:
    """A run reached its end: a counter and one log record the alert rules query."""
    failed = sum(int(getattr(j, "errors", 0) or 0) for j in jobs)
    attributes = {ATTR_STATUS: run.status, ATTR_KIND: run.kind, "sync.dry_run": bool(run.dry_run)}
    _runs.add(1, attributes)
    with _scoped(replace(_scope.get() or _Scope(), run_id=run.run_id)):  # the record factory adds the id
        log.info(
            "run %s finished: %s, %d failed record(s)",
            run.run_id,
            run.status,
            failed,
            extra={"event": EVENT_RUN_FINISHED, **attributes, ATTR_FAILED: failed},
        )


def poison_message(body: dict[str, Any]) -> None:
    run_id, mapping = str(body.get("run") or ""), str(body.get("mapping") or "")
    _poison.add(1, {ATTR_MAPPING: mapping})
    with (
        _tracer.start_as_current_span(
            SPAN_POISON, kind=SpanKind.CONSUMER, attributes={ATTR_RUN: run_id, ATTR_MAPPING: mapping}
        ) as span,
        _scoped(_Scope(run_id=run_id, mapping=mapping, seq=body.get("seq"))),
    ):
        span.set_status(Status(StatusCode.ERROR, "moved to the poison queue"))
        log.error(
            "run %s mapping %s: a slice message was moved to the poison queue",
            run_id,
            mapping,
            extra={"event": EVENT_POISON},
        )


def freshness(runs: list[Any], now: datetime | None = None) -> dict[str, float]:
    """Seconds since each mapping's newest successful (not dry) modified/full sync, from runs."""
    now = now or datetime.now(UTC)
    ages: dict[str, float] = {}
    for run in runs:
        if run.status not in SYNCED or run.dry_run or run.kind not in FRESH_KINDS or not run.finished_at:
            continue
        finished = datetime.fromisoformat(str(run.finished_at).replace("Z", "+00:00"))
        if finished.tzinfo is None:
            finished = finished.replace(tzinfo=UTC)
        for name in run.mappings:
            ages[name] = min(ages.get(name, float("inf")), max(0.0, (now - finished).total_seconds()))
    return ages


def observe_freshness(context_factory: Callable[[], Any], recent_runs: int = 100) -> None:
    """Register the per-mapping gauge; it reads the newest runs when the metrics are collected."""

    def callback(options: Any) -> list[metrics.Observation]:
        try:
            runs, _ = context_factory().runs.list(limit=recent_runs)
            return [metrics.Observation(age, {ATTR_MAPPING: name}) for name, age in freshness(runs).items()]
        except Exception:  # storage unreachable: no observation this time
            log.debug("freshness gauge failed", exc_info=True)
            return []

    _meter.create_observable_gauge(
        METRIC_SINCE_SUCCESS,
        callbacks=[callback],
        unit="s",
        description="seconds since the last successful modified or full sync of the mapping",
    )


# --- configuration -------------------------------------------------------------------------------------
_configured: str | None = None
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def connection_string_problem(value: str) -> str | None:
    """Why an Application Insights connection string cannot be used, or None when it looks right
    (``InstrumentationKey=<guid>;IngestionEndpoint=https://...``, keys case-insensitive)."""
    parts = {}
    for piece in value.split(";"):
        if not piece.strip():
            continue
        key, sep, val = piece.partition("=")
        if not sep:
            return f"{piece.strip()[:40]!r} is not key=value"
        parts[key.strip().lower()] = val.strip()
    key = parts.get("instrumentationkey")
    if not key:
        return "it has no InstrumentationKey"
    if not _GUID.match(key):
        return "its InstrumentationKey is not a GUID"
    endpoint = parts.get("ingestionendpoint")
    if endpoint and urlsplit(endpoint).scheme not in ("http", "https"):
        return "its IngestionEndpoint is not an http(s) URL"
    return None


def _reachable(endpoint: str, timeout: float = 2.0) -> bool:
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def install(span_processors: list[Any], metric_readers: list[Any], log_processors: list[Any]) -> None:
    """Set the global providers (once per process) and instrument httpx: the local destinations and
    the tests use this; the Azure Monitor distro does the same for Application Insights."""
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    _install_record_factory()
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or SCOPE})
    tracer_provider = TracerProvider(resource=resource)
    for processor in span_processors:
        tracer_provider.add_span_processor(processor)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=metric_readers, resource=resource))
    if log_processors:
        logger_provider = LoggerProvider(resource=resource)
        for processor in log_processors:
            logger_provider.add_log_record_processor(processor)
        set_logger_provider(logger_provider)
        logging.getLogger().addHandler(LoggingHandler(logger_provider=logger_provider))
    HTTPXClientInstrumentor().instrument()


def _azure_monitor(connection_string: str) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(
        connection_string=connection_string,
        logger_name="",  # the root logger: every module's records, with the sync.* attributes
        # Table Storage calls would be a span each (thousands per full sync); job usage counts them.
        instrumentation_options={"azure_sdk": {"enabled": False}},
    )


def _local(settings: Any) -> None:
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    spans, readers = [], []
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        base = settings.otlp_endpoint.rstrip("/")
        spans.append(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=5)))
        readers.append(
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=5), export_interval_millis=15000
            )
        )
    if settings.telemetry_console:
        spans.append(BatchSpanProcessor(ConsoleSpanExporter()))
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=15000))
    install(spans, readers, [])


def configure(settings: Any = None) -> str:
    """Start telemetry once per process from the settings; returns where it goes ("off", "azure
    monitor", "otlp", "console"). Problems are one warning each; the app always runs on."""
    global _configured
    if _configured is not None:
        return _configured
    _install_record_factory()
    _configured = "off"
    try:
        if settings is None:
            from shared.settings import get_settings

            settings = get_settings()
    except Exception as exc:  # settings errors surface where the app uses them, not here
        log.info("telemetry off: settings unreadable (%s)", exc)
        return _configured
    try:
        if settings.telemetry_connection_string:
            problem = connection_string_problem(settings.telemetry_connection_string)
            if problem is None:
                _azure_monitor(settings.telemetry_connection_string)
                _configured = "azure monitor"
                return _configured
            log.warning("telemetry: APPLICATIONINSIGHTS_CONNECTION_STRING ignored: %s", problem)
        if settings.otlp_endpoint and not _reachable(settings.otlp_endpoint):
            log.warning(
                "telemetry: OTLP collector %s is not reachable; exporting anyway, failures are not logged",
                settings.otlp_endpoint,
            )
            # Each failed export would log again (and again): the one warning above says it all.
            for name in ("opentelemetry.exporter.otlp", "opentelemetry.sdk"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
        if settings.otlp_endpoint or settings.telemetry_console:
            _local(settings)
            _configured = "otlp" if settings.otlp_endpoint else "console"
    except Exception as exc:
        log.warning("telemetry off: %s: %s", type(exc).__name__, exc)
    return _configured
