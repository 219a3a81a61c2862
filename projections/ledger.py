"""The ledger: per contract and period, what was granted, what each time entry cost, what is left.

A contract keeps one of four books, chosen from its signed terms: an hour `bank` (exact
minutes against the minutes granted per period; periods start at signing and at each recorded
renewal), `credits` (charged by the plan's rules, one period, never expiring, granted by
packs), an `allowance` (free minutes of one entry kind per calendar quarter, month or year of
the contract's zone) or `none` (entries listed, nothing debited). An entry belongs to the
period holding its `occurred_at` (in the contract's zone) among the periods known when it is
applied, i.e. the renewals before it in the store (before them all: the first period); a
renewal recorded later never moves entries already booked. So a back-dated entry lands in the
period it happened in, and the result depends only on the store's order. Each entry keeps its
raw minutes and its charge apart; the part of a charge beyond a zero balance is its `overage`
(billable guidance, for an allowance). Falling to the plan's low-balance threshold, or to zero,
raises a notice once per crossing. A book, a period and a ticket's cost each record the store
position of the last event applied to them, and an event at or below the position of a row
it changes is ignored (a redelivery, or a rebuild that overlapped the live runner); entries
and statements are keyed by their event's position. Views are ports: `InMemoryLedgerView`
here, a PostgreSQL one in infra/readmodels/ledger.py.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from domain.billing import (
    ChargeRule,
    add_months,
    allowance_period,
    bank_period,
    credit_charge,
    split_allowance,
)
from domain.plans import PlanTerms
from projections.envelope import Envelope, Fold, seen

LOW, EXHAUSTED = "low-balance", "exhausted"
_BEGIN, _END = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def local_midnight(day: str | date, zone: str) -> datetime:
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(zone))


def next_period_start(starts_on: date, current: date, months: int) -> date:
    """When a bank period that began on `current` ends: on the contract's anniversary (counted
    from `starts_on`, so a Jan 31 start keeps the 31st), or `months` after a period that a
    renewal started off the anniversaries."""
    start, end, _ = bank_period(starts_on, current, months)
    return end if start == current else add_months(current, months)


@dataclass
class Book:
    """One contract's ledger settings (from its signed terms) and the periods known so far."""

    contract_id: str
    plan: str
    scheme: str  # bank | credits | allowance | none
    time_zone: str
    starts_on: str
    threshold: int | None = None
    grant: int | None = None  # minutes per bank or allowance period
    period_months: int | None = None
    allowance_kind: str | None = None
    allowance_period: str | None = None
    charges: dict[str, list[int | None]] = field(default_factory=dict)
    periods: list[str] = field(default_factory=list)  # start dates (bank, none)
    status: str = "active"
    position: int = 0  # of the last event applied (signing, renewal, cancellation)
    # The last period found, as [from, until) instants, its label and start: most entries
    # fall in the same period as the one before, so they skip the zone and calendar math.
    _span: tuple[datetime, datetime, str, datetime] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def signed(cls, env: Envelope) -> Book:
        terms = PlanTerms.from_dict(env.data["terms"])
        book = cls(env.contract_id, env.data["plan_id"], "none", env.data["time_zone"],
                   env.data["starts_on"], terms.low_balance_threshold, periods=[env.data["starts_on"]],
                   position=env.position)
        if terms.credits is not None:
            book.scheme, book.periods = "credits", [book.starts_on]
            book.charges = {k: [r.minimum, r.block, r.flat] for k, r in terms.credits.charges.items()}
        elif terms.bank is not None:
            book.scheme, book.grant = "bank", terms.bank.minutes
            book.period_months = terms.bank.period_months
        elif terms.allowances:  # the catalog gives a plan one allowance at most
            allowance = terms.allowances[0]
            book.scheme, book.grant, book.periods = "allowance", allowance.minutes, []
            book.allowance_kind, book.allowance_period = allowance.kind, allowance.period
        return book

    @property
    def unit(self) -> str:
        return "credits" if self.scheme == "credits" else "minutes"

    @property
    def renews_at(self) -> datetime | None:
        """When the current bank period ends and the contract is due to renew."""
        if self.scheme != "bank" or self.status != "active" or not self.period_months:
            return None
        start, current = date.fromisoformat(self.starts_on), date.fromisoformat(self.periods[-1])
        return local_midnight(next_period_start(start, current, self.period_months), self.time_zone)

    def charge(self, kind: str, minutes: int) -> int:
        if self.scheme == "bank":
            return minutes
        if self.scheme == "credits":
            rule = self.charges.get(kind)
            return credit_charge(ChargeRule(*rule), minutes) if rule else 0  # type: ignore[arg-type]
        return minutes if self.scheme == "allowance" and kind == self.allowance_kind else 0

    def period_of(self, at: datetime) -> tuple[str, datetime]:
        """The label and start of the period an instant belongs to (see the module's rule)."""
        span = self._span
        if span is None or not span[0] <= at < span[1]:
            span = self._span = self._find(at)
        return span[2], span[3]

    def _find(self, at: datetime) -> tuple[datetime, datetime, str, datetime]:
        if self.scheme == "allowance":
            start, end, label = allowance_period(at, self.time_zone, self.allowance_period or "quarter")
            return start, end, label, start
        day = at.astimezone(ZoneInfo(self.time_zone)).date().isoformat()
        i = max(0, bisect.bisect_right(self.periods, day) - 1)
        start = local_midnight(self.periods[i], self.time_zone)
        until = local_midnight(self.periods[i + 1], self.time_zone) if i + 1 < len(self.periods) else _END
        return (start if i or day >= self.periods[0] else _BEGIN), until, self.periods[i], start

    def add_period(self, start: str) -> None:
        self.periods.append(start)
        self._span = None


