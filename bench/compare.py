"""Two checkouts' command paths side by side, in one sitting: `python -m bench.compare OTHER_TREE`.

Each tree's own `ticketing run` (from its `.venv`) starts on a fresh data dir, and the same
load generator (bench/commands.py: the no-op ceiling, then commands without and with
idempotency keys) drives it; the two trees alternate twice, so a machine whose speed drifts
shows it. Use it to compare a change with the main it started from.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import commands
from infra.process import embedded


def serve(tree: Path) -> tuple[subprocess.Popen[bytes], str]:
    data, port = Path(tempfile.mkdtemp(prefix="ticketing-compare-")), embedded.free_port()
    env = dict(os.environ, TICKETING_DATA_DIR=str(data), TICKETING_HTTP_PORT=str(port), TICKETING_JSON_LOGS="1",
               TICKETING_KAFKA_PORT=str(embedded.free_port(avoid={port})))
    env.pop("DATABASE_URL", None)
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    log = open(data / "run.log", "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen([str(tree / ".venv" / "bin" / "ticketing"), "run"], cwd=tree, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=3).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    raise RuntimeError(f"{tree}: the backend did not become healthy")


def main() -> int:
    trees = [Path(sys.argv[1]).resolve(), Path.cwd().resolve()]
    for tree in trees * 2:
        print(f"\n== {tree}", flush=True)
        proc, base = serve(tree)
        try:
            commands.side_by_side(base)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(90)
    return 0


if __name__ == "__main__":
    sys.exit(main())
