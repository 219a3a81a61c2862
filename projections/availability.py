"""Availability: per contract, the outages its `system-down` tickets report, the maintenance
windows it announced, and its time zone and availability target; the monthly figures are
computed at query time by domain/availability.py (open outages clipped at "now"), and the
projection's `tick` decides, once per contract and month, that the month's error budget is
spent. The view stores each ticket's facts (`OutageFacts`, projections/availability_rows.py)
and the outage segments derived from them; the in-memory view below is the reference the
PostgreSQL one must agree with.
Each ticket's facts and each contract's terms record the store position of the last event
applied to them, and the projection ignores an event at or below it (a redelivery, or a
rebuild that overlapped the live runner), so replaying any part again changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from domain.availability import Interval, MonthlyAvailability, intersect, split_by_month, subtract
from domain.periods import from_iso, month_bounds, months_between
from domain.plans import PlanTerms
from projections.availability_rows import OutageChange, ContractOutages, Outage, Segment, Terms, OutageFacts
from projections.envelope import Envelope, Fold, opening, seen

DOWN = "system-down"
# Ticket events that may change a ticket's outage, by the change kind the view folds.
CHANGES = {"Ticket.Classified": "classified", "Ticket.Restored": "restored",
           "Ticket.Resolved": "resolved", "Ticket.Reopened": "reopened", "Ticket.Cancelled": "cancelled"}


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


def budget_notices(
    contract: ContractOutages, now: datetime, months: Iterable[str] | None = None
) -> list[BudgetNotice]:
    """The not yet noticed months (of `months`, default all) whose budget is spent: nothing
    left, at or below zero, as the ledger calls a balance at zero exhausted."""
    if contract.target_pct is None:
        return []
    intervals = contract.intervals(now)
    wanted = None if months is None else set(months)
    notices = []
    for month in split_by_month(intervals, contract.time_zone):
        if month in contract.noticed or (wanted is not None and month not in wanted):
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


class Pending(NamedTuple):
    """A contract with a target whose budgets may have moved since `since`: its outages or
    maintenance changed from there on (`dirty`), or an outage open since then still runs."""

    contract_id: str
    time_zone: str
    since: datetime
    noticed: frozenset[str]


def touched(before: list[Segment], after: list[Segment]) -> datetime | None:
    """From when a ticket's change of segments may move the figures (None: it does not)."""
    if before == after:
        return None
    return min(start for start, _ in before + after)


class AvailabilityView(Protocol):
    def contract(self, contract_id: str) -> Terms | None: ...
    def put_contract(self, contract_id: str, terms: Terms) -> None: ...
    def scheduled(self, contract_id: str, position: int, window: Interval, reason: str | None) -> None: ...
    def change(self, ticket_id: str, fold: Fold, *args: Any) -> bool: ...
    def to_check(self) -> list[Pending]: ...
    def outages_of(self, contract_id: str, since: datetime | None = None,
                   until: datetime | None = None) -> ContractOutages | None: ...
    def budget_exhausted(self, notice: BudgetNotice) -> None: ...
    def checked(self, contract_id: str) -> None: ...


class AvailabilityProjection:
    """Keeps outages, maintenance windows and contract terms; notices spent budgets."""

    name = "availability"

    def apply(self, env: Envelope, view: AvailabilityView) -> bool:
        kind = CHANGES.get(env.type)
        if kind is not None:
            return self._change(env, kind, view)
        if env.type == "Ticket.Opened":
            return self._opened(env, view)
        if env.type == "Contract.Signed":
            if view.contract(env.aggregate_id) is not None:
                return False  # a contract is signed once: this is a redelivery
            target = PlanTerms.from_dict(env.data["terms"]).availability_target_pct
            view.put_contract(env.aggregate_id, Terms(env.data["time_zone"], target, env.position))
            return True
        if env.type == "Contract.MaintenanceScheduled":
            return self._scheduled(env, view)
        return False

    @staticmethod
    def _opened(env: Envelope, view: AvailabilityView) -> bool:
        d = env.data
        since = from_iso(d["down_since"]) if d.get("down_since") else env.occurred_at
        facts = OutageFacts(env.aggregate_id, env.contract_id, since, d.get("category") == DOWN, position=env.position)
        return view.change(env.aggregate_id, opening, facts)

    @staticmethod
    def _change(env: Envelope, kind: str, view: AvailabilityView) -> bool:
        category = env.data.get("category")
        if kind == "classified" and not category:
            return False  # the priority alone changed: nothing for availability
        return view.change(env.aggregate_id, changed, env, OutageChange(kind, env.occurred_at, category == DOWN))

    @staticmethod
    def _scheduled(env: Envelope, view: AvailabilityView) -> bool:
        terms = view.contract(env.aggregate_id)
        if terms is None or seen(env, terms.position):
            return False  # a contract never seen signed, or already applied
        d = env.data
        window = (from_iso(d["starts_at"]), from_iso(d["ends_at"]))
        view.scheduled(env.aggregate_id, env.position, window, d.get("reason"))
        view.put_contract(env.aggregate_id, terms._replace(position=env.position))
        return True

    def tick(self, now: datetime, view: AvailabilityView) -> None:
        """Check the months that may have moved (changed, or with an outage still open) and
        are not noticed yet; load only their outages, so a catch-up stays cheap."""
        for pending in view.to_check():
            zone = pending.time_zone
            months = [m for m in months_between(pending.since, now, zone) if m not in pending.noticed]
            if months:
                start, end = month_bounds(months[0], zone)[0], month_bounds(months[-1], zone)[1]
                contract = view.outages_of(pending.contract_id, start, end)
                for notice in budget_notices(contract, now, months) if contract else []:
                    view.budget_exhausted(notice)
            view.checked(pending.contract_id)


