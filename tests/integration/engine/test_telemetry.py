"""Telemetry through the engine: real runs against the emulators and Azurite, spans, metrics and log
records caught by the OpenTelemetry SDK's in-memory exporters (shared.telemetry.install, the same
path the local OTLP/console destinations use)."""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared import telemetry as t
from shared.settings import Settings
from shared.store import clients, sync_queue
from shared.store.tables import SYNC_QUEUE
from shared.sync import orchestrator


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        self.logs = InMemoryLogRecordExporter()

    def clear(self) -> None:
        self.spans.clear()
        self.logs.clear()
        self.metrics.get_metrics_data()  # cumulative sums: tests compare before/after instead

    def points(self, name: str) -> list:
        data = self.metrics.get_metrics_data()
        return [
            p
            for rm in (data.resource_metrics if data else [])
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == name
            for p in m.data.data_points
        ]

    def total(self, name: str, **attrs) -> float:
        return sum(
            getattr(p, "value", None) if hasattr(p, "value") else p.count
            for p in self.points(name)
            if all(p.attributes.get(k) == v for k, v in attrs.items())
        )


@pytest.fixture(scope="module")
def otel() -> Iterator[Otel]:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    o = Otel()
    t.install([SimpleSpanProcessor(o.spans)], [o.metrics], [SimpleLogRecordProcessor(o.logs)])
    t._configured = "test"
    yield o
    HTTPXClientInstrumentor().uninstrument()
    o.spans.shutdown()
    o.logs.shutdown()


def customer(number: str, name: str) -> dict:
    return {"id": str(uuid.uuid4()), "number": number, "displayName": name, "type": "Company",
            "email": f"{number.lower()}@example.com", "blocked": " "}  # fmt: skip


def test_a_run_is_one_trace_run_job_slice_http_with_attributes_metrics_and_logs(otel, harness, monkeypatch):
    h = harness
    otel.clear()
    monkeypatch.setattr(h.ctx, "settings", dataclasses.replace(h.ctx.settings, slice_max_records=2))
    h.bc.seed({"customers": [customer(f"T{i}", f"Traced {i}") for i in range(5)]})
    inserted_before = otel.total(t.METRIC_RECORDS, **{t.ATTR_MAPPING: "CUSTOMER", t.ATTR_RESULT: "inserted"})
    run = h.run("full", ["CUSTOMER"])
    assert run["status"] == "Succeeded", run
    spans = otel.spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    [root] = [s for s in spans if s.name == t.SPAN_RUN]
    assert root.attributes[t.ATTR_RUN] == run["run_id"] and root.parent is None
    [job] = [s for s in spans if s.name == t.SPAN_JOB]
    assert job.parent.span_id == root.context.span_id
    assert job.attributes[t.ATTR_MAPPING] == "CUSTOMER"
    slices = [s for s in spans if s.name == t.SPAN_SLICE]
    assert len(slices) >= 3  # 5 records to CRM in slices of 2, then the from_crm pass
    for s in slices:
        assert s.kind == SpanKind.CONSUMER
        assert s.context.trace_id == root.context.trace_id
        assert s.parent.span_id == job.context.span_id  # siblings under the job, inline or queued
        assert s.attributes[t.ATTR_RUN] == run["run_id"]
        assert s.attributes[t.ATTR_MAPPING] == "CUSTOMER"
        assert isinstance(s.attributes[t.ATTR_SLICE], int)
    assert sorted(s.attributes[t.ATTR_SLICE] for s in slices) == list(range(len(slices)))
    assert {s.attributes.get(t.ATTR_PASS) for s in slices} >= {"to_crm", "from_crm"}
    http = [s for s in spans if s.kind == SpanKind.CLIENT]
    urls = [str(s.attributes.get("url.full") or s.attributes.get("http.url")) for s in http]
    for side in (h.ctx.settings.bc_api_url, h.ctx.settings.dataverse_url):
        assert any(u.startswith(side) for u in urls), (side, urls[:3])  # both services were traced
    inside = [s for s in http if s.parent is not None and by_id.get(s.parent.span_id) in slices]
    assert inside, "HTTP spans are children of the slice spans"
    # Metrics: records per result, mapping and direction; slice durations; the finished run.
    inserted = otel.total(t.METRIC_RECORDS, **{t.ATTR_MAPPING: "CUSTOMER", t.ATTR_RESULT: "inserted"})
    assert inserted - inserted_before == 5
    assert otel.total(t.METRIC_RECORDS, **{t.ATTR_DIRECTION: "to_crm", t.ATTR_RESULT: "inserted"}) >= 5
    assert otel.total(t.METRIC_SLICE_DURATION, **{t.ATTR_MAPPING: "CUSTOMER"}) >= len(slices)
    assert otel.total(t.METRIC_RUNS, **{t.ATTR_STATUS: "Succeeded", t.ATTR_KIND: "full"}) >= 1
    # Log records: the run-finished event the alerts query, and slice logs carry the slice's ids.
    records = [r.log_record for r in otel.logs.get_finished_logs()]
    [finished] = [r for r in records if (r.attributes or {}).get("event") == t.EVENT_RUN_FINISHED]
    assert finished.attributes[t.ATTR_RUN] == run["run_id"]
    assert finished.attributes[t.ATTR_STATUS] == "Succeeded" and finished.attributes[t.ATTR_FAILED] == 0
    assert finished.trace_id == root.context.trace_id
    assert finished.attributes[t.ATTR_MAPPING] == "CUSTOMER"  # written inside the job's last slice
    assert isinstance(finished.attributes[t.ATTR_SLICE], int)


