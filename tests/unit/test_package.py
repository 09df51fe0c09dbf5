"""The deployment package: the tracked files less what .funcignore leaves out (git's own gitignore
matching) holds the app and everything it imports or reads, and nothing dev-only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = (
    "devstack/", "tests/", "bench/", "node_modules/", ".devstack/", "test-artifacts/", ".venv/",
    "infra/", "docs/", ".github/", ".ci/", "bc-extension/", ".hypothesis/", ".pytest_cache/",
)  # fmt: skip
DEV_FILES = ("requirements-dev.txt", "package.json", "package-lock.json", "local.settings.json", "Makefile")


def git(*args: str) -> list[str]:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


def package() -> set[str]:
    """What `azd deploy` would zip from a clean clone."""
    tracked = set(git("ls-files", "--cached"))
    ignored = set(git("ls-files", "--cached", "--ignored", "--exclude-from=.funcignore"))
    return {p for p in tracked - ignored if (ROOT / p).is_file()}


def test_no_dev_only_folder_or_file_is_deployed():
    files = package()
    leaked = sorted(p for p in files if p.startswith(DEV_ONLY) or p in DEV_FILES or "/__pycache__/" in p)
    assert not leaked, f"dev-only files in the deployment package: {leaked[:20]}"
    # Folders that exist only locally (never tracked) are listed in .funcignore too: a deploy zips
    # the folder, not the git tree.
    rules = {line.strip() for line in (ROOT / ".funcignore").read_text().splitlines()}
    missing = [d for d in DEV_ONLY if d not in rules]
    assert not missing, f".funcignore lacks {missing}"


def test_the_package_holds_the_app_its_imports_and_the_files_it_reads():
    files = package()
    assert {"function_app.py", "host.json", "requirements.txt"} <= files
    # Every module of this repository that importing the app loads (the Functions worker does that).
    probe = (
        "import json, sys, function_app; from pathlib import Path; root = Path.cwd().resolve(); "
        "paths = [Path(m.__file__).resolve() for m in list(sys.modules.values()) "
        "if getattr(m, '__file__', None)]; "
        "print(json.dumps(sorted(str(p.relative_to(root)) for p in paths if p.is_relative_to(root))))"
    )
    env = {"PATH": "/usr/bin:/bin", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    modules = [m for m in json.loads(out.stdout) if ".venv" not in m]
    assert "shared/telemetry.py" in modules and "functions/worker.py" in modules
    absent = [m for m in modules if m not in files]
    assert not absent, f"imported by the app but not deployed: {absent}"
    # Data files read at run time: the portal page, contracts, ribbon messages.
    for folder in ("portal/", "shared/", "functions/"):
        tracked = {p for p in git("ls-files", "--cached", folder) if not p.endswith(".pyc")}
        assert tracked and tracked <= files, sorted(tracked - files)[:10]


def test_package_size_stays_small():
    files = package()
    size = sum((ROOT / p).stat().st_size for p in files)
    # README "Deployment" states the measured size; a dev folder slipping in would multiply it.
    assert len(files) < 250 and size < 5_000_000, (len(files), size)
