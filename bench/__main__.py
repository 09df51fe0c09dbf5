"""`make bench`: full sync through the real path vs. a raw-transfer baseline, request efficiency,
modified-sync cost at two table sizes, worker memory and scale-out — as ratios measured in one run.

Everything runs against devstack (Azurite, the emulators with injected latency, the local host).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
from azure.data.tables import TableServiceClient

from devstack import demo_data
from devstack.stack import Stack
from shared.connectors.bc import BatchOp, BcClient
from shared.connectors.dataverse import DataverseClient
from shared.settings import Settings
from shared.store import table_wire
from tests.invariants import check_stack

RESULTS = Path(__file__).parent / "results"
SCALES = {"1k": 1_000, "10k": 10_000, "30k": 30_000, "100k": 100_000}
NOTE = "2 cores shared with other sessions' test runs while measured: wall and CPU times vary with their load"
DEFAULT_RECORDS = 10_000  # the default: 10k customers, 20k contacts, 5k items
MAX = {"dv_page": 5000, "dv_bulk": 1000, "bc_page": 20000, "bc_batch": 100}


def stats(stack: Stack) -> Counter:
    total: Counter = Counter()
    for side in ("bc", "dataverse"):
        for key, value in httpx.get(f"{stack.endpoints[side]['admin']}/stats").json().items():
            total[f"{side} {key}"] += value
    return total


def reset_stats(stack: Stack) -> None:
    for side in ("bc", "dataverse"):
        httpx.post(f"{stack.endpoints[side]['admin']}/stats/reset").raise_for_status()


def set_latency(stack: Stack, ms: float) -> None:
    for side in ("bc", "dataverse"):
        httpx.post(f"{stack.endpoints[side]['admin']}/faults", json={"latency_ms": ms}).raise_for_status()


def api_requests(counts: Counter) -> int:
    return sum(v for k, v in counts.items() if not k.endswith((" total", " throttled", " resets", " errors")))


class RssSampler(threading.Thread):
    """Peak RSS of the host's queue-worker processes, sampled every 200 ms."""

    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.procs = [psutil.Process(p) for p in pids]
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            for p in self.procs:
                try:
                    self.peak = max(self.peak, p.memory_info().rss)
                except psutil.Error:
                    continue


def start_stack(records: int, workers: int, latency: float) -> Stack:
    env = {"SYNC_SCHEDULE": "0 0 0 1 1 *"}  # no scheduled run during the benchmark
    stack = Stack.start(
        Path(tempfile.mkdtemp(prefix="bench-")), data="demo", records=records, workers=workers, env=env
    )
    set_latency(stack, latency)
    return stack


def run_sync(stack: Stack, path: str, body: dict) -> tuple[dict, float, Counter]:
    client = httpx.Client(
        base_url=stack.endpoints["host"],
        headers={"x-functions-key": stack.endpoints["function_key"]},
        timeout=60,
    )
    reset_stats(stack)
    started = time.monotonic()
    run_id = client.post(path, json=body).raise_for_status().json()["run_id"]
    while True:
        run = client.get(f"/api/runs/{run_id}").json()
        if run["status"] not in ("Pending", "Running"):
            break
        time.sleep(0.25)
    return run, time.monotonic() - started, stats(stack)


def usage(run: dict) -> Counter:
    """What the run's jobs report they used (requests per service, Table Storage requests and entity ops)."""
    total: Counter = Counter()
    for job in run["jobs"]:
        total.update(job.get("usage") or {})
    return total


