"""Waiting requests hold no worker thread, and `/health` answers within two seconds, 503 naming
the part that is down (never its error text), while the store or the broker is away."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from infra.settings import Settings
from tests.backends import Isolated, isolated
from tests.factories import contract, post, ticket
from tests.integration.helpers import eventually
from tests.processes import Processes

WORDS = {"ok", "down", "timeout", "blocked", "no recent heartbeat", "unknown"}


def test_a_hundred_waiting_requests_leave_health_and_commands_answering(
    base_url: str, client: httpx.Client, backend: Processes
) -> None:
    cid = contract(client)
    tid = ticket(client, cid)
    backend.kill("consume-tickets", signal.SIGKILL)
    try:
        position = post(client, f"/tickets/{tid}/respond")["position"]

        def wait(_: int) -> int:
            return httpx.get(f"{base_url}/tickets/{tid}", params={"wait_for": position}, timeout=30).status_code

        with ThreadPoolExecutor(100) as pool:
            waiting = [pool.submit(wait, i) for i in range(100)]
            time.sleep(1.0)
            assert not any(w.done() for w in waiting)
            started = time.monotonic()
            assert client.get("/health", timeout=5).status_code in (200, 503)
            assert post(client, f"/tickets/{tid}/time", minutes=5, kind="work")["position"] > position
            assert time.monotonic() - started < 3
            backend.start("consume-tickets")
            assert [w.result() for w in waiting] == [200] * 100
    finally:
        if "consume-tickets" not in backend.procs:
            backend.start("consume-tickets")


@pytest.fixture
def own(servers: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Isolated]:
    with isolated(servers, tmp_path_factory.mktemp("health"), own_postgres=True) as backend:
        yield backend


def health(backend: Isolated) -> tuple[int, dict[str, str], float]:
    started = time.monotonic()
    response = httpx.get(f"{backend.base_url}/health", timeout=10)
    checks = response.json()["checks"]
    assert set(checks.values()) <= WORDS, checks  # names the state, never an error's text
    return response.status_code, checks, time.monotonic() - started


def test_health_names_a_stopped_broker_and_a_stopped_store_within_two_seconds(own: Isolated) -> None:
    assert health(own)[0] == 200
    own.broker.stop()
    status, checks, took = health(own)
    assert (status, checks["broker"], checks["store"]) == (503, "down", "ok") and took < 2
    own.restart_broker()
    eventually(lambda: health(own)[1]["broker"] == "ok")
    own.stop_postgres()
    try:
        status, checks, took = health(own)
        assert (status, checks["store"]) == (503, "down") and took < 2
        with own.client() as client:
            refused = client.post("/contracts", json={"customer": "Acme", "plan": "crm-experts/gold",
                                                      "starts_on": "2026-01-01"}, timeout=30)
        assert refused.status_code == 503 and refused.json()["error"]
    finally:
        own.start_postgres()
    eventually(lambda: health(own)[1]["store"] == "ok")
    with own.client() as client:
        cid = post(client, "/contracts", 201, customer="Acme", plan="crm-experts/gold", starts_on="2026-01-01",
                   at="2026-01-01T00:00:00Z")["contract_id"]
        assert client.get(f"/contracts/{cid}/history").status_code == 200
        assert client.get(f"/contracts/{uuid.uuid4()}/history").status_code == 404


def test_health_names_a_relay_blocked_on_an_event_it_cannot_publish_until_it_passes(
    servers: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with isolated(servers, tmp_path_factory.mktemp("blocked")) as backend, backend.client() as client:
        cid = contract(client)
        tid = ticket(client, cid)
        backend.procs.kill("relay")  # so that it meets the event only once it is spoiled
        position = post(client, f"/tickets/{tid}/time", minutes=30, kind="work")["position"]
        with backend.connect() as conn:  # as if a bug or a hand had stored what the schema cannot carry
            conn.execute("UPDATE es.ticketing_events SET state = convert_to(jsonb_set("
                         "convert_from(state, 'UTF8')::jsonb, '{minutes}', '4294967296')::text, 'UTF8')"
                         " WHERE notification_id = %s", (position,))
        post(client, f"/tickets/{tid}/respond")
        backend.procs.start("relay")
        eventually(lambda: health(backend)[1]["relay"] == "blocked")
        assert health(backend)[0] == 503
        with backend.connect() as conn:
            conn.execute("UPDATE es.ticketing_events SET state = convert_to(jsonb_set("
                         "convert_from(state, 'UTF8')::jsonb, '{minutes}', '30')::text, 'UTF8')"
                         " WHERE notification_id = %s", (position,))
        eventually(lambda: health(backend)[0] == 200, timeout=60)
