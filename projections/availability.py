"""Availability: per contract, the outages its `system-down` tickets report, the maintenance
windows it announced, and its time zone and availability target; the monthly figures are
computed at query time by domain/availability.py (open outages clipped at "now"), and the
projection's `tick` decides, once per contract and month, that the month's error budget is
spent. The view stores each ticket's facts (`TicketFacts`) and the outage segments derived
from them; the in-memory view below is the reference the PostgreSQL one must agree with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from domain.availability import (
    Interval,
    MonthlyAvailability,
    intersect,
    month_bounds,
    monthly_availability,
    split_by_month,
    subtract,
)
from domain.plans import PlanTerms
from projections.envelope import Envelope

DOWN = "system-down"
# Ticket events that may change a ticket's outage, by the change kind the view folds.
CHANGES = {
    "Ticket.Classified": "classified",
    "Ticket.Restored": "restored",
    "Ticket.Resolved": "resolved",
    "Ticket.Reopened": "reopened",
    "Ticket.Cancelled": "cancelled",
}
Segment = tuple[datetime, datetime | None]


class Change(NamedTuple):
    """One fact about a ticket that may move its outage; `down` only for "classified"."""

    kind: str
    at: datetime
    down: bool = False


@dataclass(frozen=True)
class TicketFacts:
    """What the availability rules need to know about one ticket, and its outage segments.

    Interpretations (DESIGN section 4 leaves them open):
    - The outage starts at `down_since`, else at the opening; it ends at the restoration,
      else at the resolution; while neither happened it is open and counts up to "now".
    - Classification is retroactive, as for the SLA: a ticket classified *into* system-down
      is an outage from its `down_since`/opening; one classified *away* from system-down
      was never one (its whole outage is withdrawn); classified back, it is one again.
    - A cancelled ticket is a withdrawn report (duplicate, false alarm): no outage at all,
      even if a restoration had been recorded; a real outage is closed by restore/resolve.
    - Reopened after a resolution without restoration: the outage resumes at the reopening
      (the time between resolution and reopening was reported as working, so it is not
      downtime). After a restoration a reopening starts no outage: restoration is final
      (the ticket cannot be restored twice); a new outage needs a new ticket.
    """

    ticket_id: str
    contract_id: str
    since: datetime
    down: bool
    cancelled: bool = False
    history: tuple[tuple[str, datetime], ...] = ()  # restored / resolved / reopened, in order

    def after(self, change: Change) -> TicketFacts:
        if change.kind == "classified":
            return self if self.down == change.down else replace(self, down=change.down)
        if change.kind == "cancelled":
            return replace(self, cancelled=True)
        return replace(self, history=(*self.history, (change.kind, change.at)))

    def segments(self) -> list[Segment]:
        if not self.down or self.cancelled:
            return []
        found: list[Segment] = []
        start: datetime | None = self.since
        restored = False
        for kind, at in self.history:
            if kind == "reopened":
                start = at if start is None and not restored else start
            elif start is not None:  # restored or resolved: the outage ends here
                found.append((start, max(start, at)))
                start = None
            restored = restored or kind == "restored"
        if start is not None:
            found.append((start, None))
        return found


class Outage(NamedTuple):
    """One stored outage segment; `end` None while the outage is open."""

    ticket_id: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class ContractOutages:
    """Everything needed for one contract's monthly figures."""

    contract_id: str
    time_zone: str
    target_pct: float | None
    outages: tuple[Outage, ...] = ()
    maintenance: tuple[Interval, ...] = ()
    noticed: frozenset[str] = frozenset()

    def intervals(self, now: datetime) -> list[Interval]:
        """The outages as closed intervals, open ones (and any future part) clipped at now."""
        clipped = ((o.start, now if o.end is None else min(o.end, now)) for o in self.outages)
        return [(start, end) for start, end in clipped if start < end]

    def month(self, month: str, now: datetime) -> MonthlyAvailability:
        """The month's figures as of `now`; raises ValueError on a malformed month."""
        return monthly_availability(
            month, self.time_zone, self.intervals(now), self.maintenance, self.target_pct
        )


@dataclass(frozen=True)
class BudgetNotice:
    """A month whose downtime used up the error budget the plan's target allows."""

    contract_id: str
    time_zone: str
    figures: MonthlyAvailability
    exhausted_at: datetime
    decided_at: datetime

    @property
    def month(self) -> str:
        return self.figures.month

    @property
    def notice_id(self) -> str:
        return f"budget-exhausted:{self.contract_id}:{self.month}"


def budget_notices(contract: ContractOutages, now: datetime) -> list[BudgetNotice]:
    """The not yet noticed months whose budget is spent (nothing left, at or below zero)."""
    if contract.target_pct is None:
        return []
    intervals = contract.intervals(now)
    notices = []
    for month in split_by_month(intervals, contract.time_zone):
        if month in contract.noticed:
            continue
        figures = contract.month(month, now)
        left, allowed = figures.budget_left_minutes, figures.allowed_downtime_minutes
        if figures.downtime_minutes > 0 and left is not None and allowed is not None and left <= 0:
            spent = _spent_at(month, contract, intervals, allowed)
            notices.append(BudgetNotice(contract.contract_id, contract.time_zone, figures, spent, now))
    return notices


