"""A contract's reports recomputed from its events alone, without a database: the events (the
contract's and its tickets', in store order) are applied by the same projections the read
models run, to their in-memory views (the reference the PostgreSQL views are tested to agree
with), and the answers are shaped by the same functions the routes use (projections/reports.py),
by today's rules. Given the events the store had committed at an instant, this is the report
as it was known then; given an export's events, the export's figures. Pure: no I/O, no clock
(`now` is given), so `ticketing verify` can call `figures` on a file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.errors import NotFound
from domain.periods import from_iso, month_window, months_between
from domain.rules import RULES_VERSION
from projections.availability import AvailabilityProjection, InMemoryAvailabilityView
from projections.envelope import Envelope
from projections.ledger import InMemoryLedgerView, LedgerProjection
from projections.reports import availability_answer, entry_json, ledger_answer, ledger_period, sla_answer
from projections.sla import InMemorySlaView, Signed, SlaProjection


@dataclass
class Rebuilt:
    """One contract's read models, rebuilt in memory from its events."""

    contract_id: str | None = None
    earliest: datetime | None = None  # the earliest business time any of its events names
    sla: InMemorySlaView = field(default_factory=InMemorySlaView)
    ledger: InMemoryLedgerView = field(default_factory=InMemoryLedgerView)
    availability: InMemoryAvailabilityView = field(default_factory=InMemoryAvailabilityView)

    def signed(self) -> Signed:
        """The contract's signing, as the SLA view keeps it; NotFound before it was signed."""
        found = None if self.contract_id is None else self.sla.contract(self.contract_id)
        if found is None:
            raise NotFound(f"no contract {self.contract_id}")
        return found

    def sla_report(self, now: datetime, month: str | None = None) -> dict[str, Any]:
        """GET /contracts/{id}/sla?month= as of `now` (default month: the one holding `now`)."""
        c = self.signed()
        month, start, end = month_window(month, c.time_zone, now)
        records = sorted(((r.facts.opened_at, ticket_id, r.facts) for ticket_id, r in self.sla.tickets.items()
                          if r.contract_id == c.contract_id and start <= r.facts.opened_at < end),
                         key=lambda found: found[:2])
        return sla_answer(c.contract_id, c.plan_id, c.time_zone, c.rules, month, (f for _, _, f in records), now)

    def ledger_report(self, now: datetime, period: str | None = None) -> dict[str, Any]:
        """GET /contracts/{id}/ledger?period= as of `now` (default: the current period)."""
        cid = self.signed().contract_id
        book = self.ledger.book(cid)
        if book is None:
            raise NotFound(f"no contract {cid} in the ledger")
        periods = {p.label: p for (c, _), p in self.ledger.periods.items() if c == cid}
        shown, labels = ledger_period(book, periods, now, period)
        entries = sorted(self.ledger.entries_of(cid, shown.label), key=lambda e: e.position)
        return ledger_answer(book, shown, labels, [entry_json(e) for e in entries])

    def periods(self, now: datetime) -> list[str]:
        """The labels of the ledger's periods, as its answer lists them."""
        return list(self.ledger_report(now)["periods"])

    def availability_report(self, now: datetime, month: str | None = None) -> dict[str, Any]:
        """GET /contracts/{id}/availability?month= as of `now` (default: the month holding `now`)."""
        c = self.signed()
        month, start, end = month_window(month, c.time_zone, now)
        found = self.availability.outages_of(c.contract_id, start, end)
        if found is None:
            raise NotFound(f"no contract {c.contract_id}")
        return availability_answer(found, month, now)

    def months(self, now: datetime) -> list[str]:
        """The months from the earliest one any event names to the one holding `now`."""
        zone = self.signed().time_zone
        return months_between(min(self.earliest or now, now), now, zone)


def replay(envelopes: Iterable[Envelope]) -> Rebuilt:
    """Apply a contract's events, in store order, to fresh in-memory read models."""
    found = Rebuilt()
    sla, ledger, availability = SlaProjection(), LedgerProjection(), AvailabilityProjection()
    for env in envelopes:
        if env.type == "Contract.Signed" and found.contract_id is None:
            found.contract_id = env.aggregate_id
        sla.apply(env, found.sla)
        ledger.apply(env, found.ledger)
        availability.apply(env, found.availability)
        found.earliest = min(found.earliest or env.occurred_at, env.occurred_at, *_named_instants(env))
    return found


def _named_instants(env: Envelope) -> list[datetime]:
    """Business instants an event names besides its own: an outage's start, a maintenance window's."""
    named = []
    for key in ("down_since", "starts_at"):
        value = env.data.get(key)
        if value:
            named.append(value if isinstance(value, datetime) else from_iso(value))
    return named


def sla_report(envelopes: Iterable[Envelope], now: datetime, month: str | None = None) -> dict[str, Any]:
    return replay(envelopes).sla_report(now, month)


def ledger_report(envelopes: Iterable[Envelope], now: datetime, period: str | None = None) -> dict[str, Any]:
    return replay(envelopes).ledger_report(now, period)


def availability_report(envelopes: Iterable[Envelope], now: datetime, month: str | None = None) -> dict[str, Any]:
    return replay(envelopes).availability_report(now, month)


def figures(envelopes: Iterable[Envelope], now: datetime) -> dict[str, Any]:
    """Every figure of one contract as of `now`, in the routes' answer shapes: the SLA report
    and the availability of each month from the earliest one its events name to the one
    holding `now`, and the ledger of each of its periods. NotFound without a signing."""
    found = replay(envelopes)
    months = found.months(now)
    return {
        "contract_id": found.signed().contract_id,
        "as_of": now.isoformat(),
        "rules_version": RULES_VERSION,
        "sla": {m: found.sla_report(now, m) for m in months},
        "ledger": {p: found.ledger_report(now, p) for p in found.periods(now)},
        "availability": {m: found.availability_report(now, m) for m in months},
    }
