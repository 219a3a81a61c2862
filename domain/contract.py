"""The Contract aggregate: a customer signed on a catalog plan, and what happened to it since.

The plan's terms are copied into the `Signed` event, so the agreed terms stay an immutable
fact even when the catalog changes later. Public methods validate and decide; the private
`@event` methods only assign, because their bodies run again on every replay.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain import periods, values
from domain.errors import Conflict, InvalidInput
from domain.values import effective_at, iso_date

ACTIVE = "active"
CANCELLED = "cancelled"


def _zone(name: str) -> str:
    try:
        periods.zone(name)
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    return name


def _within(day: date, at: datetime, name: str) -> date:
    """A contract's date: from 2000 to two years after its signing (periods and calendars stay
    computable; bounds in docs/design.md)."""
    if not values.EARLIEST.date() <= day <= (at + values.SCHEDULE_AHEAD).date():
        raise InvalidInput(f"{name} must lie between 2000-01-01 and two years after signing",
                           {name: day.isoformat()})
    return day


class Contract(Aggregate):
    """A support contract on one plan."""

    erased_at: datetime | None = None  # when its personal data was erased (a class default: older snapshots lack it)

    @event("Signed")
    def __init__(
        self,
        customer: str,
        plan_id: str,
        terms: dict[str, Any],
        starts_on: str,
        time_zone: str,
        holidays: list[str],
        occurred_at: datetime,
    ) -> None:
        self.customer = customer
        self.plan_id = plan_id
        self.terms = terms
        self.starts_on = starts_on
        self.time_zone = time_zone
        self.holidays = holidays
        self.status = ACTIVE
        self.credits_granted = 0
        self.period_starts_on = starts_on
        self.renewals = 0
        self.maintenance: list[tuple[str, str]] = []
        self.signed_at = occurred_at
        self.last_at = occurred_at

    @classmethod
    def sign(
        cls,
        customer: str,
        plan_id: str,
        terms: dict[str, Any],
        starts_on: date | str,
        time_zone: str | None,
        holidays: list[str],
        at: datetime,
    ) -> Contract:
        values.text("customer", customer, values.MAX_NAME, required=True)
        day = _within(iso_date(starts_on), at, "starts_on")
        if len(holidays) > values.MAX_HOLIDAYS:
            raise InvalidInput(f"at most {values.MAX_HOLIDAYS} holidays", {"holidays": len(holidays)})
        dates = sorted({_within(iso_date(h), at, "holidays").isoformat() for h in holidays})
        zone = _zone(time_zone or terms["time_zone"])
        return cls(customer, plan_id, terms, day.isoformat(), zone, dates, at)

    def opened_at(self) -> datetime:
        """When the contract was signed: nothing about it can have happened before."""
        return self.signed_at

    # -- commands -------------------------------------------------------------------------

    def when(self, at: datetime | str | None, now: datetime) -> datetime:
        """The effective instant of a new fact, checked against this contract's history."""
        return effective_at(at, self.last_at, now)

    def require_active(self) -> None:
        if self.status != ACTIVE:
            raise Conflict("the contract is cancelled", {"contract_id": str(self.id)})

    @property
    def uses_credits(self) -> bool:
        return self.terms.get("credits") is not None

    @property
    def uses_bank(self) -> bool:
        return self.terms.get("bank") is not None

    def add_credits(self, credits: int, at: datetime) -> None:
        self.require_active()
        values.whole("credits", credits, values.MAX_CREDITS)
        if not self.uses_credits:
            raise Conflict(f"plan {self.plan_id} does not sell credits")
        self._credits_added(credits, at)

    def renew(self, reason: str | None, period_starts_on: date, at: datetime) -> None:
        self.require_active()
        values.text("reason", reason, values.MAX_REASON)
        if period_starts_on.isoformat() <= self.period_starts_on:
            raise Conflict(
                "the contract already runs a period starting then or later",
                {"period_starts_on": self.period_starts_on},
            )
        self._renewed(reason, period_starts_on.isoformat(), at)

    def cancel(self, reason: str | None, at: datetime) -> None:
        self.require_active()
        values.text("reason", reason, values.MAX_REASON)
        self._cancelled(reason, at)

    def schedule_maintenance(
        self, starts_at: datetime, ends_at: datetime, reason: str | None, at: datetime
    ) -> None:
        self.require_active()
        values.text("reason", reason, values.MAX_REASON)
        if ends_at <= starts_at:
            raise InvalidInput("a maintenance window must end after it starts")
        self._maintenance_scheduled(starts_at.isoformat(), ends_at.isoformat(), reason, at)

    def record_export(self, format: str, at: datetime) -> None:
        """Its events were exported (a cancelled contract's too: an audit outlives it)."""
        self._exported(format, at)

    def erase(self, reason: str | None, at: datetime) -> None:
        """Its personal data is to be made unreadable (crypto-shredding: the host destroys the
        contract's key). Only a cancelled contract is erased, and once."""
        self.check_erasable()
        values.text("reason", reason, values.MAX_REASON)
        self._erased(reason, at)

    def check_erasable(self) -> None:
        """Refuse an erasure before anything is destroyed: a contract still active, or one erased already."""
        if self.status != CANCELLED:
            raise Conflict("only a cancelled contract can be erased: cancel it first", {"status": self.status})
        if self.erased_at is not None:
            raise Conflict("the contract is erased already", {"erased_at": self.erased_at.isoformat()})

    # -- events ---------------------------------------------------------------------------

    @event("CreditsAdded")
    def _credits_added(self, credits: int, occurred_at: datetime) -> None:
        self.credits_granted += credits
        self.last_at = occurred_at

    @event("Renewed")
    def _renewed(self, reason: str | None, period_starts_on: str, occurred_at: datetime) -> None:
        self.period_starts_on = period_starts_on
        self.renewals += 1
        self.last_at = occurred_at

    @event("Cancelled")
    def _cancelled(self, reason: str | None, occurred_at: datetime) -> None:
        self.status = CANCELLED
        self.last_at = occurred_at

    @event("MaintenanceScheduled")
    def _maintenance_scheduled(
        self, starts_at: str, ends_at: str, reason: str | None, occurred_at: datetime
    ) -> None:
        # Rebound, never changed in place: cached aggregates are shallow copies.
        self.maintenance = [*self.maintenance, (starts_at, ends_at)]
        self.last_at = occurred_at

    @event("Exported")
    def _exported(self, format: str, occurred_at: datetime) -> None:
        """An audit fact: nothing about the contract changes (not even `last_at`, so that a
        back-dated command after an export is judged as before it)."""

    @event("Erased")
    def _erased(self, reason: str | None, occurred_at: datetime) -> None:
        """Its personal fields are unreadable from now on (their key is destroyed); nothing
        that any figure depends on changes."""
        self.erased_at = occurred_at

    def state(self) -> dict[str, Any]:
        """The contract as an auditor reads it."""
        return {
            "contract_id": str(self.id),
            "customer": self.customer,
            "plan": self.plan_id,
            "starts_on": self.starts_on,
            "time_zone": self.time_zone,
            "holidays": list(self.holidays),
            "status": self.status,
            "credits_granted": self.credits_granted,
            "period_starts_on": self.period_starts_on,
            "renewals": self.renewals,
            "maintenance": [list(m) for m in self.maintenance],
            "erased_at": self.erased_at.isoformat() if self.erased_at else None,
            "version": self.version,
        }
