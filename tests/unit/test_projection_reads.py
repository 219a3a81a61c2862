"""A projection that declares the event types it reads (`reads`) acts on no other: a rebuild
from the store decodes only those, so the read model it builds must be the one every event
builds. Shown on a history of real events of every type the domain records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.application import TicketingApplication
from domain.contract import Contract
from domain.ticket import Ticket
from domain.wallclock import FixedClock
from infra.process.catalog import load_catalog
from projections.availability import AvailabilityProjection, InMemoryAvailabilityView
from projections.envelope import Envelope, from_domain_event
from projections.ledger import InMemoryLedgerView, LedgerProjection
from projections.sla import InMemorySlaView, SlaProjection

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def every_type() -> set[str]:
    """The event types the domain records: each aggregate's event classes (not the bases they
    extend, nor the library's `Created`, which Signed and Opened stand in for)."""
    return {f"{aggregate.__name__}.{name}" for aggregate in (Contract, Ticket)
            for name, kind in vars(aggregate).items()
            if isinstance(kind, type) and issubclass(kind, aggregate.Event) and not kind.__subclasses__()
            and name != "Created"}


def history() -> list[Envelope]:
    """Contracts of several plans and tickets through every step, in store order."""
    app = TicketingApplication(load_catalog(), env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
                               clock=FixedClock(NOW), usage=lambda cid: {})
    premium = app.sign_contract("Acme", "bpm/premium", "2026-01-01").aggregate_id
    for n in range(3):
        tid = app.open_ticket(premium, f"t{n}", "ana", priority="P2").aggregate_id
        app.classify(tid, "P1")
        app.respond(tid)
        app.record_time(tid, 30, "work", "Eve")
        app.pause(tid, "waiting")
        app.resume(tid)
        app.resolve(tid)
        if n == 1:
            app.reopen(tid, "again")
    app.cancel_ticket(app.open_ticket(premium, "dropped", "ana").aggregate_id, "duplicate")
    credits = app.sign_contract("Beta", "dolibarr/credits", "2026-01-01").aggregate_id
    app.add_credits(credits, 10)
    app.record_time(app.open_ticket(credits, "c", "bo").aggregate_id, 15, "query")
    hosted = app.sign_contract("Gamma", "datacrm/standard", "2026-01-01").aggregate_id
    app.schedule_maintenance(hosted, "2026-06-02T01:00:00Z", "2026-06-02T02:00:00Z", "upgrade")
    down = app.open_ticket(hosted, "down", "cy", priority="P1", category="system-down",
                           down_since="2026-06-01T11:00:00Z").aggregate_id
    app.restore(down)
    bank = app.sign_contract("Delta", "sf-partner/silver", "2025-06-01").aggregate_id
    app.renew_contract(bank, "anniversary")
    app.export_contract(bank, "jsonl")
    app.cancel_contract(bank, "moving on")
    app.erase_contract(bank, "asked in writing")
    return [from_domain_event(app.mapper.to_domain_event(n), n.id)
            for n in app.recorder.select_notifications(start=1, limit=10_000)]


@pytest.mark.parametrize(("projection", "view"), [(SlaProjection, InMemorySlaView),
                                                   (AvailabilityProjection, InMemoryAvailabilityView),
                                                   (LedgerProjection, InMemoryLedgerView)])
def test_the_read_model_built_from_the_types_a_projection_reads_is_the_one_every_event_builds(
        projection: Any, view: Callable[[], Any]) -> None:
    envelopes = history()
    assert {env.type for env in envelopes} == every_type(), "the history holds an event of every type"
    reads = projection.reads
    assert reads is not None and reads < every_type()
    everything, read = view(), view()
    for env in envelopes:
        projection().apply(env, everything)
    for env in (env for env in envelopes if env.type in reads):
        projection().apply(env, read)
    assert read == everything and everything.tickets
    for env in (env for env in envelopes if env.type not in reads):
        assert projection().apply(env, read) is False, env.type
    assert read == everything, "and the others change nothing"
