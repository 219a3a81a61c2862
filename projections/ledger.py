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
raises a notice once per crossing. Views are ports: `InMemoryLedgerView` here, a PostgreSQL one
in infra/readmodels/ledger.py.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol
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
from projections.envelope import Envelope

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
    # The last period found, as [from, until) instants, its label and start: most entries
    # fall in the same period as the one before, so they skip the zone and calendar math.
    _span: tuple[datetime, datetime, str, datetime] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def signed(cls, env: Envelope) -> Book:
        terms = PlanTerms.from_dict(env.data["terms"])
        book = cls(env.contract_id, env.data["plan_id"], "none", env.data["time_zone"],
                   env.data["starts_on"], terms.low_balance_threshold, periods=[env.data["starts_on"]])
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
    def ticket_totals(self, ticket_id: str) -> tuple[int, int, int]: ...
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
        if env.type == "Ticket.TimeConsumed":
            return self._time(env, book, view)
        if env.type == "Ticket.Resolved":
            return self._resolved(env, book, view)
        if env.type == "Contract.CreditsAdded" and book.scheme == "credits":
            period = self._period(book, book.starts_on, view)
            period.granted = (period.granted or 0) + int(env.data["credits"])
            return self._settle(book, period, env, None, view)
        if env.type == "Contract.Renewed" and book.scheme in ("bank", "none"):
            start = env.data["period_starts_on"]
            if start <= book.periods[-1]:
                return False  # the aggregate refuses this; a replayed duplicate, then
            book.add_period(start)
            view.put_book(book)
            view.put_period(self._new_period(book, start))
            return True
        if env.type == "Contract.Cancelled":
            book.status = "cancelled"
            view.put_book(book)
            return True
        return False

    def _signed(self, env: Envelope, view: LedgerView) -> bool:
        if view.book(env.contract_id) is not None:
            return False
        book = Book.signed(env)
        view.put_book(book)
        for label in book.periods:
            view.put_period(self._new_period(book, label))
        return True

    @staticmethod
    def _new_period(book: Book, label: str, starts_at: datetime | None = None) -> Period:
        granted = 0 if book.scheme == "credits" else book.grant
        period = Period(book.contract_id, label, starts_at or local_midnight(label, book.time_zone), granted)
        period.low = granted is not None and book.threshold is not None and granted <= book.threshold
        period.exhausted = granted is not None and granted <= 0
        return period

    def _period(self, book: Book, label: str, view: LedgerView, starts_at: datetime | None = None) -> Period:
        return view.period(book.contract_id, label) or self._new_period(book, label, starts_at)

    def _time(self, env: Envelope, book: Book, view: LedgerView) -> bool:
        minutes, kind = int(env.data["minutes"]), env.data["kind"]
        label, starts_at = book.period_of(env.occurred_at)
        period = self._period(book, label, view, starts_at)
        charge = book.charge(kind, minutes)
        overage = 0
        if period.granted is not None:
            overage = split_allowance(max(0, period.used), charge, max(0, period.granted))[1]
        view.add_entry(Entry(env.position, book.contract_id, label, env.aggregate_id, kind, minutes,
                             charge, overage, env.occurred_at, env.data.get("engineer")))
        period.used += charge
        period.minutes += minutes
        period.entries += 1
        return self._settle(book, period, env, env.aggregate_id, view)

    def _resolved(self, env: Envelope, book: Book, view: LedgerView) -> bool:
        label, starts_at = book.period_of(env.occurred_at)
        period = self._period(book, label, view, starts_at)
        minutes, charge, overage = view.ticket_totals(env.aggregate_id)
        view.put_period(period)
        view.add_statement(Statement(env.aggregate_id, book.contract_id, env.position, env.occurred_at,
                                     label, book.unit, minutes, charge, overage, period.balance))
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


@dataclass
class InMemoryLedgerView:
    """The ledger in dicts, for unit tests and the in-memory benchmark."""

    books: dict[str, Book] = field(default_factory=dict)
    periods: dict[tuple[str, str], Period] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    tickets: dict[str, list[int]] = field(default_factory=dict)
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
        totals = self.tickets.setdefault(entry.ticket_id, [0, 0, 0])
        totals[0] += entry.minutes
        totals[1] += entry.charge
        totals[2] += entry.overage

    def ticket_totals(self, ticket_id: str) -> tuple[int, int, int]:
        minutes, charge, overage = self.tickets.get(ticket_id, [0, 0, 0])
        return minutes, charge, overage

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
