"""The automatic renewal pass on the real store, relay and ledger consumer: an hour bank whose
year ended renews once, at the anniversary's local midnight, and a second pass records
nothing more; an imported contract catches up on every anniversary it missed; a cancelled
one never renews; a renewal names the system as its actor."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from domain.actors import Actor
from infra.postgres.store import ApplicationHost
from infra.process import renewals, wiring
from infra.settings import Settings


@pytest.fixture(scope="module")
def app_store(servers: Settings) -> Iterator[ApplicationHost]:
    s = wiring.event_store(servers)
    yield s
    s.close()


def one_pass(servers: Settings, store: ApplicationHost, *contract_ids: str) -> list[Any]:
    # Only the test's own contracts: the session's database holds other tests' contracts too.
    with psycopg.connect(servers.database_url or "") as conn:
        return renewals.run_pass(store, conn, datetime.now(UTC), only=contract_ids)


def ledger(client: httpx.Client, cid: str, position: int) -> dict[str, Any]:
    response = client.get(f"/contracts/{cid}/ledger", params={"wait_for": position})
    assert response.status_code == 200, response.text
    return response.json()


def renewals_of(store: ApplicationHost, cid: str) -> list[tuple[str, str]]:
    return [(e.occurred_at.isoformat(), e.data["period_starts_on"])
            for e in store.envelopes_of(cid) if e.type == "Contract.Renewed"]


def test_a_bank_whose_year_ended_renews_once_at_local_midnight_and_a_second_pass_adds_nothing(
    servers: Settings, app_store: ApplicationHost, client: httpx.Client
) -> None:
    signed = app_store.app.sign_contract("Acme", "crm-experts/gold", "2025-01-01",
                                         at="2024-12-20T10:00:00-05:00")
    cid = signed.aggregate_id
    assert ledger(client, cid, signed.position)["renews_at"] == "2026-01-01T00:00:00-05:00"

    first = one_pass(servers, app_store, cid)
    assert len(first) == 1
    assert renewals_of(app_store, cid) == [("2026-01-01T05:00:00+00:00", "2026-01-01")]
    assert one_pass(servers, app_store, cid) == []  # before the ledger caught up
    answer = ledger(client, cid, first[0].position)
    assert (answer["period"], answer["granted"], answer["balance"]) == ("2026-01-01", 2400, 2400)
    assert answer["renews_at"] == "2027-01-01T00:00:00-05:00"
    assert one_pass(servers, app_store, cid) == []  # after it caught up
    assert len(renewals_of(app_store, cid)) == 1


def test_an_imported_contract_catches_up_on_every_anniversary_it_missed(
    servers: Settings, app_store: ApplicationHost, client: httpx.Client
) -> None:
    signed = app_store.app.sign_contract("Acme", "crm-experts/silver", "2024-03-01")  # signed now
    cid = signed.aggregate_id
    ledger(client, cid, signed.position)
    done = one_pass(servers, app_store, cid)
    assert [starts for _, starts in renewals_of(app_store, cid)] == ["2025-03-01", "2026-03-01"]
    answer = ledger(client, cid, done[-1].position)
    assert answer["periods"] == ["2024-03-01", "2025-03-01", "2026-03-01"]
    assert answer["renews_at"] == "2027-03-01T00:00:00-05:00"


def test_a_renewal_names_the_system_as_its_actor_whoever_signed_the_contract(
    servers: Settings, app_store: ApplicationHost, client: httpx.Client
) -> None:
    signer = Actor("token", "tok-sales", "agent")
    signed = app_store.app.sign_contract("Acme", "crm-experts/gold", "2025-01-01",
                                         at="2024-12-20T10:00:00-05:00", actor=signer)
    cid = signed.aggregate_id
    ledger(client, cid, signed.position)
    assert len(one_pass(servers, app_store, cid)) == 1
    assert [(e.type, e.actor) for e in app_store.envelopes_of(cid)] == [
        ("Contract.Signed", signer.as_json()), ("Contract.Renewed", {"kind": "system"})]


def test_a_contract_cancelled_before_its_anniversary_never_renews(
    servers: Settings, app_store: ApplicationHost, client: httpx.Client
) -> None:
    app = app_store.app
    cid = app.sign_contract("Acme", "crm-experts/gold", "2025-01-01", at="2024-12-20T10:00:00-05:00").aggregate_id
    cancelled = app.cancel_contract(cid, "moving on", at="2025-06-01T10:00:00-04:00")
    assert ledger(client, cid, cancelled.position)["renews_at"] is None
    assert one_pass(servers, app_store, cid) == []
    assert renewals.renew_if_due(app_store, cid, datetime.now(UTC)) == []
    assert renewals_of(app_store, cid) == []


def test_a_second_renewals_process_waits_as_a_standby_and_takes_over_when_the_first_dies(
    servers: Settings, db: psycopg.Connection
) -> None:
    from infra.postgres import leases
    from tests.processes import Processes

    procs = Processes(servers)
    holders = []
    try:
        for name in ("renewals-a", "renewals-b"):
            procs.start_as(name, ["renewals", "--interval", "0.5"])
            deadline = time.monotonic() + 30
            while (holder := leases.holder(db, renewals.ROLE)) is None:
                assert time.monotonic() < deadline, "nobody took the renewals role"
                time.sleep(0.2)
            holders.append(holder)
        assert holders[0] == holders[1], "the second process took the role from a living first one"
        procs.kill("renewals-a", signal.SIGKILL)
        deadline = time.monotonic() + 10
        while leases.holder(db, renewals.ROLE) in (None, holders[0]):
            assert time.monotonic() < deadline, "the standby did not take over within 10 s"
            time.sleep(0.2)
    finally:
        procs.stop_all()
