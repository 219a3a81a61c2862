"""Histories built through the application itself (not over HTTP): one contract whose
commands record every event type of Contract and Ticket, each asked for by another actor."""

from __future__ import annotations

from datetime import date, timedelta

from domain.actors import BOOTSTRAP, OPEN, SYSTEM, Actor
from domain.application import TicketingApplication

AGENT = Actor("token", "tok-agent", "agent")
ADMIN = Actor("token", "tok-admin", "admin")
CUSTOMER = Actor("token", "tok-customer", "customer")


def every_kind_of_event(app: TicketingApplication) -> tuple[str, dict[str, Actor]]:
    """One contract whose commands record every event type, each type asked for by another
    actor; the actor each type was recorded with."""
    asked: dict[str, Actor] = {}
    cycle = [AGENT, ADMIN, BOOTSTRAP, OPEN, SYSTEM, CUSTOMER]

    def by(event_type: str) -> Actor:
        asked[event_type] = actor = cycle[len(asked) % len(cycle)]
        return actor

    cid = app.sign_contract("Acme", "dolibarr/credits", "2025-01-01", actor=by("Contract.Signed")).aggregate_id
    app.add_credits(cid, 100, actor=by("Contract.CreditsAdded"))
    now = app.now()
    app.schedule_maintenance(cid, now + timedelta(hours=1), now + timedelta(hours=2),
                             actor=by("Contract.MaintenanceScheduled"))
    app.renew_contract(cid, period_starts_on=date(2025, 6, 1), actor=by("Contract.Renewed"))
    tid = app.open_ticket(cid, "Down", "ana", category="system-down", down_since=now - timedelta(hours=1),
                          actor=by("Ticket.Opened")).aggregate_id
    app.classify(tid, "P1", "system-down", actor=by("Ticket.Classified"))
    app.respond(tid, actor=by("Ticket.Responded"))
    app.record_time(tid, 30, "intervention", actor=by("Ticket.TimeConsumed"))
    app.pause(tid, "waiting", actor=by("Ticket.Paused"))
    app.resume(tid, actor=by("Ticket.Resumed"))
    app.restore(tid, actor=by("Ticket.Restored"))
    app.resolve(tid, actor=by("Ticket.Resolved"))
    app.reopen(tid, actor=by("Ticket.Reopened"))
    app.cancel_ticket(tid, actor=by("Ticket.Cancelled"))
    app.cancel_contract(cid, actor=by("Contract.Cancelled"))
    app.export_contract(cid, "jsonl", actor=by("Contract.Exported"))
    app.erase_contract(cid, "erasure request 2026-12-02", actor=by("Contract.Erased"))
    return cid, asked
