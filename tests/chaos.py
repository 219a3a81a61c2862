"""Chaos: clients send commands with idempotency keys and retry on any connection error, while
the backend's processes are killed at random moments and PostgreSQL and the broker restart.

`ticketing run` runs the backend on a data dir of its own (embedded PostgreSQL and broker).
Clients open tickets (the title is the command's tag), record time (the engineer is the tag)
and announce maintenance (the reason is the tag) on hour-bank contracts that the renewals
pass renews meanwhile. The chaos thread SIGKILLs the API, the relay, each runner, the
renewals pass and `ticketing run` itself (then starts it again on the same data), and
restarts PostgreSQL and the broker once each. At the end: every command a client saw
succeed is in the store exactly once and nothing else is; no process is left over; every
read model equals a clean rebuild; and `ticketing run` starts again on the same data.

`make chaos` runs the long version (`python -m tests.chaos --commands 5000`); `make test`
runs a short one (tests/e2e/test_chaos.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from infra import sealing
from infra.process import embedded
from tests.backends import stop_postgres

ROLES = {"api": "infra.process.cli api", "relay": "infra.process.cli relay", "renewals": "infra.process.cli renewals",
         **{f"consume-{p}": f"infra.process.cli consume {p}" for p in ("availability", "ledger", "sla", "tickets")}}
RETRY = {502, 503, 504}


@dataclass
class Outcome:
    """What the clients and the chaos saw."""

    succeeded: dict[str, dict[str, Any]] = field(default_factory=dict)  # tag -> what was asked and answered
    refused: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    restarts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Run:
    """`ticketing run` on a data dir, started and killed as a user (or the kernel) would."""

    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port = data, port
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 180) -> None:
        env = dict(os.environ, TICKETING_DATA_DIR=str(self.data), TICKETING_HTTP_PORT=str(self.port),
                   TICKETING_KAFKA_PORT=str(embedded.free_port(avoid={self.port})),
                   TICKETING_RENEWALS_INTERVAL="1", TICKETING_JSON_LOGS="1")
        env.pop("DATABASE_URL", None)
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        log = open(self.data.parent / "run.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen([sys.executable, "-m", "infra.process.cli", "run"], env=env, stdout=log,
                                     stderr=subprocess.STDOUT)
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/health", timeout=3).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("the backend did not become healthy")

    def family(self) -> list[psutil.Process]:
        assert self.proc is not None
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def child(self, role: str) -> psutil.Process | None:
        wanted = ROLES[role]
        found = [p for p in self.family() if wanted in " ".join(_cmdline(p))]
        return min(found, key=lambda p: p.create_time()) if found else None

    def broker(self) -> psutil.Process | None:
        return next((p for p in self.family() if "broker" in " ".join(_cmdline(p))), None)

    def stop(self) -> list[psutil.Process]:
        """SIGTERM it; return whatever of its family outlived it."""
        assert self.proc is not None
        family = self.family()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(90)
        _, alive = psutil.wait_procs(family, timeout=20)
        return alive

    @property
    def url(self) -> str:
        return json.loads((self.data / "run.json").read_text())["database_url"]


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


# -- clients ------------------------------------------------------------------------------------


class Client(threading.Thread):
    """Sends its share of commands, each with its own key, retrying until a definite answer."""

    def __init__(self, run: Run, outcome: Outcome, contracts: list[str], commands: int, seed: int,
                 duration: float) -> None:
        super().__init__(daemon=True)
        self.run_, self.outcome, self.contracts = run, outcome, contracts
        self.commands, self.rng, self.seed = commands, random.Random(seed), seed
        self.gap = duration / max(1, commands)  # spread over the chaos
        self.tickets: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.run_.base_url, timeout=20) as http:
            for n in range(self.commands):
                tag = f"c{self.seed}-{n}-{uuid.uuid4().hex[:6]}"
                path, body = self._next(tag)
                self._send(http, tag, path, body)
                time.sleep(self.rng.uniform(0, 2 * self.gap))

    def _next(self, tag: str) -> tuple[str, dict[str, Any]]:
        roll = self.rng.random()
        if not self.tickets or roll < 0.2:
            return "/tickets", {"contract_id": self.rng.choice(self.contracts), "title": tag, "reporter": "chaos"}
        if roll < 0.3:
            start = datetime.now(UTC) + timedelta(days=self.rng.randint(1, 600))
            return f"/contracts/{self.rng.choice(self.contracts)}/maintenance", {
                "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat(), "reason": tag}
        return f"/tickets/{self.rng.choice(self.tickets)}/time", {"minutes": self.rng.randint(1, 90),
                                                                  "kind": "work", "engineer": tag}

    def _send(self, http: httpx.Client, tag: str, path: str, body: dict[str, Any]) -> None:
        key = str(uuid.uuid4())
        while True:
            try:
                response = http.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                self._retried()
                continue
            busy = response.status_code == 409 and "still running" in response.text
            if response.status_code in RETRY or busy:
                self._retried()
                continue
            with self.outcome.lock:
                if response.status_code < 300:
                    self.outcome.succeeded[tag] = {"path": path, "body": body, "answer": response.json()}
                else:
                    self.outcome.refused[tag] = response.status_code
            if response.status_code == 201 and path == "/tickets":
                self.tickets.append(response.json()["ticket_id"])
            return

    def _retried(self) -> None:
        with self.outcome.lock:
            self.outcome.retries += 1
        time.sleep(0.2)


# -- chaos --------------------------------------------------------------------------------------


def faults(rng: random.Random) -> list[str]:
    """Every process killed twice, PostgreSQL and the broker restarted and `ticketing run`
    killed once each, in a random order."""
    plan = [*ROLES, *ROLES, "postgres", "broker", "run"]
    rng.shuffle(plan)
    return plan


def chaos(run: Run, outcome: Outcome, plan: list[str], rng: random.Random, pace: float) -> None:
    """Kill and restart things at random moments, one every `pace` seconds or so."""
    while plan:
        time.sleep(rng.uniform(0.5, 1.5) * pace)
        what = plan.pop()
        if what == "postgres":
            _restart_postgres(run)
            outcome.restarts["postgres"] += 1
        elif what == "run":
            run.proc.send_signal(signal.SIGKILL)
            run.proc.wait(10)
            outcome.kills["run"] += 1
            time.sleep(1)
            run.start()
        else:
            victim = run.broker() if what == "broker" else run.child(what)
            if victim is not None:
                victim.send_signal(signal.SIGKILL)
                (outcome.restarts if what == "broker" else outcome.kills)[what] += 1


def _restart_postgres(run: Run) -> None:
    stop_postgres(run.data / "pg")
    time.sleep(2)
    embedded.start_postgres(run.data)


# -- the checks ---------------------------------------------------------------------------------


def tags_in_store(url: str, types: Counter[str] | None = None) -> Counter[str]:
    """How many stored events carry each client tag (title, engineer or reason); `types`
    counts the stored events by type."""
    found: Counter[str] = Counter()
    with psycopg.connect(url) as conn:
        keys = {str(c): bytes(k) for c, k in conn.execute("SELECT contract_id, key FROM es.contract_keys WHERE key IS NOT NULL")}
        for originator, topic, state in conn.execute("SELECT originator_id, topic, state FROM es.ticketing_events"):
            if types is not None:
                types[topic.rpartition(":")[2]] += 1
            fields = json.loads(bytes(state))
            contract_id = fields.get("contract_id") or str(originator)
            for name in ("title", "engineer", "reason"):  # stored sealed under the contract's key
                value = fields.get(name)
                opened = sealing.open_sealed(keys.get(contract_id), contract_id, value) if isinstance(value, str) else None
                if opened is not None and opened.startswith("c"):
                    found[opened] += 1
    return found


def sign_contracts(run: Run, count: int) -> list[str]:
    long_ago = datetime.now(UTC) - timedelta(days=2 * 366)
    with httpx.Client(base_url=run.base_url, timeout=30) as http:
        return [http.post("/contracts", json={"customer": "Chaos", "plan": "crm-experts/gold",
                                              "starts_on": long_ago.date().isoformat(),
                                              "at": long_ago.isoformat()}).json()["contract_id"]
                for _ in range(count)]


def rebuild_differences(run: Run, compared: Counter[str]) -> dict[str, Any]:
    """Each projection rebuilt from the store: the read-model rows that differ from the live
    ones (and, in `compared`, how many rows each projection has)."""
    env = dict(os.environ, TICKETING_DATA_DIR=str(run.data), DATABASE_URL=run.url, TICKETING_JSON_LOGS="1")
    env["KAFKA_BOOTSTRAP_SERVERS"] = json.loads((run.data / "run.json").read_text())["kafka_bootstrap"]
    found: dict[str, Any] = {}
    for projection in ("tickets", "ledger", "sla", "availability"):
        out = subprocess.run([sys.executable, "-m", "infra.process.cli", "rebuild", projection], env=env,
                             capture_output=True, text=True, timeout=600, check=True).stdout
        changed = json.loads(out[out.index("{"):])["changed"]
        compared[projection] = sum(c["before"] for c in changed.values())
        found[projection] = {t: c for t, c in changed.items() if c["only_before"] or c["only_after"]}
    return found


def head(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM es.ticketing_events").fetchone()
    return int(row[0]) if row else 0


def caught_up(run: Run, contract_id: str, position: int) -> None:
    """Until every read model consumed everything recorded."""
    paths = [f"/contracts/{contract_id}/tickets", f"/contracts/{contract_id}/ledger",
             f"/contracts/{contract_id}/sla", f"/contracts/{contract_id}/availability"]
    deadline = time.monotonic() + 120
    for path in paths:
        while True:
            response = httpx.get(f"{run.base_url}{path}", params={"wait_for": position}, timeout=30)
            if response.status_code == 200:
                break
            assert time.monotonic() < deadline, f"{path}: {response.status_code} {response.text}"


def play(data: Path, commands: int, clients: int, pace: float, seed: int = 7) -> dict[str, Any]:
    """The whole scenario; returns the tallies and what the checks found (empty when all hold)."""
    run = Run(data, embedded.free_port())
    data.mkdir(parents=True, exist_ok=True)
    run.start()
    try:
        return _play(run, commands, clients, pace, random.Random(seed), seed)
    finally:
        if run.proc is not None and run.proc.poll() is None:  # a failed check: leave nothing behind
            run.proc.send_signal(signal.SIGKILL)
            run.proc.wait(10)
            embedded.stop_postgres(run.data)


def _play(run: Run, commands: int, clients: int, pace: float, rng: random.Random, seed: int) -> dict[str, Any]:
    outcome = Outcome()
    contracts = sign_contracts(run, 6)
    plan = faults(rng)
    duration = len(plan) * pace
    workers = [Client(run, outcome, contracts, commands // clients, seed * 100 + i, duration) for i in range(clients)]
    for worker in workers:
        worker.start()
    chaos(run, outcome, plan, rng, pace)
    for worker in workers:
        worker.join()
    run.wait_healthy()
    caught_up(run, contracts[0], head(run.url))
    types: Counter[str] = Counter()
    compared: Counter[str] = Counter()
    stored = tags_in_store(run.url, types)
    problems: dict[str, Any] = {
        "doubled": sorted(t for t in outcome.succeeded if stored[t] > 1),
        "lost": sorted(t for t in outcome.succeeded if stored[t] == 0),
        "unasked": sorted(t for t in stored if t not in outcome.succeeded),
        "read_models": {p: d for p, d in rebuild_differences(run, compared).items() if d},
    }
    problems["left_over"] = [" ".join(_cmdline(p)) for p in run.stop()]
    run.start()
    problems["after_restart"] = tags_in_store(run.url) != stored
    problems["left_over"] += [" ".join(_cmdline(p)) for p in run.stop()]
    tallies = {"commands": commands, "succeeded": len(outcome.succeeded), "refused": len(outcome.refused),
               "retries": outcome.retries, "kills": dict(outcome.kills), "restarts": dict(outcome.restarts),
               "duplicates": len(problems["doubled"]), "lost": len(problems["lost"]),
               "stored_events": dict(types), "read_model_rows_compared": dict(compared)}
    return {"tallies": tallies, "problems": {k: v for k, v in problems.items() if v}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pace", type=float, default=4.0, help="mean seconds between two faults")
    parser.add_argument("--data", type=Path, default=Path("var") / "chaos")
    args = parser.parse_args()
    data = args.data / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    result = play(data, args.commands, args.clients, args.pace)
    print(json.dumps(result, indent=2))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