@dataclass
class Period:
    """One period's running totals and its low-balance and exhaustion crossings."""

    contract_id: str
    label: str
    starts_at: datetime
    granted: int | None
    used: int = 0
    minutes: int = 0
    entries: int = 0
    low: bool = False
    exhausted: bool = False
    low_crossings: int = 0
    exhausted_crossings: int = 0
    position: int = 0  # of the last event applied

    @property
    def balance(self) -> int | None:
        return None if self.granted is None else self.granted - self.used


@dataclass(slots=True)
class Entry:
    position: int
    contract_id: str
    period: str
    ticket_id: str
    kind: str
    minutes: int
    charge: int
    overage: int
    at: datetime
    engineer: str | None = None


@dataclass(slots=True)
class TicketCost:
    """What a ticket's time entries have cost so far (read when it is resolved)."""

    ticket_id: str
    contract_id: str
    minutes: int = 0
    charge: int = 0
    overage: int = 0
    position: int = 0  # of the last event of the ticket applied (an entry or a resolution)


@dataclass(frozen=True)
class Statement:
    """What a ticket had cost when it was resolved, and the contract's balance then."""

    ticket_id: str
    contract_id: str
    position: int
    resolved_at: datetime
    period: str
    unit: str
    minutes: int
    charge: int
    overage: int
    balance_after: int | None


@dataclass(frozen=True)
class Notice:
    """A balance crossed to or below the plan's threshold (`low-balance`) or zero (`exhausted`)."""

    kind: str
    contract_id: str
    period: str
    crossing: int
    unit: str
    granted: int
    used: int
    threshold: int | None
    position: int
    occurred_at: datetime
    ticket_id: str | None

    @property
    def notice_id(self) -> str:
        return f"{self.kind}:{self.contract_id}:{self.period}:{self.crossing}"


class LedgerView(Protocol):
    def book(self, contract_id: str) -> Book | None: ...
    def period(self, contract_id: str, label: str) -> Period | None: ...
    def put_book(self, book: Book) -> None: ...
    def put_period(self, period: Period) -> None: ...
    def add_entry(self, entry: Entry) -> None: ...
    def change_ticket(self, ticket_id: str, fold: Fold, *args: Any) -> bool: ...
    def add_statement(self, statement: Statement) -> None: ...
    def notify(self, notice: Notice) -> None: ...


