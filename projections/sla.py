"""SLA: per ticket, its facts and the due instants of its response and resolution clocks; per
contract, the terms its SLA runs on. Every rule is here (or in domain/sla); a view only gets
and puts rows by key and answers one indexed question. The projection dispatches on the event
type and hands the view a fold of the ticket (`Tracked`: its facts, the position of the last
event applied to it, its contract's rules, read when the fold runs): the event folded into the facts
(`domain.sla.facts.apply`), or nothing if the ticket already applied it (a redelivery, or a
rebuild that overlapped the live runner). A ticket row derives its deadlines from its facts
when first asked (`Tracked.derived`), so the stored due instants are always those of the
latest facts, and a PostgreSQL view that writes a batch derives each touched ticket once (they
do not depend on "now"; statuses do, and are computed when read). `tick(now, view)` asks the
view for the clocks whose alarm went off before now and that were not noticed for it, and
notices (`overdue`), once per ticket, clock and due instant, a clock that is on (running or
paused) past its due instant: a re-evaluated due instant is a new breach, a repeated tick is
not. The in-memory view below is the reference the PostgreSQL one must agree with.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from domain.sla.clock import ClockResult, SlaRules, evaluate
from domain.sla.facts import EVENT_TYPES, TicketFacts, apply, check
from domain.values import CLOCKS
from projections.envelope import Envelope, Fold, seen


class Signed(NamedTuple):
    """A contract's SLA terms, as its `Contract.Signed` event gave them (rules parsed)."""

    contract_id: str
    plan_id: str
    terms: dict[str, Any]
    time_zone: str
    holidays: tuple[str, ...]
    rules: SlaRules
    position: int = 0


class Deadline(NamedTuple):
    """What the view stores of one clock: enough to notice a breach without re-evaluating."""

    due_at: datetime | None
    stopped_at: datetime | None
    on: bool
    target: str | None
    target_minutes: float | None

    @property
    def alarm_at(self) -> datetime | None:
        """When the tick should look at this clock: at its due instant while it is on (running
        or paused), never once it stopped or without a target."""
        return self.due_at if self.on else None


class Derived(NamedTuple):
    """A ticket's current priority, category, target group and both clocks' deadlines."""

    priority: str
    category: str | None
    group: str
    response: Deadline
    resolution: Deadline


def _deadline(clock: ClockResult) -> Deadline:
    t = clock.terms
    return Deadline(clock.due_at, clock.stopped_at, clock.on, t.label, t.target_minutes)


def derive(rules: SlaRules, facts: TicketFacts) -> Derived:
    """The deadlines of the latest facts (evaluated as of their last instant, no elapsed time)."""
    result = evaluate(rules, facts, facts.last_at, elapsed=False)
    return Derived(result.priority, result.category, result.group,
                   _deadline(result.response), _deadline(result.resolution))


_UNSET: Any = object()


class Tracked:
    """A ticket as the views keep it: its contract, its facts, the position of the last event
    folded into them, and the deadlines its facts give under its contract's rules (`derived`,
    None while the contract is unknown). The deadlines are derived when first asked for: a
    PostgreSQL view asks when it writes the batch, so a ticket that many of the batch's events
    changed is evaluated once. A row read back only to fold the next event into carries no
    rules (`rules` None): the fold gives the new row its contract's."""

    __slots__ = ("_derived", "contract_id", "facts", "position", "rules")

    def __init__(self, contract_id: str, facts: TicketFacts, position: int, rules: SlaRules | None = None) -> None:
        self.contract_id, self.facts, self.position, self.rules = contract_id, facts, position, rules
        self._derived: Derived | None = _UNSET

    @property
    def derived(self) -> Derived | None:
        if self._derived is _UNSET:
            self._derived = None if self.rules is None else derive(self.rules, self.facts)
        return self._derived

    def _key(self) -> tuple[Any, ...]:
        return self.contract_id, self.facts, self.position, self.derived

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tracked) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # equal by value, and holds a mutable cache

    def __repr__(self) -> str:
        return f"Tracked({self.contract_id!r}, position={self.position}, derived={self.derived!r})"


class Due(NamedTuple):
    """One clock of one ticket as the view stores it, found by the view's indexed question
    (alarm before an instant, not noticed for it): what `overdue` judges."""

    ticket_id: str
    contract_id: str
    opened_at: datetime
    priority: str
    category: str | None
    clock: str
    deadline: Deadline
    noticed: datetime | None


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


def overdue(due: Due, plan_id: str, now: datetime) -> Breach | None:
    """The breach of a clock that is on, past its due instant at `now`, and not noticed for
    that due instant; None for any other."""
    d = due.deadline
    if not (d.on and d.due_at is not None and d.due_at < now and due.noticed != d.due_at):
        return None
    assert d.target is not None and d.target_minutes is not None
    return Breach(due.ticket_id, due.contract_id, plan_id, due.clock, due.priority, due.category, d.target,
                  d.target_minutes, due.opened_at, d.due_at, now)


