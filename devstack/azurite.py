"""Azurite (from node_modules, pinned in package.json): tables and queues on free local ports."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack import procs

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(blob_port: int, queue_port: int, table_port: int) -> str:
    base = "http://127.0.0.1"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={base}:{blob_port}/{ACCOUNT};QueueEndpoint={base}:{queue_port}/{ACCOUNT};"
        f"TableEndpoint={base}:{table_port}/{ACCOUNT};"
    )


@dataclass
class Azurite:
    proc: subprocess.Popen
    blob_port: int
    queue_port: int
    table_port: int
    location: Path

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_port, self.queue_port, self.table_port)

    def stop(self) -> None:
        procs.stop(self.proc)


def start_azurite(
    location: Path, in_memory: bool = False, ports: tuple[int, int, int] | None = None
) -> Azurite:
    """Start Azurite and wait until tables and queues accept connections.

    ``ports`` (blob, queue, table) lets a restart reuse the same endpoints (the soak test restarts it).
    """
    binary = procs.REPO / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        raise RuntimeError("Azurite is not installed: run `npm ci` (make does this for you)")
    blob, queue, table = ports or (procs.free_port(), procs.free_port(), procs.free_port())
    location.mkdir(parents=True, exist_ok=True)
    # AZURITE_NODE_ARGS: extra node flags for profiling (`--cpu-prof --cpu-prof-dir=DIR`), which
    # NODE_OPTIONS does not accept.
    args = [
        "node", *os.environ.get("AZURITE_NODE_ARGS", "").split(), str(binary),
        "--disableTelemetry", "--skipApiVersionCheck", "--loose",
        "--blobHost", "127.0.0.1", "--blobPort", str(blob),
        "--queueHost", "127.0.0.1", "--queuePort", str(queue),
        "--tableHost", "127.0.0.1", "--tablePort", str(table),
    ]  # fmt: skip
    args += ["--inMemoryPersistence"] if in_memory else ["--location", str(location)]
    proc = procs.start(args, location / "azurite.log")
    for port in (queue, table, blob):
        procs.wait_for_port(port, timeout=30, proc=proc)
    return Azurite(proc, blob, queue, table, location)
