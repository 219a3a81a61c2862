"""Availability: per contract, the outages its `system-down` tickets report, the maintenance
windows it announced, and its time zone and availability target; the monthly figures are
computed at query time by domain/availability.py (open outages clipped at "now"), and the
projection's `tick` decides, once per contract and month, that the month's error budget is
spent. Every rule is here: the folds of a ticket's facts (`OutageFacts`,
projections/availability_rows.py, which give its outage segments) also mark, on the contract's
row, from when its figures may have moved (`Terms.dirty_since`); a view stores the rows by key
and answers the tick's indexed questions (the contracts marked or with an open outage, and one
contract's outages over a span). The in-memory view below is the reference the PostgreSQL one
must agree with.
Each ticket's facts and each contract's terms record the store position of the last event
applied to them, and the projection ignores an event at or below it (a redelivery, or a
rebuild that overlapped the live runner), so replaying any part again changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from domain.availability import Interval, MonthlyAvailability, intersect, split_by_month, subtract
from domain.periods import from_iso, month_bounds, months_between
from domain.personal import ERASED
from domain.plans import PlanTerms
from projections.availability_rows import (
    Candidate,
    ContractOutages,
    Outage,
    OutageChange,
    OutageFacts,
    Segment,
    StoredOutage,
    Terms,
)
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


def _earliest(*instants: datetime | None) -> datetime | None:
    return min((i for i in instants if i is not None), default=None)


def touched(before: list[Segment], after: list[Segment]) -> datetime | None:
    """From when a ticket's change of segments may move the figures (None: it does not)."""
    if before == after:
        return None
    return min(start for start, _ in before + after)


def marked(terms: Terms, since: datetime | None) -> Terms:
    """A contract's terms once its figures may have moved from `since` on (None: they did
    not): only a contract with a target has budgets to check again."""
    if since is None or terms.target_pct is None:
        return terms
    return terms._replace(dirty_since=_earliest(terms.dirty_since, since))


class AvailabilityView(Protocol):
    """The availability rows by key, and the tick's questions; nothing here decides."""

    def contract(self, contract_id: str) -> Terms | None: ...
    def put_contract(self, contract_id: str, terms: Terms) -> None: ...
    def scheduled(self, contract_id: str, position: int, window: Interval, reason: str | None) -> None: ...
    def change(self, ticket_id: str, fold: Fold, *args: Any) -> bool: ...
    def candidates(self) -> list[Candidate]:
        """The contracts with `dirty_since` set or an outage segment without an end."""
        ...
    def outages_of(self, contract_id: str, since: datetime | None = None,
                   until: datetime | None = None) -> ContractOutages | None: ...
    def budget_exhausted(self, notice: BudgetNotice) -> None: ...
    def checked(self, contract_id: str) -> None:
        """Clear the contract's `dirty_since`."""
        ...
    def erase(self, contract_id: str) -> None:
        """Blank the personal field (the reason) of the contract's maintenance windows."""
        ...
    def flush(self) -> int: ...


class AvailabilityProjection:
    """Keeps outages, maintenance windows and contract terms; notices spent budgets."""

    name = "availability"
    reads: frozenset[str] | None = frozenset(
        {*CHANGES, "Ticket.Opened", "Contract.Signed", "Contract.MaintenanceScheduled", ERASED})  # what `apply` acts on

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
        if env.type == ERASED and view.contract(env.aggregate_id) is not None:
            view.erase(env.aggregate_id)  # idempotent: a redelivery blanks what is blank already
            return True
        return False

    @staticmethod
    def _opened(env: Envelope, view: AvailabilityView) -> bool:
        d = env.data
        since = from_iso(d["down_since"]) if d.get("down_since") else env.occurred_at
        facts = OutageFacts(env.aggregate_id, env.contract_id, since, d.get("category") == DOWN, position=env.position)
        return view.change(env.aggregate_id, opened, facts, view)

    @staticmethod
    def _change(env: Envelope, kind: str, view: AvailabilityView) -> bool:
        category = env.data.get("category")
        if kind == "classified" and not category:
            return False  # the priority alone changed: nothing for availability
        return view.change(env.aggregate_id, changed, env, OutageChange(kind, env.occurred_at, category == DOWN), view)

    @staticmethod
    def _scheduled(env: Envelope, view: AvailabilityView) -> bool:
        terms = view.contract(env.aggregate_id)
        if terms is None or seen(env, terms.position):
            return False  # a contract never seen signed, or already applied
        d = env.data
        window = (from_iso(d["starts_at"]), from_iso(d["ends_at"]))
        view.scheduled(env.aggregate_id, env.position, window, d.get("reason"))
        view.put_contract(env.aggregate_id, marked(terms._replace(position=env.position), window[0]))
        return True

    def tick(self, now: datetime, view: AvailabilityView) -> None:
        """Check the months that may have moved (changed, or with an outage still open) and
        are not noticed yet; load only their outages, so a catch-up stays cheap."""
        for candidate in view.candidates():
            terms = candidate.terms
            since = _earliest(terms.dirty_since, candidate.open_since)
            if terms.target_pct is not None and since is not None:
                self._check(candidate, since, now, view)
            if terms.dirty_since is not None:
                view.checked(candidate.contract_id)

    @staticmethod
    def _check(candidate: Candidate, since: datetime, now: datetime, view: AvailabilityView) -> None:
        zone = candidate.terms.time_zone
        months = [m for m in months_between(since, now, zone) if m not in candidate.noticed]
        if months:
            start, end = month_bounds(months[0], zone)[0], month_bounds(months[-1], zone)[1]
            contract = view.outages_of(candidate.contract_id, start, end)
            for notice in budget_notices(contract, now, months) if contract else []:
                view.budget_exhausted(notice)