def storage_floor(stack: Stack) -> tuple[float, int]:
    """Seconds this Azurite takes just to insert the rows the full sync stored in the coupling tables, in
    full 100-entity transactions into empty tables, four at a time like the engine: what any engine
    keeping these couplings pays here."""
    values = json.loads((stack.state / "local.settings.json").read_text())["Values"]
    service = TableServiceClient.from_connection_string(values["AzureWebJobsStorage"])
    prefix = values.get("STORAGE_TABLE_PREFIX", "") + "Couplings"
    groups = []
    stamp = int(time.time())
    for source in [t.name for t in service.list_tables() if t.name.startswith(prefix)]:
        rows: dict[str, list[dict]] = {}
        for e in table_wire.query(service.get_table_client(source), "PartitionKey ge ''"):
            e.pop("Timestamp", None)
            rows.setdefault(e["PartitionKey"], []).append(e)
        floor = service.create_table(f"floor{stamp}{source[len(prefix) :]}")
        groups += [(floor, p[i : i + 100]) for p in rows.values() for i in range(0, len(p), 100)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda g: table_wire.submit(g[0], [("create", r) for r in g[1]]), groups))
    return time.monotonic() - started, sum(len(g[1]) for g in groups)


def optimal_requests(run: dict) -> int:
    """Reads at the largest page size and writes at the largest bulk size, per mapping and direction."""
    total = 0
    for job in run["jobs"]:
        for direction in ("to_crm", "from_crm"):
            c = job[direction]
            seen = sum(c[k] for k in ("inserted", "modified", "unchanged", "skipped", "failed", "coupled"))
            if not seen:
                continue
            page = MAX["bc_page"] if direction == "to_crm" else MAX["dv_page"]
            bulk = MAX["dv_bulk"] if direction == "to_crm" else MAX["bc_batch"]
            total += math.ceil(seen / page)
            total += math.ceil(c["inserted"] / bulk) + math.ceil(c["modified"] / bulk)
    return total


def baseline(stack: Stack) -> float:
    """Raw transfer: page each source table and bulk-write it to the other side (no couplings, no checks)."""
    values = json.loads((stack.state / "local.settings.json").read_text())["Values"]
    settings = Settings.from_env(values)
    dv, bc = DataverseClient(settings), BcClient(settings)
    started = time.monotonic()
    # The rows the contracts require (shared/contracts): products need a unit group and its base unit,
    # currencies a symbol, rate and precision, Dataverse contacts a last name, BC salespeople a code.
    group = str(uuid.uuid4())
    dv.create("uomschedules", group, {"name": "BENCH", "baseuomname": "BENCH"})
    [base] = dv.get_page("uoms", filter=f"_uomscheduleid_value eq {group}", select=["uomid"]).records
    unit = {
        "defaultuomscheduleid@odata.bind": f"/uomschedules({group})",
        "defaultuomid@odata.bind": f"/uoms({base['uomid']})",
        "quantitydecimal": 2,
    }
    currency = {"currencysymbol": "¤", "exchangerate": 1.0, "currencyprecision": 2}
    to_crm = {
        "currencies": (
            "transactioncurrencies",
            "transactioncurrency",
            lambda r: {"isocurrencycode": r["code"], "currencyname": r["displayName"], **currency},
        ),
        "unitsOfMeasure": (
            "uomschedules",
            "uomschedule",
            lambda r: {"name": r["code"], "baseuomname": r["code"]},
        ),
        "customers": (
            "accounts",
            "account",
            lambda r: {"name": r["displayName"], "accountnumber": r["number"]},
        ),
        "contacts": ("contacts", "contact", lambda r: {"lastname": r["displayName"][:50]}),
        "items": (
            "products",
            "product",
            lambda r: {"name": r["displayName"], "productnumber": r["number"], **unit},
        ),
        "resources": (
            "products",
            "product",
            lambda r: {"name": r["displayName"], "productnumber": r["number"], **unit},
        ),
    }
    codes = iter(range(10**6))
    from_crm = {
        "systemusers": (
            "salespeoplePurchasers",
            lambda r: {"code": f"B{next(codes)}", "displayName": (r.get("fullname") or "user")[:50]},
        ),
        "accounts": ("customers", lambda r: {"displayName": r["name"]}),
        "contacts": (
            "contacts",
            lambda r: {
                "displayName": f"{r.get('firstname') or ''} {r['lastname']}".strip(),
                "type": "Person",
            },
        ),
        "products": ("items", lambda r: {"displayName": r["name"]}),
    }

    def copy_to_crm(entity: str) -> None:
        target, logical, shape = to_crm[entity]
        link = None
        while True:
            page = bc.get_page(entity, page_size=MAX["bc_page"], next_link=link)
            dv.create_multiple(target, logical, [shape(r) for r in page.records])
            link = page.next_link
            if not link:
                return

    def copy_from_crm(entity_set: str) -> None:
        target, shape = from_crm[entity_set]
        link = None
        while True:
            page = dv.get_page(entity_set, page_size=MAX["dv_page"], next_link=link)
            bc.batch([BatchOp("POST", target, body=shape(r)) for r in page.records])
            link = page.next_link
            if not link:
                return

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(copy_to_crm, to_crm))
        list(pool.map(copy_from_crm, from_crm))
    return time.monotonic() - started


