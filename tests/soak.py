"""Fault soak: full and modified syncs while faults are injected at random (seeded), then invariants.

`make soak` runs it at 10k customers; `tests/integration/test_soak_short.py` runs a short version in
`make test`. Faults: 500/503s, connection resets, 429 storms with Retry-After, latency spikes, a
worker process SIGKILLed mid-run, a queue message delivered twice, Azurite restarted mid-run, and
edits on both sides while the sync runs. Everything is local; every loop is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devstack import demo_data
from devstack.stack import Stack
from shared.store.tables import SYNC_QUEUE
from tests.invariants import Report, check_stack, counters_add_up

TERMINAL = ("Succeeded", "FinishedWithErrors", "Failed", "Cancelled", "AwaitingDecision")
# Ran to their end: the demo data holds records the other side refuses (recorded per-record failures).
COMPLETED = {"Succeeded", "FinishedWithErrors"}


class Soak:
    def __init__(self, records: int, seed: int, state: Path):
        self.rnd = random.Random(seed)
        self.faults: Counter = Counter()
        env = {
            "SLICE_MAX_RECORDS": "500",
            "SLICE_CLAIM_SECONDS": "10",
            "LEASE_SECONDS": "30",
            "SYNC_SCHEDULE": "0 0 0 1 1 *",
            "HTTP_MAX_ATTEMPTS": "12",
        }
        self.stack = Stack.start(state, data="demo", records=records, workers=2, env=env, in_memory=False)
        e = self.stack.endpoints
        self.api = httpx.Client(
            base_url=e["host"], headers={"x-functions-key": e["function_key"]}, timeout=60
        )
        self.seeded = {c["id"] for entity, rows in demo_data.build(records)["bc"].items() for c in rows}
        self.stop = threading.Event()

    def admin(self, side: str, path: str, body=None):
        url = f"{self.stack.endpoints[side]['admin']}{path}"
        return httpx.post(url, json=body, timeout=120) if body is not None else httpx.get(url, timeout=120)

    # --- faults ------------------------------------------------------------------------------------
    def background_faults(self) -> None:
        for side in ("bc", "dataverse"):
            self.admin(
                side,
                "/faults",
                {"error_rate": 0.05, "status": self.rnd.choice([500, 503]), "reset_rate": 0.02},
            )

    def inject(self, kinds: list[str]) -> None:
        """Inject one fault of a random remaining kind, every few seconds, until the run ends."""
        while kinds and not self.stop.wait(self.rnd.uniform(1.0, 3.0)):
            kind = kinds.pop(self.rnd.randrange(len(kinds)))
            side = self.rnd.choice(["bc", "dataverse"])
            if kind == "storm":
                self.admin(side, "/faults", {"throttle": {"requests": 3, "window_s": 2}})
                time.sleep(3)
                self.admin(side, "/faults", {"throttle": None})
            elif kind == "latency":
                self.admin(side, "/faults", {"latency_ms": 300})
                time.sleep(2)
                self.admin(side, "/faults", {"latency_ms": 0})
            elif kind == "kill":
                pids = self.stack.worker_pids()
                os.kill(pids[0], signal.SIGKILL)
            elif kind == "duplicate":
                queue = QueueClient.from_connection_string(
                    self.stack.endpoints["storage_connection_string"],
                    SYNC_QUEUE,
                    message_encode_policy=TextBase64EncodePolicy(),
                    message_decode_policy=TextBase64DecodePolicy(),
                )
                for message in queue.peek_messages(max_messages=5):
                    queue.send_message(message.content)  # the same message, delivered twice
            elif kind == "azurite":
                self.stack.restart_azurite(down_seconds=1.5)
            elif kind == "edits":
                self.edits()
            self.faults[kind] += 1

    def edits(self) -> None:
        customers = [
            c for c in self.admin("bc", "/records/customers").json()["value"] if c["blocked"] != "All"
        ]
        accounts = [
            a
            for a in self.admin("dataverse", "/records/accounts").json()["value"]
            if a["statecode"] == 0 and a.get("customertypecode") == 3
        ]
        stamp = int(time.time())
        picks = self.rnd.sample(customers, min(20, len(customers)))
        self.admin(
            "bc",
            "/seed",
            {"customers": [{"id": c["id"], "phoneNumber": f"+1 {stamp} {i}"} for i, c in enumerate(picks)]},
        )
        new_ids = [f"5eed0000-0000-4000-8000-{stamp % 10**6:06d}{i:06d}" for i in range(5)]
        self.seeded.update(new_ids)
        self.admin(
            "bc",
            "/seed",
            {"customers": [{"id": n, "displayName": f"Soak new {n[-6:]}", "blocked": " "} for n in new_ids]},
        )
        self.admin(
            "dataverse",
            "/seed",
            {
                "accounts": [
                    {"accountid": a["accountid"], "websiteurl": f"www.{stamp}.example"}
                    for a in self.rnd.sample(accounts, min(20, len(accounts)))
                ]
            },
        )

    # --- runs --------------------------------------------------------------------------------------
    def run(self, path: str, body: dict, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            answer = self.api.post(path, json=body)
            if answer.status_code == 202:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(answer.text)
            time.sleep(1)
        run_id = answer.json()["run_id"]
        while time.monotonic() < deadline:
            try:
                run = self.api.get(f"/api/runs/{run_id}").json()
            except (httpx.HTTPError, ValueError):  # storage restarting
                time.sleep(1)
                continue
            if run.get("status") in TERMINAL:  # an error answer (storage restarting) has no status
                return run
            time.sleep(1)
        raise TimeoutError(f"run {run_id} did not end in {timeout} s")

    def execute(self, timeout: float) -> dict:
        started = time.monotonic()
        self.background_faults()
        injector = threading.Thread(
            target=self.inject,
            args=(["storm", "latency", "kill", "duplicate", "azurite", "edits"],),
            daemon=True,
        )
        injector.start()
        runs = [self.run("/api/sync/full", {"after_full_sync": "keep"}, timeout)]
        # Keep modified syncs running until every fault kind has been injected into some run.
        while injector.is_alive() or len(runs) < 2:
            runs.append(self.run("/api/sync/modified", {}, timeout))
        self.stop.set()
        injector.join(timeout=30)
        for side in ("bc", "dataverse"):
            self.admin(side, "/faults", {})
        # Settle without faults: carry the edits made during the runs, then check.
        settle = [self.run("/api/sync/modified", {}, timeout) for _ in range(2)]
        report: Report = check_stack(self.stack.endpoints, self.stack.client_id, self.seeded)
        for run in (*runs, *settle):
            for problem in counters_add_up(run):
                report.add(problem)
        return {
            "seconds": round(time.monotonic() - started, 1),
            "faults_injected": dict(self.faults),
            "emulator_faults": {s: self.admin(s, "/stats").json() for s in ("bc", "dataverse")},
            "runs": [r["status"] for r in (*runs, *settle)],
            **report.summary(),
        }

    def close(self) -> None:
        self.stack.stop()


def soak(records: int, seed: int = 11, timeout: float = 900) -> dict:
    state = Path(tempfile.mkdtemp(prefix="soak-"))
    run = Soak(records, seed, state)
    try:
        return run.execute(timeout)
    finally:
        run.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=3000)
    args = parser.parse_args(argv)
    result = soak(args.records, args.seed, args.timeout)
    print(json.dumps({k: v for k, v in result.items() if k != "violations"}, indent=2))
    for violation in result["violations"][:50]:
        print("VIOLATION", violation)
    ok = not result["violations"] and set(result["runs"]) <= COMPLETED
    print("soak:", "passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