def _spent_at(month: str, contract: ContractOutages, intervals: list[Interval], allowed: float) -> datetime:
    """The instant the month's counted downtime reached the allowed minutes."""
    bounds = month_bounds(month, contract.time_zone)
    counted = subtract(intersect(intervals, [bounds]), contract.maintenance)
    left = timedelta(minutes=allowed)
    for start, end in counted:
        if end - start >= left:
            return start + left
        left -= end - start
    return counted[-1][1]  # only reached through rounding of `allowed`


class AvailabilityView(Protocol):
    def signed(self, contract_id: str, time_zone: str, target_pct: float | None) -> None: ...
    def scheduled(self, contract_id: str, position: int, window: Interval, reason: str | None) -> None: ...
    def opened(self, facts: TicketFacts) -> None: ...
    def changed(self, ticket_id: str, change: Change) -> None: ...
    def to_check(self) -> list[ContractOutages]: ...
    def budget_exhausted(self, notice: BudgetNotice) -> None: ...
    def checked(self, contract_id: str) -> None: ...


def instant(text: str) -> datetime:
    """An ISO-8601 instant with offset, as stored in events, in UTC."""
    value = datetime.fromisoformat(text)
    if value.utcoffset() is None:
        raise ValueError(f"instant without offset: {text!r}")
    return value.astimezone(UTC)


class AvailabilityProjection:
    """Keeps outages, maintenance windows and contract terms; notices spent budgets."""

    name = "availability"

    def apply(self, env: Envelope, view: AvailabilityView) -> bool:
        kind = CHANGES.get(env.type)
        if kind is not None:
            return self._change(env, kind, view)
        if env.type == "Ticket.Opened":
            d = env.data
            since = instant(d["down_since"]) if d.get("down_since") else env.occurred_at
            view.opened(TicketFacts(env.aggregate_id, env.contract_id, since, d.get("category") == DOWN))
        elif env.type == "Contract.Signed":
            target = PlanTerms.from_dict(env.data["terms"]).availability_target_pct
            view.signed(env.aggregate_id, env.data["time_zone"], target)
        elif env.type == "Contract.MaintenanceScheduled":
            d = env.data
            window = (instant(d["starts_at"]), instant(d["ends_at"]))
            view.scheduled(env.aggregate_id, env.position, window, d.get("reason"))
        else:
            return False
        return True

    @staticmethod
    def _change(env: Envelope, kind: str, view: AvailabilityView) -> bool:
        category = env.data.get("category")
        if kind == "classified" and not category:
            return False  # the priority alone changed: nothing for availability
        view.changed(env.aggregate_id, Change(kind, env.occurred_at, category == DOWN))
        return True

    def tick(self, now: datetime, view: AvailabilityView) -> None:
        """Check the contracts whose outages changed or are still open; notice spent budgets."""
        for contract in view.to_check():
            for notice in budget_notices(contract, now):
                view.budget_exhausted(notice)
            view.checked(contract.contract_id)


@dataclass
class InMemoryAvailabilityView:
    """The availability read model in dicts, for unit tests and the benchmark."""

    contracts: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    tickets: dict[str, TicketFacts] = field(default_factory=dict)
    maintenance: dict[str, dict[int, Interval]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    notices: list[BudgetNotice] = field(default_factory=list)

    def signed(self, contract_id: str, time_zone: str, target_pct: float | None) -> None:
        self.contracts[contract_id] = (time_zone, target_pct)

    def scheduled(self, contract_id: str, position: int, window: Interval, reason: str | None) -> None:
        self.maintenance.setdefault(contract_id, {})[position] = window
        self.dirty.add(contract_id)

    def opened(self, facts: TicketFacts) -> None:
        self.tickets.setdefault(facts.ticket_id, facts)
        self.dirty.add(facts.contract_id)

    def changed(self, ticket_id: str, change: Change) -> None:
        facts = self.tickets.get(ticket_id)
        if facts is not None:
            self.tickets[ticket_id] = facts.after(change)
            self.dirty.add(facts.contract_id)

    def outages_of(self, contract_id: str) -> ContractOutages | None:
        if contract_id not in self.contracts:
            return None
        zone, target = self.contracts[contract_id]
        outages = sorted(
            (Outage(t.ticket_id, start, end)
             for t in self.tickets.values() if t.contract_id == contract_id
             for start, end in t.segments()),
            key=lambda o: (o.start, o.ticket_id),  # stable: a ticket's segments stay in order
        )
        windows = tuple(sorted(self.maintenance.get(contract_id, {}).values()))
        noticed = frozenset(n.month for n in self.notices if n.contract_id == contract_id)
        return ContractOutages(contract_id, zone, target, tuple(outages), windows, noticed)

    def to_check(self) -> list[ContractOutages]:
        open_ = {t.contract_id for t in self.tickets.values() if any(e is None for _, e in t.segments())}
        found = (self.outages_of(c) for c in sorted(self.dirty | open_))
        return [c for c in found if c is not None and c.target_pct is not None]

    def budget_exhausted(self, notice: BudgetNotice) -> None:
        if all(n.notice_id != notice.notice_id for n in self.notices):
            self.notices.append(notice)

    def checked(self, contract_id: str) -> None:
        self.dirty.discard(contract_id)


def facts_to_json(history: Iterable[tuple[str, datetime]]) -> list[list[str]]:
    """A ticket's history as JSON-able pairs (the PostgreSQL view stores it so)."""
    return [[kind, at.isoformat()] for kind, at in history]


def facts_from_json(pairs: Any) -> tuple[tuple[str, datetime], ...]:
    return tuple((kind, instant(at)) for kind, at in pairs)
