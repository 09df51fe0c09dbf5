"""The local stack: Azurite, the token authority, both emulators and the Functions host on free ports.

`Stack.start(...)` is used by `python -m devstack up`, the demo, the benchmark and the tests. It writes
`<state>/endpoints.json` (docs/ARCHITECTURE.md §9) and `<state>/local.settings.json` (the host's
settings) and stops exactly the processes it started.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from devstack import procs
from devstack.azurite import Azurite, start_azurite

ALL = ("azurite", "idp", "dataverse", "bc", "host")
BC_AUDIENCE = "https://api.businesscentral.dynamics.com"


class Stack:
    def __init__(
        self,
        state: Path,
        components=ALL,
        workers: int = 0,
        env: dict[str, str] | None = None,
        in_memory: bool = True,
        app: str = "function_app:app",
        host_json: Path | None = None,
    ):
        self.state = state
        self.components = set(components)
        self.workers = workers
        self.extra_env = env or {}
        self.in_memory = in_memory
        self.app, self.host_json = app, host_json
        self.procs: dict[str, subprocess.Popen] = {}
        self.azurite: Azurite | None = None
        self.endpoints: dict[str, Any] = {}
        self.tenant = str(uuid.uuid4())
        self.client_id = str(uuid.uuid4())
        self.client_secret = secrets.token_urlsafe(32)
        self.function_key = secrets.token_urlsafe(32)
        self.ports: dict[str, int] = {}

    @classmethod
    def start(cls, state: Path, data: str = "none", records: int = 1000, **options) -> Stack:
        stack = cls(state, **options)
        try:
            stack._start(data, records)
        except BaseException:
            stack.stop()
            raise
        return stack

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- start -----------------------------------------------------------------------------------------
    def _py(self, *args: str) -> list[str]:
        return [sys.executable, "-m", *args]

    def _start(self, data: str, records: int) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        logs = self.state / "logs"
        if "azurite" in self.components:
            self.azurite = start_azurite(self.state / "azurite", in_memory=self.in_memory)
            self.endpoints["storage_connection_string"] = self.azurite.connection_string
        idp_dir = self.state / "idp"
        if "idp" in self.components:
            port = self.ports["idp"] = procs.free_port()
            self.procs["idp"] = procs.start(
                self._py(
                    "devstack.idp",
                    "--port",
                    str(port),
                    "--state-dir",
                    str(idp_dir),
                    "--tenant",
                    self.tenant,
                    "--client-id",
                    self.client_id,
                    f"--client-secret={self.client_secret}",  # "=": a secret may start with "-"
                ),
                logs / "idp.log",
            )
            procs.wait_for_port(port, proc=self.procs["idp"])
            self.endpoints["idp"] = {
                "authority": f"https://127.0.0.1:{port}/{self.tenant}",
                "ca": str(idp_dir / "ca.pem"),
                "tenant": self.tenant,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
        authority = self.endpoints.get("idp", {}).get("authority", "")
        ca = str(idp_dir / "ca.pem")
        tls = []
        if "dataverse" in self.components and (idp_dir / "server.pem").exists():
            self.ports["dataverse_https"] = procs.free_port()
            tls = ["--https-port", str(self.ports["dataverse_https"])]
        for name, module, extra in (
            ("dataverse", "devstack.dataverse_emulator", tls),
            ("bc", "devstack.bc_emulator", ["--tenant", self.tenant, "--environment", "production"]),
        ):
            if name not in self.components:
                continue
            port = self.ports[name] = procs.free_port()
            self.procs[name] = procs.start(
                self._py(module, "--port", str(port), "--authority", authority, "--ca", ca, *extra),
                logs / f"{name}.log",
            )
        for name in ("dataverse", "bc"):
            if name in self.procs:
                procs.wait_for_port(self.ports[name], proc=self.procs[name])
                base = f"http://127.0.0.1:{self.ports[name]}"
                self.endpoints[name] = {"api": base, "admin": f"{base}/_admin"}
        if "dataverse" in self.procs and tls:
            # The same emulator over TLS (certificate of the devstack CA); the http keys stay as they are.
            procs.wait_for_port(self.ports["dataverse_https"], proc=self.procs["dataverse"])
            self.endpoints["dataverse_https"] = {
                "api": f"https://127.0.0.1:{self.ports['dataverse_https']}",
                "ca": ca,
            }
        if data == "demo":
            self.seed_demo(records)
        if "host" in self.components:
            self._start_host()
        self.write_files()

    def settings(self) -> dict[str, str]:
        values = {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "MALLOC_ARENA_MAX": "2",  # glibc: bound the per-thread heaps (shared/memory.py)
            "AzureWebJobsStorage": self.endpoints.get("storage_connection_string", ""),
            "ENTRA_TENANT_ID": self.tenant,
            "ENTRA_CLIENT_ID": self.client_id,
            "ENTRA_CLIENT_SECRET": self.client_secret,
            "ENTRA_AUTHORITY_HOST": f"https://127.0.0.1:{self.ports.get('idp', 0)}",
            "ENTRA_CA_BUNDLE": str(self.state / "idp" / "ca.pem"),
            "DATAVERSE_URL": self.endpoints.get("dataverse", {}).get("api", ""),
            "BC_API_URL": self.endpoints.get("bc", {}).get("api", ""),
            "BC_TENANT_ID": self.tenant,
            "BC_ENVIRONMENT": "production",
            # The BC emulator serves the project's API page (bc-extension/) as a published extension would.
            "BC_API_ROOTS": "resources=bcsync/crm/v1.0",
            "BC_WEB_CLIENT_URL": "https://businesscentral.dynamics.com",
            "SYNC_SCHEDULE": os.environ.get("SYNC_SCHEDULE", "0 */30 * * * *"),
        }
        values.update(self.extra_env)
        return values

    def _start_host(self) -> None:
        port = self.ports["host"] = procs.free_port()
        settings_file = self.state / "local.settings.json"
        settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": self.settings()}, indent=2))
        env = {k: v for k, v in os.environ.items() if k not in self.settings()}
        env["PYTHONUNBUFFERED"] = "1"
        self.procs["host"] = procs.start(
            self._py(
                "devstack.host",
                "--port",
                str(port),
                "--settings",
                str(settings_file),
                "--workers",
                str(self.workers),
                f"--function-key={self.function_key}",
                "--worker-pids",
                str(self.state / "workers.json"),
                "--app",
                self.app,
                *(["--host-json", str(self.host_json)] if self.host_json else []),
            ),
            self.state / "logs" / "host.log",
            env=env,
        )
        procs.wait_for_port(port, timeout=60, proc=self.procs["host"])
        self.endpoints["host"] = f"http://127.0.0.1:{port}"
        self.endpoints["function_key"] = self.function_key
        if self.app != "function_app:app":
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the health route answers once the app imported and storage works
            try:
                if httpx.get(f"{self.endpoints['host']}/api/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"host did not become healthy; see {self.state / 'logs' / 'host.log'}")

    def seed_demo(self, records: int) -> dict[str, Any]:
        try:
            from devstack import demo_data
        except ImportError:  # written by another part of the project; the stack works without it
            print("devstack.demo_data is not available: starting without demo data", file=sys.stderr)
            return {}

        data = demo_data.build(records)
        for side, key in (("bc", "bc"), ("dataverse", "dataverse")):
            if side in self.endpoints:
                httpx.post(
                    f"{self.endpoints[side]['admin']}/seed", json=data[key], timeout=600
                ).raise_for_status()
        return demo_data.summary(data)

    def write_files(self) -> None:
        self.endpoints["pids"] = {
            **self.endpoints.get("pids", {}),
            **{name: p.pid for name, p in self.procs.items()},
        }
        if self.azurite:
            self.endpoints["pids"]["azurite"] = self.azurite.proc.pid
        self.endpoints["workers"] = self.worker_pids()
        (self.state / "endpoints.json").write_text(json.dumps(self.endpoints, indent=2))

    # --- control -----------------------------------------------------------------------------------------
    def worker_pids(self) -> list[int]:
        path = self.state / "workers.json"
        return json.loads(path.read_text()) if path.exists() else []

    def restart_azurite(self, down_seconds: float = 1.0) -> None:
        """Stop Azurite and start it again on the same ports (data kept when not in memory)."""
        assert self.azurite is not None
        ports = (self.azurite.blob_port, self.azurite.queue_port, self.azurite.table_port)
        self.azurite.stop()
        time.sleep(down_seconds)
        self.azurite = start_azurite(self.state / "azurite", in_memory=self.in_memory, ports=ports)

    def stop(self) -> None:
        for name in ("host", "bc", "dataverse", "idp"):
            proc = self.procs.pop(name, None)
            if proc is not None:
                procs.stop(proc, timeout=30)
        if self.azurite is not None:
            self.azurite.stop()
            self.azurite = None


def down(state: Path) -> list[str]:
    """Stop what `up` started (recorded pids / process groups), nothing else."""
    path = state / "endpoints.json"
    if not path.exists():
        return []
    stopped = []
    pids = json.loads(path.read_text()).get("pids", {})
    up = pids.pop("up", None)
    if up is not None:
        try:
            os.kill(up, signal.SIGTERM)  # `up` stops its children itself
            stopped.append("up")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _alive(up):
                time.sleep(0.2)
        except ProcessLookupError:
            pass
    for name, pid in pids.items():
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped.append(name)
        except (ProcessLookupError, PermissionError):
            continue
    path.unlink(missing_ok=True)
    return stopped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