def test_a_failed_record_shows_in_the_run_finished_event(otel, harness):
    h = harness
    otel.clear()
    bc = customer("TF1", "Conflict")
    h.bc.seed({"customers": [bc]})
    h.run("full", ["CUSTOMER"])
    [crm] = [a for a in h.dv.records("accounts") if a["name"] == "Conflict"]
    otel.clear()
    h.bc.seed({"customers": [{"id": bc["id"], "displayName": "BC side"}]})  # both sides changed:
    h.dv.seed({"accounts": [{"accountid": crm["accountid"], "name": "CRM side"}]})  # a record error
    run = h.run("modified", ["CUSTOMER"])
    job = h.job(run, "CUSTOMER")
    assert job["errors"] >= 1, job
    records = [r.log_record for r in otel.logs.get_finished_logs()]
    [finished] = [r for r in records if (r.attributes or {}).get("event") == t.EVENT_RUN_FINISHED]
    assert finished.attributes[t.ATTR_FAILED] == job["errors"]
    assert otel.total(t.METRIC_RECORDS, **{t.ATTR_MAPPING: "CUSTOMER", t.ATTR_RESULT: "failed"}) >= 1


def test_a_message_without_trace_context_still_runs(otel, harness):
    h = harness
    otel.clear()
    h.bc.seed({"customers": [customer("TO1", "Old message")]})
    run = orchestrator.start_run(h.ctx, orchestrator.StartRequest("full", "api", ["CUSTOMER"], "keep"))
    queue = clients.queue(SYNC_QUEUE)
    for _ in range(20):
        messages = [m for m in queue.receive_messages(visibility_timeout=30) if run.run_id in m.content]
        if not messages:
            break
        for m in messages:
            body = json.loads(m.content)
            assert "trace" in body  # what this version writes
            body.pop("trace")  # what a message from before it looks like
            orchestrator.handle_message(h.ctx, sync_queue.parse(json.dumps(body)), inline_seconds=0)
            queue.delete_message(m)
    assert h.ctx.runs.get(run.run_id).status == "Succeeded"
    slices = [s for s in otel.spans.get_finished_spans() if s.name == t.SPAN_SLICE]
    assert slices and all(s.parent is None for s in slices if s.attributes[t.ATTR_SLICE] == 0)


def test_throttling_per_service_and_the_freshness_gauge(otel, harness):
    h = harness
    otel.clear()
    before = otel.total(t.METRIC_THROTTLED, **{t.ATTR_SERVICE: "dataverse"})
    waited = otel.total(t.METRIC_THROTTLE_WAIT, **{t.ATTR_SERVICE: "dataverse"})
    h.bc.seed({"customers": [customer(f"TT{i}", f"Throttled {i}") for i in range(3)]})
    h.dv.faults(throttle={"requests": 1, "window_s": 1})
    try:
        run = h.run("full", ["CUSTOMER"])
    finally:
        h.dv.faults()
    assert run["status"] == "Succeeded", run
    throttled = h.dv.stats().get("throttled", 0)
    assert throttled >= 1
    assert otel.total(t.METRIC_THROTTLED, **{t.ATTR_SERVICE: "dataverse"}) - before == throttled
    assert otel.total(t.METRIC_THROTTLE_WAIT, **{t.ATTR_SERVICE: "dataverse"}) > waited
    t.observe_freshness(lambda: h.ctx)
    ages = {p.attributes[t.ATTR_MAPPING]: p.value for p in otel.points(t.METRIC_SINCE_SUCCESS)}
    assert 0 <= ages["CUSTOMER"] < 600


