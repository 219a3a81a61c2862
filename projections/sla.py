"""SLA: per ticket, its facts and the due instants of its response and resolution clocks; per
contract, the terms its SLA runs on. It dispatches on the event type and hands the view a
fold of the ticket (its facts, and the position of the last event applied to it): the event
folded into the facts (`domain.sla.facts.apply`), or nothing if the ticket already applied it
(a redelivery, or a rebuild that overlapped the live runner). The view re-derives the
deadlines of a changed ticket with `derive`, so the stored due instants are always those of
the latest facts (they do not depend on "now"; statuses do, and are computed when read). `tick(now, view)`
notices, once per ticket, clock and due instant, a clock that is on (running or paused) past
its due instant: a re-evaluated due instant is a new breach, a repeated tick is not. The
in-memory view below is the reference the PostgreSQL one must agree with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from domain.sla.clock import ClockResult, SlaRules, evaluate
from domain.sla.facts import EVENT_TYPES, TicketFacts, apply, check
from domain.values import CLOCKS
from projections.envelope import Envelope, Fold, opening, seen


class Signed(NamedTuple):
    """A contract's SLA terms, as its `Contract.Signed` event gave them (rules parsed)."""

    contract_id: str
    plan_id: str
    terms: dict[str, Any]
    time_zone: str
    holidays: tuple[str, ...]
    rules: SlaRules
    position: int = 0


class Tracked(NamedTuple):
    """A ticket as the view keeps it: its contract, its facts, and the position of the last
    event folded into them."""

    contract_id: str
    facts: TicketFacts
    position: int


class Deadline(NamedTuple):
    """What the view stores of one clock: enough to notice a breach without re-evaluating."""

    due_at: datetime | None
    stopped_at: datetime | None
    on: bool
    target: str | None
    target_minutes: float | None


class Derived(NamedTuple):
    """A ticket's current priority, category, target group and both clocks' deadlines."""

    priority: str
    category: str | None
    group: str
    response: Deadline
    resolution: Deadline


@dataclass(frozen=True)
class Breach:
    """A clock on and past its due instant, as the notice tells it."""

    ticket_id: str
    contract_id: str
    plan_id: str
    clock: str
    priority: str
    category: str | None
    target: str
    target_minutes: float
    opened_at: datetime
    due_at: datetime
    detected_at: datetime

    @property
    def notice_id(self) -> str:
        return f"sla-breach:{self.ticket_id}:{self.clock}:{self.due_at.isoformat()}"


def _deadline(clock: ClockResult) -> Deadline:
    t = clock.terms
    return Deadline(clock.due_at, clock.stopped_at, clock.on, t.label, t.target_minutes)


def derive(rules: SlaRules, facts: TicketFacts) -> Derived:
    """The deadlines of the latest facts (evaluated as of their last instant, no elapsed time)."""
    result = evaluate(rules, facts, facts.last_at, elapsed=False)
    return Derived(result.priority, result.category, result.group,
                   _deadline(result.response), _deadline(result.resolution))


def overdue(ticket_id: str, contract_id: str, plan_id: str, opened_at: datetime, derived: Derived,
            noticed: dict[str, datetime | None], now: datetime) -> list[Breach]:
    """The clocks of one ticket that are on, past due at `now` and not noticed for that due."""
    found = []
    for clock in CLOCKS:
        d: Deadline = getattr(derived, clock)
        if d.on and d.due_at is not None and d.due_at < now and noticed.get(clock) != d.due_at:
            assert d.target is not None and d.target_minutes is not None
            found.append(Breach(ticket_id, contract_id, plan_id, clock, derived.priority,
                                derived.category, d.target, d.target_minutes, opened_at, d.due_at, now))
    return found


class SlaView(Protocol):
    def contract(self, contract_id: str) -> Signed | None: ...
    def signed(self, contract: Signed) -> None: ...
    def change(self, ticket_id: str, fold: Fold, *args: Any) -> bool: ...
    def overdue(self, now: datetime) -> list[Breach]: ...
    def breached(self, breach: Breach) -> None: ...


