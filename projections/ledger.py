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
and statements are keyed by their event's position (the rows: projections/ledger_rows.py).
Views are ports: `InMemoryLedgerView` here, a PostgreSQL one in infra/postgres/views/ledger.py.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from domain.billing import split_allowance
from domain.periods import local_midnight
from domain.personal import ERASED
from projections.envelope import Envelope, Fold, seen
from projections.ledger_rows import Book, Entry, Notice, Period, Statement, TicketCost

LOW, EXHAUSTED = "low-balance", "exhausted"


class LedgerView(Protocol):
    """The ledger's rows by key: books, periods, entries, tickets' costs, statements, notices."""

    def book(self, contract_id: str) -> Book | None: ...
    def period(self, contract_id: str, label: str) -> Period | None: ...
    def put_book(self, book: Book) -> None: ...
    def put_period(self, period: Period) -> None: ...
    def add_entry(self, entry: Entry) -> None: ...
    def change_ticket(self, ticket_id: str, fold: Fold, *args: Any) -> bool: ...
    def add_statement(self, statement: Statement) -> None: ...
    def notify(self, notice: Notice) -> None: ...
    def erase(self, contract_id: str) -> None:
        """Blank the personal field (the engineer) of every entry of the contract."""
        ...
    def flush(self) -> int: ...


class LedgerProjection:
    """Keeps every contract's ledger, its entries, the statements of resolved tickets."""

    name = "ledger"
    reads: frozenset[str] | None = frozenset({  # what `apply` acts on
        "Contract.Signed", "Contract.CreditsAdded", "Contract.Renewed", "Contract.Cancelled", ERASED,
        "Ticket.TimeConsumed", "Ticket.Resolved"})

    def apply(self, env: Envelope, view: LedgerView) -> bool:
        if env.type == "Contract.Signed":
            return self._signed(env, view)
        book = view.book(env.contract_id)
        if book is None:
            return False
        if env.type == ERASED:
            view.erase(env.contract_id)  # idempotent: a redelivery blanks what is blank already
            return True
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

    def tick(self, now: datetime, view: LedgerView) -> None:
        """Nothing in the ledger waits for time: periods change only through recorded events."""

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

    def prefetch(self, contracts: Collection[str]) -> None:
        """Every row is in memory already."""

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

    def erase(self, contract_id: str) -> None:
        self.entries = [replace(e, engineer=None) if e.contract_id == contract_id else e for e in self.entries]

    def flush(self) -> int:
        return 0  # every fold ran at once

    # -- queries, for tests ---------------------------------------------------------------

    def entries_of(self, contract_id: str, label: str) -> list[Entry]:
        return [e for e in self.entries if e.contract_id == contract_id and e.period == label]

    def labels(self, contract_id: str) -> list[str]:
        found = [p for (c, _), p in self.periods.items() if c == contract_id]
        return [p.label for p in sorted(found, key=lambda p: p.starts_at)]
