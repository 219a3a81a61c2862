"""The application's rules on in-memory persistence: what each command decides and refuses."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from domain.application import TicketingApplication
from domain.errors import Conflict, InvalidInput, NotFound
from domain.wallclock import FixedClock
from infra.process.catalog import load_catalog

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def app() -> TicketingApplication:
    entries: dict[str, list[tuple[str, int]]] = {}
    application = TicketingApplication(
        load_catalog(), env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=FixedClock(NOW),
        usage=lambda cid: Counter(entries.get(cid, [])),
    )
    application.entries = entries
    return application


def sign(app: TicketingApplication, plan: str = "crm-experts/gold") -> str:
    return app.sign_contract("Acme", plan, "2026-01-01", at="2026-01-01T00:00:00Z").aggregate_id


def test_positions_grow_with_every_command(app: TicketingApplication) -> None:
    cid = sign(app)
    first = app.open_ticket(cid, "t", "r").position
    assert app.respond(app.open_ticket(cid, "u", "r").aggregate_id).position > first


def test_the_agreed_terms_are_copied_into_the_contract(app: TicketingApplication) -> None:
    contract = app.contract(sign(app, "dolibarr/credits"))
    assert contract.terms["credits"]["low_balance"] == 45
    assert contract.time_zone == "Europe/Madrid"


def test_a_contract_may_override_the_plan_zone_but_not_with_nonsense(app: TicketingApplication) -> None:
    cid = app.sign_contract("Acme", "crm-experts/gold", "2026-01-01", time_zone="America/Chicago").aggregate_id
    assert app.contract(cid).time_zone == "America/Chicago"
    with pytest.raises(InvalidInput):
        app.sign_contract("Acme", "crm-experts/gold", "2026-01-01", time_zone="Mars/Olympus")


def test_credits_run_out_by_the_plan_charge_rules(app: TicketingApplication) -> None:
    cid = sign(app, "dolibarr/credits")
    app.add_credits(cid, 100)
    tid = app.open_ticket(cid, "t", "r").aggregate_id
    app.record_time(tid, 50, "intervention")
    app.entries[cid] = [("intervention", 50), ("query", 1)]
    # 60 (intervention, 50 min in blocks of 15) + 15 (query minimum) = 75 of 100: one more ticket is fine
    app.open_ticket(cid, "t2", "r")
    app.entries[cid].append(("query", 20))
    with pytest.raises(Conflict, match="no credits left"):
        app.open_ticket(cid, "t3", "r")


def test_a_ticket_cannot_be_resolved_twice_nor_resumed_unless_paused(app: TicketingApplication) -> None:
    tid = app.open_ticket(sign(app), "t", "r").aggregate_id
    with pytest.raises(Conflict):
        app.resume(tid)
    app.resolve(tid)
    with pytest.raises(Conflict):
        app.resolve(tid)
    app.reopen(tid)
    app.resolve(tid)


def test_time_cannot_be_recorded_in_the_future_or_before_the_last_event(app: TicketingApplication) -> None:
    tid = app.open_ticket(sign(app), "t", "r", at=NOW - timedelta(hours=1)).aggregate_id
    with pytest.raises(InvalidInput, match="future"):
        app.record_time(tid, 5, "work", at=NOW + timedelta(minutes=1))
    with pytest.raises(InvalidInput, match="precedes"):
        app.record_time(tid, 5, "work", at=NOW - timedelta(hours=2))
    app.record_time(tid, 5, "work", at=NOW + timedelta(seconds=2))  # small skew is allowed


def test_unknown_ids_are_not_found(app: TicketingApplication) -> None:
    with pytest.raises(NotFound):
        app.respond("not-a-uuid")
    with pytest.raises(NotFound):
        app.open_ticket("00000000-0000-0000-0000-000000000000", "t", "r")


def test_a_ticket_id_is_not_a_contract(app: TicketingApplication) -> None:
    tid = app.open_ticket(sign(app), "t", "r").aggregate_id
    with pytest.raises(NotFound):
        app.add_credits(tid, 10)