def changed(facts: OutageFacts | None, env: Envelope, change: OutageChange) -> OutageFacts | None:
    """The fold of a change of a ticket's facts."""
    if facts is None or seen(env, facts.position):
        return None  # never seen opened, or already applied
    return facts.after(change, env.position)


@dataclass
class InMemoryAvailabilityView:
    """The availability read model in dicts, for unit tests and the benchmark."""

    contracts: dict[str, Terms] = field(default_factory=dict)
    tickets: dict[str, OutageFacts] = field(default_factory=dict)
    maintenance: dict[str, dict[int, Interval]] = field(default_factory=dict)
    dirty: dict[str, datetime] = field(default_factory=dict)
    notices: list[BudgetNotice] = field(default_factory=list)

    def _dirty(self, contract_id: str, since: datetime | None) -> None:
        if since is not None:
            self.dirty[contract_id] = min(since, self.dirty.get(contract_id, since))

    def contract(self, contract_id: str) -> Terms | None:
        return self.contracts.get(contract_id)

    def put_contract(self, contract_id: str, terms: Terms) -> None:
        self.contracts[contract_id] = terms

    def scheduled(self, contract_id: str, position: int, window: Interval, reason: str | None) -> None:
        self.maintenance.setdefault(contract_id, {})[position] = window
        self._dirty(contract_id, window[0])

    def change(self, ticket_id: str, fold: Fold, *args: Any) -> bool:
        before = self.tickets.get(ticket_id)
        facts = fold(before, *args)
        if facts is None:
            return False
        self.tickets[ticket_id] = facts
        self._dirty(facts.contract_id, touched(before.segments() if before else [], facts.segments()))
        return True

    def outages_of(self, contract_id: str, since: datetime | None = None,
                   until: datetime | None = None) -> ContractOutages | None:
        if contract_id not in self.contracts:
            return None
        lo = since or datetime.min.replace(tzinfo=UTC)
        hi = until or datetime.max.replace(tzinfo=UTC)
        zone, target, _ = self.contracts[contract_id]
        outages = sorted(
            (Outage(t.ticket_id, start, end)
             for t in self.tickets.values() if t.contract_id == contract_id
             for start, end in t.segments() if start < hi and (end is None or end > lo)),
            key=lambda o: (o.start, o.ticket_id),  # stable: a ticket's segments stay in order
        )
        windows = sorted(w for w in self.maintenance.get(contract_id, {}).values() if w[0] < hi and w[1] > lo)
        noticed = frozenset(n.month for n in self.notices if n.contract_id == contract_id)
        return ContractOutages(contract_id, zone, target, tuple(outages), tuple(windows), noticed)

    def to_check(self) -> list[Pending]:
        since = dict(self.dirty)
        for t in self.tickets.values():
            for start, end in t.segments():
                if end is None:
                    since[t.contract_id] = min(start, since.get(t.contract_id, start))
        pending = []
        for contract_id, when in sorted(since.items()):
            zone, target, _ = self.contracts.get(contract_id, Terms("UTC", None, 0))
            if target is not None:
                noticed = frozenset(n.month for n in self.notices if n.contract_id == contract_id)
                pending.append(Pending(contract_id, zone, when, noticed))
        return pending

    def budget_exhausted(self, notice: BudgetNotice) -> None:
        if all(n.notice_id != notice.notice_id for n in self.notices):
            self.notices.append(notice)

    def checked(self, contract_id: str) -> None:
        self.dirty.pop(contract_id, None)