class LedgerProjection:
    """Keeps every contract's ledger, its entries, the statements of resolved tickets."""

    name = "ledger"

    def apply(self, env: Envelope, view: LedgerView) -> bool:
        if env.type == "Contract.Signed":
            return self._signed(env, view)
        book = view.book(env.contract_id)
        if book is None:
            return False
        if env.type in ("Ticket.TimeConsumed", "Ticket.Resolved"):
            return self._ticket_event(env, book, view)
        if env.type == "Contract.CreditsAdded" and book.scheme == "credits":
            return self._credits(env, book, view)
        if env.type == "Contract.Renewed" and book.scheme in ("bank", "none"):
            return self._renewed(env, book, view)
        if env.type == "Contract.Cancelled" and not seen(env, book.position):
            book.status, book.position = "cancelled", env.position
            view.put_book(book)
            return True
        return False

    def _signed(self, env: Envelope, view: LedgerView) -> bool:
        if view.book(env.contract_id) is not None:
            return False  # a contract is signed once: this is a redelivery
        book = Book.signed(env)
        view.put_book(book)
        for label in book.periods:
            view.put_period(self._new_period(book, label, env.position))
        return True

    def _renewed(self, env: Envelope, book: Book, view: LedgerView) -> bool:
        start = env.data["period_starts_on"]
        if seen(env, book.position) or start <= book.periods[-1]:
            return False  # already applied (the aggregate refuses a renewal to an earlier start)
        book.add_period(start)
        book.position = env.position
        view.put_book(book)
        view.put_period(self._new_period(book, start, env.position))
        return True

    def _credits(self, env: Envelope, book: Book, view: LedgerView) -> bool:
        period = self._period(book, book.starts_on, view)
        if seen(env, period.position):
            return False
        period.granted = (period.granted or 0) + int(env.data["credits"])
        period.position = env.position
        return self._settle(book, period, env, None, view)

    @staticmethod
    def _new_period(book: Book, label: str, position: int, starts_at: datetime | None = None) -> Period:
        granted = 0 if book.scheme == "credits" else book.grant
        period = Period(book.contract_id, label, starts_at or local_midnight(label, book.time_zone), granted,
                        position=position)
        period.low = granted is not None and book.threshold is not None and granted <= book.threshold
        period.exhausted = granted is not None and granted <= 0
        return period

    def _period(self, book: Book, label: str, view: LedgerView, starts_at: datetime | None = None) -> Period:
        return view.period(book.contract_id, label) or self._new_period(book, label, 0, starts_at)

    def _ticket_event(self, env: Envelope, book: Book, view: LedgerView) -> bool:
        """A time entry or a resolution: it changes the period its instant falls in (the row
        that tells whether the event was applied) and the ticket's cost, folded by the view."""
        label, starts_at = book.period_of(env.occurred_at)
        period = self._period(book, label, view, starts_at)
        if seen(env, period.position):
            return False
        if env.type == "Ticket.Resolved":
            return self._resolved(env, book, period, view)
        return self._time(env, book, period, view)

    def _time(self, env: Envelope, book: Book, period: Period, view: LedgerView) -> bool:
        minutes, kind = int(env.data["minutes"]), env.data["kind"]
        charge = book.charge(kind, minutes)
        overage = 0
        if period.granted is not None:
            overage = split_allowance(max(0, period.used), charge, max(0, period.granted))[1]
        view.add_entry(Entry(env.position, book.contract_id, period.label, env.aggregate_id, kind, minutes,
                             charge, overage, env.occurred_at, env.data.get("engineer")))
        period.used += charge
        period.minutes += minutes
        period.entries += 1
        period.position = env.position
        view.change_ticket(env.aggregate_id, time_cost, env, book.contract_id, minutes, charge, overage)
        return self._settle(book, period, env, env.aggregate_id, view)

    @staticmethod
    def _resolved(env: Envelope, book: Book, period: Period, view: LedgerView) -> bool:
        period.position = env.position
        view.put_period(period)
        # The period's label and balance as they stand at the resolution; the cost, when folded.
        statement = Statement(env.aggregate_id, book.contract_id, env.position, env.occurred_at, period.label,
                              book.unit, 0, 0, 0, period.balance)
        view.change_ticket(env.aggregate_id, resolved_cost, env, statement, view)
        return True

    @staticmethod
    def _settle(book: Book, period: Period, env: Envelope, ticket_id: str | None, view: LedgerView) -> bool:
        """Store the period; notify when its balance has just crossed a line, once per crossing."""
        balance = period.balance
        if balance is not None:
            low, out = book.threshold is not None and balance <= book.threshold, balance <= 0

            def notice(kind: str, crossing: int) -> Notice:
                return Notice(kind, book.contract_id, period.label, crossing, book.unit, period.granted or 0,
                              period.used, book.threshold, env.position, env.occurred_at, ticket_id)

            if low and not period.low:
                period.low_crossings += 1
                view.notify(notice(LOW, period.low_crossings))
            if out and not period.exhausted:
                period.exhausted_crossings += 1
                view.notify(notice(EXHAUSTED, period.exhausted_crossings))
            period.low, period.exhausted = low, out
        view.put_period(period)
        return True