def modified_cost(stack: Stack, changes_per_side: int = 50) -> tuple[float, int, dict]:
    # Settle first: the first modified sync after a full sync reads back what the full sync wrote.
    run_sync(stack, "/api/sync/modified", {})
    admin_bc, admin_dv = stack.endpoints["bc"]["admin"], stack.endpoints["dataverse"]["admin"]
    customers = [
        c
        for c in httpx.get(f"{admin_bc}/records/customers", timeout=120).json()["value"]
        if c["blocked"] != "All"
    ]
    accounts = [
        a
        for a in httpx.get(f"{admin_dv}/records/accounts", timeout=120).json()["value"]
        if a["statecode"] == 0 and a.get("customertypecode") == 3
    ]
    stamp = datetime.now(UTC).strftime("%H%M%S")
    httpx.post(
        f"{admin_bc}/seed",
        json={
            "customers": [
                {"id": c["id"], "phoneNumber": f"+1 {stamp} {i}"}
                for i, c in enumerate(customers[:changes_per_side])
            ]
        },
    )
    httpx.post(
        f"{admin_dv}/seed",
        json={
            "accounts": [
                {"accountid": a["accountid"], "websiteurl": f"www.{stamp}-{i}.example"}
                for i, a in enumerate(accounts[-changes_per_side:])
            ]
        },
    )
    run, seconds, counts = run_sync(stack, "/api/sync/modified", {})
    job = next(j for j in run["jobs"] if j["mapping"] == "CUSTOMER")
    return (
        seconds,
        api_requests(counts),
        {
            "to_crm_modified": job["to_crm"]["modified"],
            "from_crm_modified": job["from_crm"]["modified"],
            "status": run["status"],
            "requests_by_kind": {k: v for k, v in counts.items() if v},
            "table_entity_ops": usage(run)["table_entity_ops"],
        },
    )


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time used so far by Azurite, the queue workers, the emulators and the rest of the host."""
    pids = {
        "azurite": [stack.azurite.proc.pid] if stack.azurite else [],
        "workers": stack.worker_pids() or [stack.procs["host"].pid],
        "emulators": [stack.procs[k].pid for k in ("bc", "dataverse") if k in stack.procs],
    }
    out = {}
    for name, group in pids.items():
        out[name] = sum(sum(psutil.Process(p).cpu_times()[:2]) for p in group)
    return out


def job_summary(job: dict) -> dict:
    """Where a run's time and requests went, per mapping."""
    started, finished = job.get("started_at"), job.get("finished_at")
    seconds = (
        (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
        if started and finished
        else None
    )
    return {
        "status": job["status"],
        "seconds": seconds and round(seconds, 1),
        "processed": job["processed"],
        "usage": job.get("usage") or {},
    }


def full_sync(stack: Stack, label: str) -> dict:
    """One full sync through the real path, with peak worker RSS, CPU seconds per process group and what
    the jobs report they used."""
    sampler = RssSampler(stack.worker_pids() or [stack.procs["host"].pid])
    sampler.start()
    cpu_before = cpu_seconds(stack)
    run, seconds, counts = run_sync(stack, "/api/sync/full", {"after_full_sync": "keep"})
    cpu = {k: round(v - cpu_before[k], 1) for k, v in cpu_seconds(stack).items()}
    sampler.stop.set()
    processed = sum(j["processed"] for j in run["jobs"])
    used = usage(run)
    entry = {
        "status": run["status"],
        "seconds": round(seconds, 1),
        "records": processed,
        "records_per_min": round(processed / seconds * 60),
        "requests": api_requests(counts),
        "requests_by_kind": dict(counts),
        "optimal_requests": optimal_requests(run),
        "peak_worker_rss_mb": round(sampler.peak / 2**20, 1),
        "table_requests": used["table_requests"],
        "table_entity_ops": used["table_entity_ops"],
        "cpu_seconds": cpu,
        "jobs": {j["mapping"]: job_summary(j) for j in run["jobs"]},
    }
    for name, job in entry["jobs"].items():
        print(f"    {name}: {job['seconds']} s, {job['processed']} records, usage {job['usage']}", flush=True)
    print(
        f"  {label}: {entry['seconds']} s, {entry['records']} records, {entry['records_per_min']:,}/min, "
        f"{entry['requests']} requests (optimal {entry['optimal_requests']}), {entry['table_entity_ops']} "
        f"table entity ops in {entry['table_requests']} requests, peak RSS {entry['peak_worker_rss_mb']} MB, "
        f"CPU s {cpu}",
        flush=True,
    )
    return entry


def modified(stack: Stack, records: int) -> dict:
    seconds, requests, detail = modified_cost(stack)
    print(f"  modified sync of 100 changes among {records} customers: {requests} requests, {seconds:.1f} s")
    return {"records": records, "seconds": round(seconds, 2), "requests": requests, **detail}


def measured_baseline(records: int, latency: float) -> float:
    stack = start_stack(records, 1, latency)  # fresh: the baseline writes into empty destination tables
    try:
        seconds = round(baseline(stack), 1)
    finally:
        stack.stop()
    print(f"  raw-transfer baseline at {records} customers: {seconds} s", flush=True)
    return seconds


def check_invariants(stack: Stack, records: int) -> dict:
    """The soak's invariant checker on the synced tables: duplicates, lost records, field differences."""
    started = time.monotonic()
    seeded = {r["id"] for rows in demo_data.build(records)["bc"].values() for r in rows}
    summary = check_stack(stack.endpoints, stack.client_id, seeded).summary()
    summary["violations"] = summary["violations"][:20]
    summary["seconds"] = round(time.monotonic() - started, 1)
    print(
        f"  invariants: {summary['records_checked']:,} records, {summary['couplings']:,} couplings checked: "
        f"{summary['duplicates']} duplicates, {summary['lost']} lost, {summary['differences']} field "
        f"differences, {len(summary['violations'])} violations in all ({summary['seconds']} s)",
        flush=True,
    )
    return summary


def machine() -> dict:
    return {
        "cpus": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def commit() -> str:
    """The measured commit, with `+dirty` when the code in the working tree differs from it."""
    root = Path(__file__).parent.parent
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "shared", "functions", "devstack", "bench", ":!bench/results"],
        cwd=root,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head + ("+dirty" if dirty else "")


def per_record(entry: dict) -> dict:
    """What a full sync costs per record read: the figures that must stay flat as the tenant grows."""
    n = max(1, entry["records"])
    return {
        "worker_cpu_ms": round(entry["cpu_seconds"]["workers"] / n * 1000, 3),
        "azurite_cpu_ms": round(entry["cpu_seconds"]["azurite"] / n * 1000, 3),
        "api_requests": round(entry["requests"] / n, 5),
        "table_entity_ops": round(entry["table_entity_ops"] / n, 3),
        "table_requests": round(entry["table_requests"] / n, 4),
        "wall_ms": round(entry["seconds"] / n * 1000, 3),
    }


def measure_scale(name: str, latency: float) -> dict:
    """One full sync with one worker on a fresh stack at this scale, saved as its own result file so that
    scales measured on different runs combine (`--plot`)."""
    records = SCALES[name]
    started = datetime.now(UTC)
    stack = start_stack(records, 1, latency)
    try:
        entry = full_sync(stack, f"full sync at {name}, 1 worker")
        changes = modified(stack, records)
        invariants = check_invariants(stack, records)
    finally:
        stack.stop()
    result = {
        "date": started.isoformat(),
        "commit": commit(),
        "machine": machine(),
        "notes": NOTE,
        "scale": name,
        "customers": records,
        "latency_ms": latency,
        "full_sync": entry,
        "per_record": per_record(entry),
        "modified": changes,
        "invariants": invariants,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{started:%Y-%m-%d}-scale-{name}.json").write_text(json.dumps(result, indent=2))
    return result


def latest_scales() -> dict[str, dict]:
    """The newest saved measurement per scale."""
    found: dict[str, dict] = {}
    for path in sorted(RESULTS.glob("*-scale-*.json")):
        r = json.loads(path.read_text())
        found[r["scale"]] = r
    return dict(sorted(found.items(), key=lambda kv: SCALES[kv[0]]))


def modified_cell(r: dict) -> str:
    m = r.get("modified")
    return f"{m['requests']} requests, {m['seconds']} s" if m else "not measured"


def invariants_cell(r: dict) -> str:
    i = r.get("invariants")
    if not i:
        return "not checked"
    return f"{i['duplicates']} / {i['lost']} / {i['differences']} ({i['records_checked']:,} records)"


def scale_table(found: dict[str, dict]) -> str:
    cols = list(found)
    rows = [
        ("records read", lambda r: f"{r['full_sync']['records']:,}"),
        ("status", lambda r: r["full_sync"]["status"]),
        ("full sync wall time", lambda r: f"{r['full_sync']['seconds']} s"),
        ("peak worker RSS", lambda r: f"{r['full_sync']['peak_worker_rss_mb']} MB"),
        ("worker CPU ms / record", lambda r: r["per_record"]["worker_cpu_ms"]),
        ("Azurite CPU ms / record", lambda r: r["per_record"]["azurite_cpu_ms"]),
        ("API requests / record", lambda r: r["per_record"]["api_requests"]),
        ("table entity ops / record", lambda r: r["per_record"]["table_entity_ops"]),
        ("table requests / record", lambda r: r["per_record"]["table_requests"]),
        ("wall ms / record", lambda r: r["per_record"]["wall_ms"]),
        ("then a modified sync of 100 changes", modified_cell),
        ("invariants: duplicates / lost / field differences", invariants_cell),
        ("measured (UTC), commit", lambda r: f"{r['date'][:16]}, `{r['commit'][:8]}`"),
    ]
    lines = ["| per full sync, 1 worker | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(str(f(found[c])) for c in cols) + " |" for label, f in rows]
    return "\n".join(lines) + "\n"


def plot_scales(found: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [found[c]["full_sync"]["records"] for c in found]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(xs, [found[c]["full_sync"]["seconds"] / 60 for c in found], "o-")
    left.set(xscale="log", xlabel="records read", ylabel="full sync, minutes", title="Wall time")
    base = {k: v for k, v in found[next(iter(found))]["per_record"].items()}
    for key, label in (
        ("worker_cpu_ms", "worker CPU"),
        ("azurite_cpu_ms", "Azurite CPU"),
        ("api_requests", "API requests"),
        ("table_entity_ops", "table entity ops"),
        ("wall_ms", "wall time"),
    ):
        ys = [found[c]["per_record"][key] / max(base[key], 1e-9) for c in found]
        right.plot(xs, ys, "o-", label=label)
    right.axhline(1.2, color="grey", linestyle=":", linewidth=1)
    right.set(
        xscale="log",
        xlabel="records read",
        ylabel=f"cost per record / at {next(iter(found))}",
        title="Cost per record, relative to the smallest scale",
    )
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.minorticks_off()
        ax.set_xticks(xs, [c for c in found])
    first = next(iter(found.values()))
    fig.suptitle(
        f"Full sync, 1 worker, {first['latency_ms']} ms latency per request; "
        f"{first['machine']['cpus']} CPUs; commits "
        + ", ".join(sorted({r["commit"][:8] for r in found.values()})),
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report_scales() -> int:
    found = latest_scales()
    if not found:
        print("no scale results in bench/results/ (run with --scales first)")
        return 1
    table = scale_table(found)
    (RESULTS / "scales.md").write_text(table)
    plot_scales(found, RESULTS / "scales.png")
    print("\n" + table + f"\nwritten: {RESULTS / 'scales.md'}, {RESULTS / 'scales.png'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--records",
        type=int,
        default=DEFAULT_RECORDS,
        help="BC customers (twice as many contacts, half as many items, …)",
    )
    parser.add_argument("--scale", choices=["10k", "100k"], default=None, help="shortcut for --records")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", default="1,2,4", help="worker counts for the scale-out measurement")
    parser.add_argument(
        "--small", type=int, default=None, help="customers of the table a tenth the size (modified sync)"
    )
    parser.add_argument(
        "--scales",
        default=None,
        help="e.g. 1k,10k,100k: only the per-record cost of one-worker full syncs at each scale, "
        "each saved as bench/results/<date>-scale-<s>.json, then the table and PNG of all saved scales",
    )
    parser.add_argument(
        "--plot", action="store_true", help="only rebuild bench/results/scales.md and scales.png"
    )
    args = parser.parse_args(argv)
    if args.plot:
        return report_scales()
    if args.scales:
        names = args.scales.split(",")
        unknown = [n for n in names if n not in SCALES]
        if unknown:
            parser.error(f"unknown scale(s) {unknown}; choose from {list(SCALES)}")
        for name in names:
            r = measure_scale(name, args.latency_ms)
            print(f"  per record at {name}: {r['per_record']}", flush=True)
        return report_scales()
    records = {"10k": 10000, "100k": 100000}.get(args.scale or "", args.records)
    small = args.small or max(100, records // 10)
    worker_counts = [int(w) for w in args.workers.split(",")]
    result: dict = {
        "date": datetime.now(UTC).isoformat(),
        "records": records,
        "small_records": small,
        "latency_ms": args.latency_ms,
        "commit": commit(),
        "notes": NOTE,
        "machine": machine(),
        "data": demo_data.summary(demo_data.build(records)),
        "scale_out": {},
    }
    started = time.monotonic()
    print(
        f"benchmark: {records} customers, {args.latency_ms} ms latency, workers {worker_counts}; "
        f"modified sync also at {small}",
        flush=True,
    )
    for workers in worker_counts:
        stack = start_stack(records, workers, args.latency_ms)
        try:
            result["scale_out"][str(workers)] = full_sync(stack, f"full sync, {workers} worker(s)")
            if workers == worker_counts[0]:
                floor, rows = storage_floor(stack)
                result["storage_floor"] = {"seconds": round(floor, 1), "coupling_rows": rows}
                print(f"  storage floor: {rows} coupling rows take Azurite {floor:.1f} s", flush=True)
                result["modified_large"] = modified(stack, records)
        finally:
            stack.stop()
    result["baseline_seconds"] = measured_baseline(records, args.latency_ms)
    stack = start_stack(small, 1, args.latency_ms)  # the modified sync at a tenth of the table size
    try:
        run_sync(stack, "/api/sync/full", {"after_full_sync": "keep"})
        result["modified_small"] = modified(stack, small)
    finally:
        stack.stop()
    fastest = min(result["scale_out"], key=lambda w: result["scale_out"][w]["seconds"])
    head = result["full_sync"] = result["scale_out"][fastest] | {"workers": int(fastest)}
    first = result["scale_out"][str(worker_counts[0])]
    result["engine_to_baseline"] = round(head["seconds"] / result["baseline_seconds"], 2)
    result["engine_to_baseline_plus_storage"] = round(
        first["seconds"] / (result["baseline_seconds"] + result["storage_floor"]["seconds"]), 2
    )
    result["requests_to_optimal"] = round(head["requests"] / max(1, head["optimal_requests"]), 2)
    result["records_per_min"] = head["records_per_min"]
    result["modified_sync_requests"] = result["modified_large"]["requests"]
    result["peak_rss_mb"] = max(e["peak_worker_rss_mb"] for e in result["scale_out"].values())
    one = result["scale_out"].get("1")
    for workers in ("2", "4"):
        if one and workers in result["scale_out"]:
            result[f"scale_out_{workers}_workers"] = round(
                one["seconds"] / result["scale_out"][workers]["seconds"], 2
            )
    result["bench_seconds"] = round(time.monotonic() - started)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    if records != DEFAULT_RECORDS:  # keep the default-scale result of the day next to other scales
        stamp += f"-{records}"
    (RESULTS / f"{stamp}.json").write_text(json.dumps(result, indent=2))
    table = markdown(result)
    (RESULTS / f"{stamp}.md").write_text(table)
    print("\n" + table)
    return 0


def markdown(r: dict) -> str:
    head, floor = r["full_sync"], r["storage_floor"]
    first = next(iter(r["scale_out"].values()))
    rows = [
        ("records read (both sides, all mappings)", f"{head['records']:,}"),
        (
            f"full sync, fastest ({head['workers']} worker(s))",
            f"{head['seconds']} s, {head['records_per_min']:,} records/min, {head['requests']} API requests "
            f"(bulk-optimal {head['optimal_requests']}), {head['table_entity_ops']:,} table entity ops "
            f"in {head['table_requests']:,} requests",
        ),
        ("raw-transfer baseline", f"{r['baseline_seconds']} s"),
        ("**engine / baseline**", r["engine_to_baseline"]),
        ("**requests / bulk-optimal**", r["requests_to_optimal"]),
        (
            f"**modified sync, 100 changes**, {r['modified_large']['records']:,} customers",
            f"{r['modified_large']['requests']} requests, {r['modified_large']['seconds']} s",
        ),
        (
            f"modified sync, 100 changes, {r['modified_small']['records']:,} customers",
            f"{r['modified_small']['requests']} requests, {r['modified_small']['seconds']} s",
        ),
        ("**peak worker RSS**", f"{r['peak_rss_mb']} MB"),
    ]
    for workers, e in r["scale_out"].items():
        cpu = e.get("cpu_seconds", {})
        rows.append(
            (
                f"full sync, {workers} worker(s)",
                f"{e['seconds']} s, {e['records_per_min']:,} records/min, "
                f"peak RSS {e['peak_worker_rss_mb']} MB; CPU s: Azurite {cpu.get('azurite')}, "
                f"workers {cpu.get('workers')}, emulators {cpu.get('emulators')}",
            )
        )
    for workers in ("2", "4"):
        if f"scale_out_{workers}_workers" in r:
            rows.append((f"**speed-up with {workers} workers**", f"{r[f'scale_out_{workers}_workers']}×"))
    rows += [
        (
            "storage floor",
            f"{floor['seconds']} s to insert the {floor['coupling_rows']:,} coupling rows "
            "in full transactions",
        ),
        (
            f"engine ({first['seconds']} s) / (baseline + storage floor)",
            r["engine_to_baseline_plus_storage"],
        ),
    ]
    m = r["machine"]
    intro = (
        f"Measured {r['date'][:10]} on {m['cpus']} CPUs / {m['memory_gb']} GiB, Python {m['python']}: "
        f"{r['records']:,} customers, {r['latency_ms']} ms injected latency per request, "
        f"whole benchmark {r['bench_seconds'] / 60:.1f} min.\n\n"
    )
    return intro + "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
