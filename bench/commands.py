"""The command path over HTTP, beside the ceiling of a bare no-op FastAPI endpoint.

Workload: 16 keep-alive clients send 4,000 ticket commands (open, respond, time, pause,
resume, classify, in a cycle), each on its own contract, as an agent presenting an issued
token (so every command pays for the token check, as a real client's does); per-request latency. The same load
generator drives, in the same sitting: the no-op app of bench/noop.py (same bodies, same
server), the backend's commands without idempotency keys, and with a key on every command
(what a client that retries sends). Both are served by uvicorn with the same worker count
(TICKETING_API_WORKERS, default 1) and, where installed, the same loop and HTTP parser.
Printed side by side: rate, p50 and p99 latency, and each command rate as a share of the
no-op's. Where the caller can stop the relay and the runners (`make bench`), the plain load
runs once more with them stopped: the command path alone (API and PostgreSQL), which on a
machine of few cores otherwise shares them with the consumers; they are then started again
and the time they take to catch up is printed. `python -m bench.commands URL [URL ...]` drives running backends (for example an
older checkout's, to compare side by side).
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from bench.stats import summary
from infra.process import embedded

CLIENTS = 16
COMMANDS = 4000


def drive(base: str, name: str, keys: bool = False, token: str | None = None) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base, timeout=30, headers=auth) as c:
        contracts = [c.post("/contracts", json={"customer": f"bench {i}", "plan": "crm-experts/platinum",
                                                "starts_on": "2026-01-01"}).json()["contract_id"] for i in range(CLIENTS)]
    latencies: list[float] = []
    lock = threading.Lock()

    def client(cid: str) -> None:
        mine = _commands(base, cid, COMMANDS // CLIENTS, keys, auth)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(cid,)) for cid in contracts]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summary(name, len(latencies), time.perf_counter() - started, latencies, unit="commands/s")


def _commands(base: str, cid: str, count: int, keys: bool, auth: dict[str, str]) -> list[float]:
    mine: list[float] = []
    with httpx.Client(base_url=base, timeout=30, headers=auth) as c:
        tid = None
        for step in itertools.islice(itertools.cycle(["open", "respond", "time", "pause", "resume", "classify"]),
                                     count):
            headers = {"Idempotency-Key": str(uuid.uuid4())} if keys else {}
            started = time.perf_counter()
            if step == "open":
                r = c.post("/tickets", json={"contract_id": cid, "title": "bench", "reporter": "b"}, headers=headers)
                tid = r.json()["ticket_id"]
            elif step == "time":
                r = c.post(f"/tickets/{tid}/time", json={"minutes": 5, "kind": "work"}, headers=headers)
            elif step == "classify":
                r = c.post(f"/tickets/{tid}/classify", json={"priority": "P2"}, headers=headers)
            else:
                r = c.post(f"/tickets/{tid}/{step}", json={}, headers=headers)
            assert r.status_code in (200, 201), r.text
            mine.append((time.perf_counter() - started) * 1000)
    return mine


def noop_ceiling() -> dict[str, Any]:
    """The same load on bench/noop.py, served in a process of its own."""
    port = embedded.free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.noop", str(port)])  # workers: as the API's
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/docs", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return drive(base, "no-op FastAPI endpoint (ceiling)", token="tk_" + "0" * 32 + "_" + "x" * 43)
    finally:
        server.terminate()
        server.wait(10)


def side_by_side(base: str, quiet: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
                 ) -> list[dict[str, Any]]:
    """The ceiling, then the backend at `base` without and with idempotency keys, as an agent
    (the token is issued on the open API of `make run`, where a request without one is admin);
    then, given `quiet` (stops the consumers for the span of a `with`), the command path alone."""
    issued = httpx.post(f"{base}/tokens", json={"role": "agent", "name": "bench"}, timeout=30)
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    ceiling = noop_ceiling()
    rows = [drive(base, "http commands, agent token (16 clients)", token=token),
            drive(base, "http commands, agent token, Idempotency-Key", keys=True, token=token)]
    if quiet is not None:
        with quiet():
            rows.append(drive(base, "the same, relay and runners stopped", token=token))
    for row in rows:
        row["of_ceiling"] = f"{100 * row['rate'] / ceiling['rate']:.0f}%"
    print(table([ceiling, *rows]), flush=True)
    return [ceiling, *rows]


def table(rows: list[dict[str, Any]]) -> str:
    """The side-by-side figures: rate, latency percentiles, share of the no-op's rate."""
    lines = [f"{'':<48} {'commands/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'of no-op':>9}"]
    for row in rows:
        lines.append(f"{row['benchmark']:<48} {row['rate']:>10,.0f} {row.get('p50_ms', 0):>8.1f}"
                     f" {row.get('p99_ms', 0):>8.1f} {row.get('of_ceiling', '100%'):>9}")
    rule = "=" * len(lines[0])
    return "\n".join([rule, *lines, rule])


if __name__ == "__main__":
    for url in sys.argv[1:]:
        print(url)
        side_by_side(url)
