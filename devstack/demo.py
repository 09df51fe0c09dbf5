"""`make demo`: the local stack with demo data, a full sync over HTTP with live progress, the summary.

Starts `python -m devstack up --data demo`, starts a full synchronization through the HTTP API, shows
a progress bar per mapping, answers the end-of-sync question, prints counters per mapping and the
portal URL, and keeps the stack running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from datetime import datetime

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devstack import procs
from shared.model.status import JOB_TERMINAL, RUN_ACTIVE, RunStatus

ENDPOINTS = procs.STATE_DIR / "endpoints.json"
console = Console()


def start_stack(records: int, workers: int) -> tuple[subprocess.Popen, dict]:
    started = time.time()
    log = procs.STATE_DIR / "demo-up.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"")
    args = [sys.executable, "-m", "devstack", "up", "--data", "demo", "--records", str(records)]
    proc = procs.start([*args, "--workers", str(workers)], log)
    with console.status("Starting Azurite, the token authority, both emulators and the Functions host…"):
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                console.print(log.read_text()[-3000:])
                raise SystemExit(f"devstack up exited with {proc.returncode} (log: {log})")
            if ENDPOINTS.exists() and ENDPOINTS.stat().st_mtime >= started:
                endpoints = json.loads(ENDPOINTS.read_text())
                try:
                    health = httpx.get(f"{endpoints['host']}/api/health", timeout=5)
                    if health.status_code == 200:
                        return proc, endpoints
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
    procs.stop(proc)
    raise SystemExit(f"the stack did not become healthy in 180 s (log: {log})")


def counters_table(run: dict, seconds: float) -> Table:
    table = Table(title=f"Full synchronization {run['run_id']} — {run['status']}")
    table.add_column("Mapping", no_wrap=True)
    table.add_column("Status")
    for direction in ("BC→CRM", "CRM→BC"):
        table.add_column(f"{direction}\nins/mod/cpl/unch", justify="right", no_wrap=True)
    table.add_column("Failed", justify="right")
    table.add_column("Records", justify="right")
    table.add_column("Seconds", justify="right")
    for job in run["jobs"]:
        cells = []
        for d in ("to_crm", "from_crm"):
            c = job[d]
            cells.append(f"{c['inserted']}/{c['modified']}/{c['coupled']}/{c['unchanged']}")
        failed = job["to_crm"]["failed"] + job["from_crm"]["failed"]
        took = ""
        if job.get("started_at") and job.get("finished_at"):
            start = datetime.fromisoformat(job["started_at"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00"))
            took = f"{(end - start).total_seconds():.1f}"
        table.add_row(job["mapping"], job["status"], *cells, str(failed), str(job["processed"]), took)
    processed = sum(j["processed"] for j in run["jobs"])
    table.caption = (
        f"{processed} source records in {seconds:.1f} s = {processed / max(seconds, 0.001) * 60:,.0f}/min"
    )
    return table


def follow(client: httpx.Client, run_id: str) -> dict:
    with Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks: dict[str, int] = {}
        while True:
            run = client.get(f"/api/runs/{run_id}").raise_for_status().json()
            for job in run["jobs"]:
                if job["mapping"] not in tasks:
                    tasks[job["mapping"]] = progress.add_task(job["mapping"], total=None, status="")
                done = job["status"] in JOB_TERMINAL
                total = (
                    job["processed"] if done else max(job["total_estimate"] or 0, job["processed"]) or None
                )
                progress.update(
                    tasks[job["mapping"]], completed=job["processed"], total=total, status=job["status"]
                )
            if run["status"] not in RUN_ACTIVE:
                return run
            time.sleep(0.5)


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1000, help="customers in the demo data (others scale)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", choices=["ask", "yes", "no"], default="ask", help="the end-of-sync answer")
    parser.add_argument("--exit", action="store_true", help="stop the stack after the summary")
    args = parser.parse_args(argv)
    proc, endpoints = start_stack(args.records, args.workers)
    try:
        host, key = endpoints["host"], endpoints["function_key"]
        console.print(f"[green]Stack is up[/]: host {host}, BC {endpoints['bc']['api']}, "
                      f"Dataverse {endpoints['dataverse']['api']}")  # fmt: skip
        client = httpx.Client(base_url=host, headers={"x-functions-key": key}, timeout=30)
        started = time.monotonic()
        answer = client.post("/api/sync/full", json={"after_full_sync": "ask"})
        answer.raise_for_status()
        run_id = answer.json()["run_id"]
        console.print(f"Full synchronization started: run [bold]{run_id}[/]")
        run = follow(client, run_id)
        seconds = time.monotonic() - started
        if run["status"] == "AwaitingDecision":
            keep = args.keep == "yes"
            if args.keep == "ask" and sys.stdin.isatty():
                console.print(
                    'The full synchronization ran as if "Synch. Only Coupled Records" were off. Turn it '
                    "off so scheduled syncs also create records for new uncoupled records? [Y/n] ",
                    end="",
                )
                keep = input().strip().lower() not in ("n", "no")
            elif args.keep == "ask":
                keep = True
            client.post(
                f"/api/runs/{run_id}/decision", json={"keep_sync_all_records": keep}
            ).raise_for_status()
            console.print(
                f"Decision: {'sync all records from now on' if keep else 'keep syncing only coupled records'}"
            )
            run = client.get(f"/api/runs/{run_id}").json()
        console.print(counters_table(run, seconds))
        console.print(f"\nPortal: [link]{host}/api/portal?code={key}[/link]")
        console.print(f"Endpoints: {ENDPOINTS}")
        if args.exit:
            return 0 if run["status"] in (RunStatus.SUCCEEDED, RunStatus.FINISHED_WITH_ERRORS) else 1
        console.print("The stack keeps running. Press Ctrl-C to stop it.")
        signal.signal(signal.SIGTERM, _interrupt)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        console.print("Stopping the stack…")
        procs.stop(proc, timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