class SlaView(Protocol):
    """The SLA rows by key, and the tick's questions; nothing here decides."""

    def contract(self, contract_id: str) -> Signed | None: ...
    def signed(self, contract: Signed) -> None: ...
    def change(self, ticket_id: str, fold: Fold, *args: Any) -> bool: ...
    def caught_up(self) -> bool:
        """Whether the view holds every event the relay has published."""
        ...
    def due(self, now: datetime) -> list[Due]:
        """The clocks whose alarm is before `now` and not noticed for it, earliest first."""
        ...
    def breached(self, breach: Breach) -> None:
        """Record the breach as noticed for its due instant, and send its notice."""
        ...
    def flush(self) -> int: ...


class SlaProjection:
    """Keeps every ticket's SLA facts and deadlines; notices breaches as time passes."""

    name = "sla"
    reads: frozenset[str] | None = frozenset({*EVENT_TYPES, "Ticket.Opened", "Contract.Signed"})  # what `apply` acts on

    def apply(self, env: Envelope, view: SlaView) -> bool:
        if env.type in EVENT_TYPES:
            check(env.type, env.occurred_at, env.data)  # bad data fails here, not at flush
            return view.change(env.aggregate_id, folded, env, view)
        if env.type == "Ticket.Opened":
            return view.change(env.aggregate_id, opened, env, TicketFacts.opened(env.occurred_at, env.data), view)
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
        """Notice the clocks that went past due since the last tick; none while the view lags
        behind the relay, since the backlog may hold the event that stops a clock."""
        if not view.caught_up():
            return
        for due in view.due(now):
            contract = view.contract(due.contract_id)
            breach = None if contract is None else overdue(due, contract.plan_id, now)
            if breach is not None:
                view.breached(breach)


def _rules(view: SlaView, contract_id: str) -> SlaRules | None:
    contract = view.contract(contract_id)
    return None if contract is None else contract.rules


def opened(found: Tracked | None, env: Envelope, facts: TicketFacts, view: SlaView) -> Tracked | None:
    """The fold of a ticket's opening: its first facts under its contract's rules, unless the
    ticket is there already (a redelivery)."""
    if found is not None:
        return None
    return Tracked(env.contract_id, facts, env.position, _rules(view, env.contract_id))


def folded(ticket: Tracked | None, env: Envelope, view: SlaView) -> Tracked | None:
    """The fold of a ticket's event into its facts, under its contract's rules (read when the
    fold runs: a PostgreSQL view reads the contracts of a batch's tickets in one query)."""
    if ticket is None or seen(env, ticket.position):
        return None  # never seen opened, or already applied
    facts = apply(ticket.facts, env.type, env.occurred_at, env.data)
    # A contract is signed once, so rules a row already carries are still its contract's.
    rules = ticket.rules or _rules(view, ticket.contract_id)
    return Tracked(ticket.contract_id, facts, env.position, rules)


@dataclass
class TicketRecord:
    """One ticket in the in-memory view: its row, and per clock the due instant whose breach
    was last noticed (kept when the row changes, as the PostgreSQL view keeps its column)."""

    row: Tracked
    noticed: dict[str, datetime | None] = field(default_factory=dict)

    @property
    def contract_id(self) -> str:
        return self.row.contract_id

    @property
    def facts(self) -> TicketFacts:
        return self.row.facts

    @property
    def position(self) -> int:
        return self.row.position

    @property
    def derived(self) -> Derived | None:
        return self.row.derived


@dataclass
class InMemorySlaView:
    """The SLA read model in dicts, for unit tests and the benchmark: a plain store that runs a
    fold at once, and answers `due` by looking at every ticket."""

    contracts: dict[str, Signed] = field(default_factory=dict)
    tickets: dict[str, TicketRecord] = field(default_factory=dict)
    notices: list[Breach] = field(default_factory=list)

    def prefetch(self, contracts: Collection[str]) -> None:
        """Every row is in memory already."""

    def contract(self, contract_id: str) -> Signed | None:
        return self.contracts.get(contract_id)

    def signed(self, contract: Signed) -> None:
        self.contracts[contract.contract_id] = contract

    def change(self, ticket_id: str, fold: Fold, *args: Any) -> bool:
        record = self.tickets.get(ticket_id)
        row = fold(None if record is None else record.row, *args)
        if row is None:
            return False
        if record is None:
            self.tickets[ticket_id] = TicketRecord(row)
        else:  # the breaches noticed stay noticed
            record.row = row
        row.derived  # noqa: B018 - derived now, as the PostgreSQL view does when it writes
        return True

    def caught_up(self) -> bool:
        return True  # applies at once: never behind

    def due(self, now: datetime) -> list[Due]:
        found = []
        for clock in CLOCKS:
            for ticket_id, r in self.tickets.items():
                d = r.derived
                deadline: Deadline | None = None if d is None else getattr(d, clock)
                alarm = None if deadline is None else deadline.alarm_at
                if deadline is not None and alarm is not None and alarm < now and r.noticed.get(clock) != alarm:
                    assert d is not None
                    found.append(Due(ticket_id, r.contract_id, r.facts.opened_at, d.priority, d.category, clock,
                                     deadline, r.noticed.get(clock)))
        return sorted(found, key=lambda due: (CLOCKS.index(due.clock), due.deadline.alarm_at, due.ticket_id))

    def breached(self, breach: Breach) -> None:
        self.tickets[breach.ticket_id].noticed[breach.clock] = breach.due_at
        if all(n.notice_id != breach.notice_id for n in self.notices):  # as the outbox keeps one
            self.notices.append(breach)

    def flush(self) -> int:
        return 0  # everything was applied at once
