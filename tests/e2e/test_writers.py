"""Several writer processes on the same aggregates: eight API processes and the renewals pass.

Sixteen clients add credits to four credit contracts (half of them spelling the ids in
capitals), record time on their tickets and announce maintenance on hour-bank contracts that
the renewals pass is renewing at the same time. Nothing may answer 5xx; every command that
answered 2xx is in the store exactly once; no aggregate has a version gap and every one
loads; the ledger read model equals what the store's events add up to; and all of it stays
within PostgreSQL's default 100 connections.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from tests.backends import Isolated, isolated
from tests.factories import post

CLIENTS = 16
ROUNDS = 60


@pytest.fixture(scope="module")
def writers(servers: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Isolated]:
    with isolated(servers, tmp_path_factory.mktemp("writers"), extra=("renewals",), api_workers=8,
                  renewals_interval=0.2) as backend:
        yield backend


def setup_contracts(client: httpx.Client) -> tuple[list[str], list[str], list[str]]:
    credit = [post(client, "/contracts", 201, customer="Acme", plan="dolibarr/credits", starts_on="2026-01-01",
                   at="2026-01-01T00:00:00Z")["contract_id"] for _ in range(4)]
    for cid in credit:
        post(client, f"/contracts/{cid}/credits", credits=100_000)
    tickets = [post(client, "/tickets", 201, contract_id=cid, title="t", reporter="r")["ticket_id"] for cid in credit]
    long_ago = datetime.now(UTC) - timedelta(days=3 * 366)
    banks = [post(client, "/contracts", 201, customer="Acme", plan="crm-experts/gold",
                  starts_on=long_ago.date().isoformat(), at=long_ago.isoformat())["contract_id"] for _ in range(8)]
    return credit, tickets, banks


def one_client(base_url: str, seed: int, credit: list[str], tickets: list[str], banks: list[str]
               ) -> list[tuple[str, str, int, dict[str, Any]]]:
    rng, done = random.Random(seed), []
    with httpx.Client(base_url=base_url, timeout=60) as c:
        for _ in range(ROUNDS):
            kind = rng.choice(["credits", "credits", "time", "maintenance"])
            spell = str.upper if seed % 2 else str.lower
            if kind == "credits":
                target = rng.choice(credit)
                r = c.post(f"/contracts/{spell(target)}/credits", json={"credits": 1},
                           headers={"Idempotency-Key": str(uuid.uuid4())})
            elif kind == "time":
                target = rng.choice(tickets)
                r = c.post(f"/tickets/{spell(target)}/time", json={"minutes": 15, "kind": "query"})
            else:
                target = rng.choice(banks)
                start = datetime.now(UTC) + timedelta(days=rng.randint(1, 300))
                r = c.post(f"/contracts/{spell(target)}/maintenance", json={
                    "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()})
            done.append((kind, target, r.status_code, r.json()))
    return done


def histories(client: httpx.Client, contracts: list[str], banks: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every contract's history (each must load), once the renewals pass renewed the banks."""
    deadline = time.monotonic() + 30
    while True:
        found = {}
        for cid in contracts:
            response = client.get(f"/contracts/{cid}/history")
            assert response.status_code == 200, response.text
            found[cid] = response.json()["events"]
        renewed = [sum(e["type"] == "Contract.Renewed" for e in found[b]) for b in banks]
        if all(n == 3 for n in renewed) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_eight_api_processes_and_the_renewals_pass_lose_and_double_nothing(writers: Isolated) -> None:
    with writers.client() as client:
        credit, tickets, banks = setup_contracts(client)
        with ThreadPoolExecutor(CLIENTS) as pool:
            running = [pool.submit(one_client, writers.base_url, s, credit, tickets, banks) for s in range(CLIENTS)]
            time.sleep(2)
            with writers.connect() as conn:
                row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()").fetchone()
            results = [r for future in running for r in future.result()]
        assert row is not None and row[0] < 100, f"{row[0]} connections under load"
        codes = Counter(code for _, _, code, _ in results)
        assert all(code < 500 for code in codes), codes
        assert codes[200] > 0.95 * len(results), codes  # a 409 only after repeated lost races
        ok = [(kind, target, answer["position"]) for kind, target, code, answer in results if code == 200]
        events = histories(client, credit + banks, banks)
        by_position = {e["position"]: e for found in events.values() for e in found}
        expected = {"credits": "Contract.CreditsAdded", "time": "Ticket.TimeConsumed",
                    "maintenance": "Contract.MaintenanceScheduled"}
        for kind, target, position in ok:
            assert by_position[position]["type"] == expected[kind]
            assert by_position[position]["aggregate_id"] == target
        for found in events.values():  # no version gaps, nothing that no 2xx answered for
            versions: dict[str, list[int]] = {}
            for e in found:
                versions.setdefault(e["aggregate_id"], []).append(e["aggregate_version"])
            assert all(v == list(range(1, len(v) + 1)) for v in versions.values())
        answered = Counter(kind for kind, _, _ in ok)
        recorded = Counter(e["type"] for found in events.values() for e in found)
        assert recorded["Contract.CreditsAdded"] == answered["credits"] + 4
        assert recorded["Ticket.TimeConsumed"] == answered["time"]
        assert recorded["Contract.MaintenanceScheduled"] == answered["maintenance"]
        assert all(sum(e["type"] == "Contract.Renewed" for e in events[b]) == 3 for b in banks)
        head = max(by_position)
        for cid in credit:
            ledger = client.get(f"/contracts/{cid}/ledger", params={"wait_for": head}).json()
            adds = [e for e in events[cid] if e["type"] == "Contract.CreditsAdded"]
            entries = [e for e in events[cid] if e["type"] == "Ticket.TimeConsumed"]
            assert ledger["granted"] == sum(e["credits"] for e in adds)
            assert ledger["used"] == 15 * len(entries)
