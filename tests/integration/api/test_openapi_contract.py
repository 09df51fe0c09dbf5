"""/api/openapi.json is true to the app: schemathesis (seeded, deterministic, a fixed number of
examples per operation, every check) against a fresh local stack running function_app.py.

State-changing operations run too — against this stack only, which holds no data. Where a check is
off for an operation, tests/integration/api/schemathesis.toml says why.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from devstack.stack import Stack
from tests.integration.api.conftest import start_stack

HERE = Path(__file__).resolve().parent
SEED = "20261202"
EXAMPLES = "8"  # per operation and phase


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory, "openapi", data="none")
    yield stack
    stack.stop()


def test_the_served_document_is_valid_openapi(fresh):
    e = fresh.endpoints
    doc = httpx.get(f"{e['host']}/api/openapi.json", headers={"x-functions-key": e["function_key"]}).json()
    validate(doc)
    assert doc["paths"]


@pytest.mark.timeout(900)
def test_schemathesis_finds_no_failure(fresh, tmp_path):
    e = fresh.endpoints
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml"),
        "--no-color", "run", f"{e['host']}/api/openapi.json", "-H", f"x-functions-key: {e['function_key']}",
        "--seed", SEED, "--generation-deterministic", "--max-examples", EXAMPLES,
        "--workers", "1", "--suppress-health-check", "all", "--request-timeout", "60",
        "--phases", "examples,coverage,fuzzing", "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=840, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-20000:]
    selected, tested = re.search(r"Selected: (\d+)/", out), re.search(r"Tested: (\d+)", out)
    assert selected and tested and tested.group(1) == selected.group(1), out[-3000:]  # none skipped
    cases = re.search(r"(\d+) generated", out)
    assert cases and int(cases.group(1)) >= 20 * int(tested.group(1)), out[-3000:]