def time_cost(cost: TicketCost | None, env: Envelope, contract_id: str, minutes: int, charge: int,
              overage: int) -> TicketCost | None:
    """The fold of a time entry into its ticket's cost."""
    cost = cost or TicketCost(env.aggregate_id, contract_id)
    if seen(env, cost.position):
        return None
    return TicketCost(cost.ticket_id, contract_id, cost.minutes + minutes, cost.charge + charge,
                      cost.overage + overage, env.position)


def resolved_cost(cost: TicketCost | None, env: Envelope, statement: Statement, view: LedgerView) -> TicketCost | None:
    """The fold of a resolution into its ticket's cost: the statement of what it cost so far."""
    cost = cost or TicketCost(env.aggregate_id, statement.contract_id)
    if seen(env, cost.position):
        return None
    view.add_statement(replace(statement, minutes=cost.minutes, charge=cost.charge, overage=cost.overage))
    return TicketCost(cost.ticket_id, cost.contract_id, cost.minutes, cost.charge, cost.overage, env.position)


@dataclass
class InMemoryLedgerView:
    """The ledger in dicts, for unit tests and the in-memory benchmark."""

    books: dict[str, Book] = field(default_factory=dict)
    periods: dict[tuple[str, str], Period] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    tickets: dict[str, TicketCost] = field(default_factory=dict)
    statements: list[Statement] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def book(self, contract_id: str) -> Book | None:
        return self.books.get(contract_id)

    def period(self, contract_id: str, label: str) -> Period | None:
        return self.periods.get((contract_id, label))

    def put_book(self, book: Book) -> None:
        self.books[book.contract_id] = book

    def put_period(self, period: Period) -> None:
        self.periods[(period.contract_id, period.label)] = period

    def add_entry(self, entry: Entry) -> None:
        self.entries.append(entry)

    def change_ticket(self, ticket_id: str, fold: Fold, *args: Any) -> bool:
        cost = fold(self.tickets.get(ticket_id), *args)
        if cost is not None:
            self.tickets[ticket_id] = cost
        return cost is not None

    def add_statement(self, statement: Statement) -> None:
        self.statements.append(statement)

    def notify(self, notice: Notice) -> None:
        self.notices.append(notice)

    # -- queries, for tests ---------------------------------------------------------------

    def entries_of(self, contract_id: str, label: str) -> list[Entry]:
        return [e for e in self.entries if e.contract_id == contract_id and e.period == label]

    def labels(self, contract_id: str) -> list[str]:
        found = [p for (c, _), p in self.periods.items() if c == contract_id]
        return [p.label for p in sorted(found, key=lambda p: p.starts_at)]
