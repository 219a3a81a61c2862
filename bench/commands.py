"""The command path over HTTP, beside the ceiling of a bare no-op FastAPI endpoint.

Workload: 16 keep-alive clients send 4,000 ticket commands (open, respond, time, pause,
resume, classify, in a cycle), each on its own contract, as an agent presenting an issued
token (so every command pays for the token check, as a real client's does); per-request latency. The same load
generator drives, in the same sitting: the no-op app of bench/noop.py (same bodies, same
server), the backend's commands without idempotency keys, and with a key on every command
(what a client that retries sends). Both are served by uvicorn with the same worker count
(TICKETING_API_WORKERS, default 1) and, where installed, the same loop and HTTP parser.
The no-op is measured before the first command run and after each one, and each command rate
is set beside the mean of the two ceilings next to it (the machine's speed drifts within
minutes). Printed side by side: rate, p50 and p99 latency, the no-op rate beside, and each
command rate as a share of it. Where the caller can stop the relay and the runners (`make
bench`), the plain and the keyed loads run once more with them stopped: the command path
alone (API and PostgreSQL), which on a machine of few cores otherwise shares them with the
consumers; they are then started again and the time they take to catch up is printed.
`python -m bench.commands URL [URL ...]` drives running backends (for example an
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
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def noop_server() -> Iterator[str]:
    """bench/noop.py served in a process of its own, for the span of a `with`: its base URL."""
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
        yield base
    finally:
        server.terminate()
        server.wait(10)


def settle(base: str, timeout: float = 120) -> None:
    """Wait until the backend's relay and read models have consumed everything stored (its
    /metrics says no lag): a backend without /metrics, or that the caller may not read, is
    not waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{base}/metrics", timeout=30)
        if answer.status_code != 200:
            return
        lags = [float(line.rsplit(" ", 1)[1]) for line in answer.text.splitlines()
                if line.startswith(("ticketing_relay_lag_events", "ticketing_projection_lag_events"))]
        if not any(lags):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the backend at {base} did not catch up within {timeout:.0f} s")


def side_by_side(base: str, quiet: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
                 ) -> list[dict[str, Any]]:
    """The backend at `base` without and with idempotency keys, as an agent (the token is
    issued on the open API of `make run`, where a request without one is admin); then, given
    `quiet` (stops the consumers for the span of a `with`), the command path alone. The no-op
    ceiling is measured before the first and after each of them, and each is set beside the
    mean of the two ceilings next to it: on a machine whose speed drifts by a factor of two
    within minutes, only a ceiling measured next to a figure says what share it is."""
    issued = httpx.post(f"{base}/tokens", json={"role": "agent", "name": "bench"}, timeout=30)
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    runs: list[Callable[[], dict[str, Any]]] = [
        lambda: drive(base, "http commands, agent token (16 clients)", token=token),
        lambda: drive(base, "http commands, agent token, Idempotency-Key", keys=True, token=token)]
    if quiet is not None:
        def alone(keys: bool = False) -> dict[str, Any]:
            with quiet():
                return drive(base, f"the same{', keyed,' if keys else ','} relay and runners stopped", keys=keys,
                             token=token)
        runs += [alone, lambda: alone(keys=True)]
    with noop_server() as noop:
        def ceiling() -> dict[str, Any]:
            settle(base)  # the consumers finish what the commands left them before the no-op runs
            return drive(noop, "no-op FastAPI endpoint (ceiling)", token="tk_" + "0" * 32 + "_" + "x" * 43)

        ceilings, rows = [ceiling()], []
        for run in runs:
            rows.append(run())
            ceilings.append(ceiling())
    for row, (before, after) in zip(rows, itertools.pairwise(ceilings), strict=True):
        beside = (before["rate"] + after["rate"]) / 2
        row["ceiling"] = round(beside)
        row["of_ceiling"] = f"{100 * row['rate'] / beside:.0f}%"
    print(table(rows, ceilings), flush=True)
    return [*ceilings, *rows]


def table(rows: list[dict[str, Any]], ceilings: list[dict[str, Any]]) -> str:
    """The side-by-side figures: rate, latency percentiles, the no-op rate beside each (the
    mean of the ceilings measured just before and just after it), and the share of it."""
    lines = [f"{'':<48} {'commands/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'no-op beside':>13} {'of no-op':>9}"]
    for row in rows:
        lines.append(f"{row['benchmark']:<48} {row['rate']:>10,.0f} {row.get('p50_ms', 0):>8.1f}"
                     f" {row.get('p99_ms', 0):>8.1f} {row['ceiling']:>13,} {row['of_ceiling']:>9}")
    lines.append(f"{'no-op ceilings, in the order measured':<48} "
                 + ", ".join(f"{c['rate']:,.0f}" for c in ceilings) + " requests/s")
    rule = "=" * len(lines[0])
    return "\n".join([rule, *lines, rule])


if __name__ == "__main__":
    for url in sys.argv[1:]:
        print(url)
        side_by_side(url)
