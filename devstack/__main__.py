"""`python -m devstack up|down`: the local stack (Azurite, token authority, emulators, Functions host)."""

import argparse
import json
import os
import signal
import time

from devstack import procs
from devstack.stack import Stack, down


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything on free ports and run until interrupted")
    up.add_argument("--data", choices=["demo", "none"], default="demo")
    up.add_argument("--records", type=int, default=1000, help="demo customers (other entities scale with it)")
    up.add_argument("--workers", type=int, default=0, help="extra queue-consuming host processes")
    up.add_argument(
        "--persist", action="store_true", help="keep Azurite data on disk under .devstack/azurite"
    )
    sub.add_parser("down", help="stop what `up` started")
    args = parser.parse_args()
    if args.command == "down":
        stopped = down(procs.STATE_DIR)
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    stopping = False

    def interrupt(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    stack = Stack.start(
        procs.STATE_DIR,
        data=args.data,
        records=args.records,
        workers=args.workers,
        in_memory=not args.persist,
    )
    stack.endpoints["pids"]["up"] = os.getpid()  # `down` stops this process first; it stops the rest
    stack.write_files()
    try:
        e = stack.endpoints
        print(
            json.dumps(
                {k: v for k, v in e.items() if k not in ("pids", "storage_connection_string")}, indent=2
            )
        )
        print(f"portal: {e['host']}/api/portal?code={e['function_key']}")
        print(f"endpoints: {procs.STATE_DIR / 'endpoints.json'} — Ctrl-C stops everything", flush=True)
        while not stopping:
            time.sleep(0.5)
    finally:
        stack.stop()
        (procs.STATE_DIR / "endpoints.json").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
