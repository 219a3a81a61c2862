"""Availability's rows: what the outage rules need to know of a ticket (`OutageFacts`, and the
outage segments they give), a contract's terms, a stored outage, a contract the tick looks at
(`Candidate`), and everything one contract's monthly figures are computed from
(`ContractOutages`). A ticket's facts and a contract's terms
record the store position of the last event applied to them (projections/availability.py
decides with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from domain.availability import Interval, MonthlyAvailability, monthly_availability

Segment = tuple[datetime, datetime | None]


class OutageChange(NamedTuple):
    """One fact about a ticket that may move its outage; `down` only for "classified"."""

    kind: str
    at: datetime
    down: bool = False


class OutageFacts(NamedTuple):
    """What the availability rules need to know about one ticket, and its outage segments.

    Interpretations (docs/design.md says them in brief; here in full):
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
    position: int = 0  # of the last event applied

    def after(self, change: OutageChange, position: int) -> OutageFacts:
        # A NamedTuple built directly: a frozen dataclass and `replace` cost more than the
        # rest of the projection.
        down, cancelled, history = self.down, self.cancelled, self.history
        if change.kind == "classified":
            down = change.down
        elif change.kind == "cancelled":
            cancelled = True
        else:
            history = (*history, (change.kind, change.at))
        return OutageFacts(self.ticket_id, self.contract_id, self.since, down, cancelled, history, position)

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


class Terms(NamedTuple):
    """A contract's time zone (its months) and availability target, the position of the last
    event applied to it (its signing, or its latest maintenance announcement), and the earliest
    instant from which its outages or maintenance changed since the projection last checked its
    error budgets (`dirty_since`; None: nothing changed, or the plan promises no target)."""

    time_zone: str
    target_pct: float | None
    position: int
    dirty_since: datetime | None = None


class StoredOutage(NamedTuple):
    """One outage segment with its contract, as a view's outage row holds it."""

    contract_id: str
    ticket_id: str
    start: datetime
    end: datetime | None


class Candidate(NamedTuple):
    """A contract the view found marked as changed or with an outage still open, as stored:
    its terms, the earliest start of its open outages, and the months already noticed."""

    contract_id: str
    terms: Terms
    open_since: datetime | None
    noticed: frozenset[str]


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