class SlaProjection:
    """Keeps every ticket's SLA facts and deadlines; notices breaches as time passes."""

    name = "sla"

    def apply(self, env: Envelope, view: SlaView) -> bool:
        if env.type in EVENT_TYPES:
            check(env.type, env.occurred_at, env.data)  # bad data fails here, not at flush
            return view.change(env.aggregate_id, folded, env)
        if env.type == "Ticket.Opened":
            facts = TicketFacts.opened(env.occurred_at, env.data)
            return view.change(env.aggregate_id, opening, Tracked(env.contract_id, facts, env.position))
        if env.type == "Contract.Signed":
            return self._signed(env, view)
        return False

    @staticmethod
    def _signed(env: Envelope, view: SlaView) -> bool:
        if view.contract(env.aggregate_id) is not None:
            return False  # a contract is signed once: this is a redelivery
        d = env.data
        holidays = tuple(d.get("holidays") or ())
        rules = SlaRules.from_signed(d["terms"], d["time_zone"], holidays)
        view.signed(Signed(env.aggregate_id, d["plan_id"], d["terms"], d["time_zone"], holidays, rules,
                           env.position))
        return True

    def tick(self, now: datetime, view: SlaView) -> None:
        """Notice the clocks that went past due since the last tick."""
        for breach in view.overdue(now):
            view.breached(breach)


def folded(ticket: Tracked | None, env: Envelope) -> Tracked | None:
    """The fold of a ticket's event into its facts."""
    if ticket is None or seen(env, ticket.position):
        return None  # never seen opened, or already applied
    return Tracked(ticket.contract_id, apply(ticket.facts, env.type, env.occurred_at, env.data), env.position)


@dataclass
class TicketRecord:
    """One ticket in the in-memory view; `derived` is None while its contract is unknown."""

    contract_id: str
    facts: TicketFacts
    position: int
    derived: Derived | None
    noticed: dict[str, datetime | None] = field(default_factory=dict)


@dataclass
class InMemorySlaView:
    """The SLA read model in dicts, for unit tests and the benchmark; applies at once."""

    contracts: dict[str, Signed] = field(default_factory=dict)
    tickets: dict[str, TicketRecord] = field(default_factory=dict)
    notices: list[Breach] = field(default_factory=list)

    def contract(self, contract_id: str) -> Signed | None:
        return self.contracts.get(contract_id)

    def signed(self, contract: Signed) -> None:
        self.contracts[contract.contract_id] = contract

    def change(self, ticket_id: str, fold: Fold, *args: Any) -> bool:
        r = self.tickets.get(ticket_id)
        ticket = fold(None if r is None else Tracked(r.contract_id, r.facts, r.position), *args)
        if ticket is not None:
            self._put(ticket_id, ticket)
        return ticket is not None

    def _put(self, ticket_id: str, ticket: Tracked) -> None:
        derived = self._derive(ticket.contract_id, ticket.facts)
        record = self.tickets.get(ticket_id)
        if record is None:
            self.tickets[ticket_id] = TicketRecord(ticket.contract_id, ticket.facts, ticket.position, derived)
        else:  # the breaches noticed stay noticed
            record.facts, record.position, record.derived = ticket.facts, ticket.position, derived

    def _derive(self, contract_id: str, facts: TicketFacts) -> Derived | None:
        contract = self.contracts.get(contract_id)
        return None if contract is None else derive(contract.rules, facts)

    def overdue(self, now: datetime) -> list[Breach]:
        found = []
        for ticket_id, r in sorted(self.tickets.items()):
            if r.derived is not None:
                plan = self.contracts[r.contract_id].plan_id
                found += overdue(ticket_id, r.contract_id, plan, r.facts.opened_at, r.derived, r.noticed, now)
        return found

    def breached(self, breach: Breach) -> None:
        self.tickets[breach.ticket_id].noticed[breach.clock] = breach.due_at
        if all(n.notice_id != breach.notice_id for n in self.notices):  # as the outbox keeps one
            self.notices.append(breach)
