"""The ledger's rows: a contract's book (the settings its signed terms give the ledger, and the
periods known so far), a period's running totals, a time entry, a ticket's cost, a resolved
ticket's statement and a balance notice. When periods start and end is domain/periods.py's
rule and what an entry costs domain/billing.py's; these rows only keep the results. Each row that
events change records the store position of the last event applied to it (projections/ledger.py
decides with it); entries and statements are keyed by their event's position.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from domain import billing
from domain.billing import ChargeRule
from domain.periods import allowance_period, local_date, local_midnight, next_period_start
from domain.plans import PlanTerms
from projections.envelope import Envelope

_BEGIN, _END = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


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
    _rules: Mapping[str, ChargeRule] | None = field(default=None, repr=False, compare=False)

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
            return billing.entry_charge(self.charge_rules, kind, minutes)
        return minutes if self.scheme == "allowance" and kind == self.allowance_kind else 0

    @property
    def charge_rules(self) -> Mapping[str, ChargeRule]:
        """The plan's charge rules, from their stored form `[minimum, block, flat]`."""
        if self._rules is None:
            self._rules = {k: ChargeRule(*r) for k, r in self.charges.items() if r}  # type: ignore[arg-type]  # [minimum, block, flat], checked when the plan loaded
        return self._rules

    def bounds(self, label: str, starts_at: datetime) -> tuple[datetime, datetime | None]:
        """The ``[start, end)`` of one of the book's periods; an end of None: until a renewal."""
        if self.scheme == "allowance":
            start, end, _ = allowance_period(starts_at, self.time_zone, self.allowance_period or "quarter")
            return start, end
        start = local_midnight(label, self.time_zone)
        later = [p for p in self.periods if p > label]
        if later:
            return start, local_midnight(later[0], self.time_zone)
        if self.scheme == "bank" and self.period_months:
            ends_on = next_period_start(date.fromisoformat(self.starts_on), date.fromisoformat(label), self.period_months)
            return start, local_midnight(ends_on, self.time_zone)
        return start, None

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
        day = local_date(at, self.time_zone).isoformat()
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
        return None if self.granted is None else billing.balance(self.granted, self.used)


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