def _moved(view: AvailabilityView, before: OutageFacts | None, after: OutageFacts) -> None:
    """Mark the ticket's contract from when the change of its outage segments may move the
    figures (`touched`)."""
    since = touched(before.segments() if before else [], after.segments())
    terms = view.contract(after.contract_id) if since is not None else None
    if terms is not None and (new := marked(terms, since)) != terms:
        view.put_contract(after.contract_id, new)


def opened(found: OutageFacts | None, facts: OutageFacts, view: AvailabilityView) -> OutageFacts | None:
    """The fold of a ticket's opening: its facts, unless it has some already (a redelivery)."""
    if opening(found, facts) is None:
        return None
    _moved(view, None, facts)
    return facts


def changed(facts: OutageFacts | None, env: Envelope, change: OutageChange, view: AvailabilityView) -> OutageFacts | None:
    """The fold of a change of a ticket's facts."""
    if facts is None or seen(env, facts.position):
        return None  # never seen opened, or already applied
    after = facts.after(change, env.position)
    _moved(view, facts, after)
    return after


@dataclass
class InMemoryAvailabilityView:
    """The availability read model in dicts, for unit tests and the benchmark: a plain store
    that runs a fold at once, and answers the tick's questions by looking at every row."""

    contracts: dict[str, Terms] = field(default_factory=dict)
    tickets: dict[str, OutageFacts] = field(default_factory=dict)
    maintenance: dict[str, dict[int, Interval]] = field(default_factory=dict)
    notices: list[BudgetNotice] = field(default_factory=list)

    def prefetch(self, contracts: Collection[str]) -> None:
        """Every row is in memory already."""

    def contract(self, contract_id: str) -> Terms | None:
        return self.contracts.get(contract_id)

    def put_contract(self, contract_id: str, terms: Terms) -> None:
        self.contracts[contract_id] = terms

    def scheduled(self, contract_id: str, position: int, window: Interval, reason: str | None) -> None:
        self.maintenance.setdefault(contract_id, {})[position] = window

    def change(self, ticket_id: str, fold: Fold, *args: Any) -> bool:
        facts = fold(self.tickets.get(ticket_id), *args)
        if facts is None:
            return False
        self.tickets[ticket_id] = facts
        return True

    def outages_of(self, contract_id: str, since: datetime | None = None,
                   until: datetime | None = None) -> ContractOutages | None:
        if contract_id not in self.contracts:
            return None
        lo = since or datetime.min.replace(tzinfo=UTC)
        hi = until or datetime.max.replace(tzinfo=UTC)
        terms = self.contracts[contract_id]
        outages = sorted(
            (o for o in self._outages() if o.contract_id == contract_id and o.start < hi and (o.end is None or o.end > lo)),
            key=lambda o: (o.start, o.ticket_id),  # stable: a ticket's segments stay in order
        )
        windows = sorted(w for w in self.maintenance.get(contract_id, {}).values() if w[0] < hi and w[1] > lo)
        return ContractOutages(contract_id, terms.time_zone, terms.target_pct,
                               tuple(Outage(o.ticket_id, o.start, o.end) for o in outages), tuple(windows),
                               self._noticed(contract_id))

    def _outages(self) -> list[StoredOutage]:
        """The outage segments as the PostgreSQL view stores them: its rows, per ticket."""
        return [StoredOutage(t.contract_id, t.ticket_id, start, end)
                for t in self.tickets.values() for start, end in t.segments()]

    def _noticed(self, contract_id: str) -> frozenset[str]:
        return frozenset(n.month for n in self.notices if n.contract_id == contract_id)

    def candidates(self) -> list[Candidate]:
        open_since: dict[str, datetime] = {}
        for o in self._outages():
            if o.end is None:
                open_since[o.contract_id] = min(o.start, open_since.get(o.contract_id, o.start))
        ids = {c for c, t in self.contracts.items() if t.dirty_since is not None} | set(open_since)
        return [Candidate(c, self.contracts[c], open_since.get(c), self._noticed(c))
                for c in sorted(ids) if c in self.contracts]

    def budget_exhausted(self, notice: BudgetNotice) -> None:
        if all(n.notice_id != notice.notice_id for n in self.notices):
            self.notices.append(notice)

    def erase(self, contract_id: str) -> None:
        """The windows' reasons are not kept here: nothing to blank."""

    def checked(self, contract_id: str) -> None:
        self.contracts[contract_id] = self.contracts[contract_id]._replace(dirty_since=None)

    def flush(self) -> int:
        return 0  # every fold ran at once