def test_a_poison_message_is_counted_and_logged(otel, harness, monkeypatch):
    import azure.functions as func

    from functions import http_util, worker

    h = harness
    otel.clear()
    monkeypatch.setattr(http_util, "_context", h.ctx)
    before = otel.total(t.METRIC_POISON)
    body = sync_queue.message("0000000000000-000000", "CUSTOMER", 0)
    worker.sync_poison(func.QueueMessage(id="m1", body=json.dumps(body).encode()))
    assert otel.total(t.METRIC_POISON, **{t.ATTR_MAPPING: "CUSTOMER"}) - before == 1
    records = [r.log_record for r in otel.logs.get_finished_logs()]
    assert any((r.attributes or {}).get("event") == t.EVENT_POISON for r in records)


def test_bad_telemetry_settings_warn_once_and_the_sync_runs(harness, monkeypatch, caplog):
    """A malformed connection string: one warning, telemetry off, the sync unaffected."""
    h = harness
    monkeypatch.setattr(t, "_configured", None)
    bad = Settings.from_env({"AzureWebJobsStorage": "x", "APPLICATIONINSIGHTS_CONNECTION_STRING": "garbage"})
    with caplog.at_level(logging.WARNING, logger="telemetry"):
        assert t.configure(bad) == "off"
        assert t.configure(bad) == "off"  # once per process
    warnings = [r for r in caplog.records if r.name == "telemetry"]
    assert len(warnings) == 1 and "APPLICATIONINSIGHTS_CONNECTION_STRING" in warnings[0].getMessage()
    h.bc.seed({"customers": [customer("TB1", "Bad config")]})
    assert h.run("full", ["CUSTOMER"])["status"] == "Succeeded"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("garbage", "not key=value"),
        ("IngestionEndpoint=https://x.in.applicationinsights.azure.com/", "no InstrumentationKey"),
        ("InstrumentationKey=abc", "not a GUID"),
        ("InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=ftp://x", "http(s)"),
        ("InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://x/", None),
    ],
)
def test_connection_string_check(value, problem):
    found = t.connection_string_problem(value)
    assert (found is None) if problem is None else (problem in found)


SCRIPT = """
import json, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
from shared import telemetry
from shared.settings import Settings
from shared.store import clients, sync_queue
from shared.store.tables import SYNC_QUEUE, Tables
from shared.sync import orchestrator
from shared.sync.context import SyncContext

settings = Settings.from_env()
where = telemetry.configure(settings)
ctx = SyncContext(settings, Tables(prefix=settings.table_prefix))
ctx.tables.ensure()
sync_queue.ensure()
run = orchestrator.start_run(ctx, orchestrator.StartRequest("full", "api", ["CUSTOMER"], "keep"))
queue, traced = clients.queue(SYNC_QUEUE), False
for _ in range(300):
    if ctx.runs.get(run.run_id).status not in ("Pending", "Running"):
        break
    for m in queue.receive_messages(visibility_timeout=30, max_messages=32):
        body = sync_queue.parse(m.content)
        if body["run"] == run.run_id:
            traced = traced or "trace" in body
            orchestrator.handle_message(ctx, body)
        queue.delete_message(m)
print(json.dumps({"where": where, "status": ctx.runs.get(run.run_id).status, "traced": traced}))
"""


def test_a_malformed_connection_string_and_an_unreachable_collector_warn_once_and_the_sync_runs(
    harness, tmp_path
):
    """In a process of its own (telemetry is configured once per process): both problems at once."""
    import os
    import subprocess
    import sys

    from devstack import procs

    h = harness
    h.bc.seed({"customers": [customer("TU1", "Unreachable collector")]})
    env = {
        **os.environ,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=not-a-guid",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{procs.free_port()}",  # nobody listens
        "STORAGE_TABLE_PREFIX": h.ctx.tables.prefix,
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=240, cwd=os.getcwd()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"where": "otlp", "status": "Succeeded", "traced": True}, (result, done.stderr[-2000:])
    warnings = [line for line in done.stderr.splitlines() if " WARNING " in line or " ERROR " in line]
    assert len(warnings) == 2, warnings  # one per problem, nothing from failed exports
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING ignored" in warnings[0] and "not a GUID" in warnings[0]
    assert "not reachable" in warnings[1]
