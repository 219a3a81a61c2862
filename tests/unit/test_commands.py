"""Commands (domain/commands.py) and the application's `handle`: a command that exists is well
formed (ids, instants and vocabulary parsed when it is built), `handle` runs each kind, and the
credit check and the ledger count credits by the one rule of domain/billing.py."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import commands
from domain.application import TicketingApplication
from domain.errors import Conflict, InvalidInput, NotFound
from domain.ticket import Ticket
from domain.wallclock import FixedClock
from infra.process.catalog import load_catalog
from projections.envelope import from_domain_event
from projections.ledger import InMemoryLedgerView, LedgerProjection

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CATALOG = load_catalog()


def logged_usage(app: TicketingApplication, contract_id: str) -> Counter[tuple[str, int]]:
    """A `UsageReader` on the application's own notification log, decoded by its mapper."""
    events = (app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(start=1, limit=10**6))
    return Counter((e.kind, e.minutes) for e in events
                   if isinstance(e, Ticket.TimeConsumed) and e.contract_id == contract_id)


def application() -> TicketingApplication:
    app = TicketingApplication(CATALOG, env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=FixedClock(NOW))
    app.usage = lambda contract_id: logged_usage(app, contract_id)
    return app


def test_a_command_parses_its_ids_and_instants_when_it_is_built() -> None:
    tid = uuid4()
    command = commands.Pause(str(tid), "waiting", "2026-05-01T10:00:00+02:00")
    assert command.ticket_id == tid and command.aggregate_id == tid
    assert command.at == datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    assert commands.Sign("Acme", "bpm/basic", "2026-01-01").aggregate_id is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.reason = "changed"


@pytest.mark.parametrize(("build", "refusal"), [
    (lambda: commands.Respond("not-a-uuid"), NotFound),
    (lambda: commands.Respond(uuid4(), "2026-05-01T10:00:00"), InvalidInput),
    (lambda: commands.ClassifyTicket(uuid4(), "P9"), InvalidInput),
    (lambda: commands.ClassifyTicket(uuid4(), "P2", "gossip"), InvalidInput),
    (lambda: commands.RecordTime(uuid4(), 0, "work"), InvalidInput),
    (lambda: commands.RecordTime(uuid4(), 5, "coffee"), InvalidInput),
    (lambda: commands.Open(uuid4(), " ", "r"), InvalidInput),
    (lambda: commands.Open(uuid4(), "t", "r", down_since="yesterday"), InvalidInput),
    (lambda: commands.ScheduleMaintenance(uuid4(), "1999-01-01T00:00:00Z", "2026-01-01T00:00:00Z"), InvalidInput),
    (lambda: commands.Sign("", "bpm/basic", "2026-01-01"), InvalidInput),
    (lambda: commands.Sign("Acme", "bpm/basic", "2026-02-30"), InvalidInput),
])
def test_a_command_that_cannot_be_well_formed_is_refused_as_it_is_built(build: object, refusal: type) -> None:
    with pytest.raises(refusal):
        build()


def test_handle_runs_every_kind_of_command_and_the_methods_are_the_same_commands() -> None:
    app = application()
    cid = UUID(app.handle(commands.Sign("Acme", "dolibarr/credits", "2026-01-01", at=NOW - timedelta(days=9)))
               .aggregate_id)
    steps: list[commands.Command] = [
        commands.BuyCredits(cid, 300), commands.ScheduleMaintenance(cid, NOW + timedelta(days=1), NOW + timedelta(days=2)),
    ]
    for step in steps:
        app.handle(step)
    tid = UUID(app.handle(commands.Open(cid, "down", "r", category="system-down")).aggregate_id)
    for step in [commands.ClassifyTicket(tid, "P1"), commands.Respond(tid), commands.RecordTime(tid, 20, "query"),
                 commands.Pause(tid), commands.Resume(tid), commands.Restore(tid), commands.Resolve(tid),
                 commands.Reopen(tid, "not fixed"), commands.CancelTicket(tid)]:
        app.handle(step)
    assert app.ticket(tid).status == "cancelled" and app.ticket(tid).minutes == 20
    app.renew_contract(cid, at=NOW)  # the method builds a RenewContract
    app.handle(commands.CancelContract(cid, "moved on"))
    assert app.contract(cid).status == "cancelled" and app.contract(cid).renewals == 1
    with pytest.raises(TypeError):
        app.handle(commands.Command())


entries = st.lists(st.tuples(st.sampled_from(["query", "intervention", "update"]), st.integers(1, 300)),
                   max_size=12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 2000), entries)
def test_the_credit_check_and_the_ledger_count_the_same_balance(credits: int, recorded: list[tuple[str, int]]) -> None:
    app = application()
    cid = app.sign_contract("Acme", "dolibarr/credits", "2026-01-01", at=NOW - timedelta(days=30)).aggregate_id
    app.add_credits(cid, credits, at=NOW - timedelta(days=29))
    tid = app.open_ticket(cid, "t", "r", at=NOW - timedelta(days=28)).aggregate_id
    for kind, minutes in recorded:
        app.record_time(tid, minutes, kind)
    view, ledger = InMemoryLedgerView(), LedgerProjection()
    for n in app.recorder.select_notifications(start=1, limit=10**6):
        ledger.apply(from_domain_event(app.mapper.to_domain_event(n), n.id), view)
    contract = app.contract(cid)
    balance = app.credit_balance(contract, app.terms_of(contract))
    assert view.period(cid, "2026-01-01").balance == balance
    if balance <= 0:
        with pytest.raises(Conflict, match="no credits left"):
            app.open_ticket(cid, "one more", "r")
    else:
        app.open_ticket(cid, "one more", "r")


def test_free_text_with_a_nul_character_is_refused_when_the_command_is_built() -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        commands.Open(contract_id=uuid4(), title="printer\x00down", reporter="r")
