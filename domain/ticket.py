"""The Ticket aggregate: a support request under one contract, from opening to its end.

Every ticket event carries `contract_id`, so that a contract's own and its tickets' events
travel together (the Kafka key) and can be found together (the audit history). Events are
facts only: due dates and charges are derived by the rules, never stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain import values
from domain.errors import Conflict
from domain.values import effective_at

OPEN = "open"
PAUSED = "paused"
RESOLVED = "resolved"
CANCELLED = "cancelled"


class Ticket(Aggregate):
    """A support request."""

    @event("Opened")
    def __init__(
        self,
        contract_id: str,
        title: str,
        reporter: str,
        channel: str,
        priority: str | None,
        category: str | None,
        down_since: str | None,
        occurred_at: datetime,
    ) -> None:
        self.contract_id = contract_id
        self.title = title
        self.reporter = reporter
        self.channel = channel
        self.reported_priority = priority
        self.priority = priority
        self.category = category
        self.down_since = down_since
        self.status = OPEN
        self.responded_at: str | None = None
        self.restored_at: str | None = None
        self.minutes = 0
        self.opened_at = occurred_at
        self.last_at = occurred_at

    # -- guards ---------------------------------------------------------------------------

    def when(self, at: datetime | str | None, now: datetime) -> datetime:
        return effective_at(at, self.last_at, now)

    def _refuse_unless(self, allowed: tuple[str, ...], action: str) -> None:
        if self.status not in allowed:
            raise Conflict(
                f"cannot {action} a ticket that is {self.status}",
                {"ticket_id": str(self.id), "status": self.status},
            )

    # -- commands -------------------------------------------------------------------------

    def classify(self, priority: str, category: str | None, at: datetime) -> None:
        self._refuse_unless((OPEN, PAUSED), "classify")
        self._classified(self.contract_id, priority, category, at)

    def respond(self, at: datetime) -> None:
        self._refuse_unless((OPEN, PAUSED), "respond to")
        self._responded(self.contract_id, at)

    def consume_time(self, minutes: int, kind: str, engineer: str | None, at: datetime) -> None:
        values.positive_minutes(minutes)
        values.text("engineer", engineer, values.MAX_NAME)
        self._refuse_unless((OPEN, PAUSED, RESOLVED), "record time on")
        self._time_consumed(self.contract_id, minutes, kind, engineer, at)

    def pause(self, reason: str | None, at: datetime) -> None:
        values.text("reason", reason, values.MAX_REASON)
        self._refuse_unless((OPEN,), "pause")
        self._paused(self.contract_id, reason, at)

    def resume(self, at: datetime) -> None:
        self._refuse_unless((PAUSED,), "resume")
        self._resumed(self.contract_id, at)

    def restore(self, at: datetime) -> None:
        if self.category != "system-down":
            raise Conflict("only a system-down ticket reports an outage to restore")
        if self.restored_at is not None:
            raise Conflict("service was already restored", {"restored_at": self.restored_at})
        self._refuse_unless((OPEN, PAUSED), "restore service on")
        self._restored(self.contract_id, at)

    def resolve(self, reason: str | None, at: datetime) -> None:
        values.text("reason", reason, values.MAX_REASON)
        self._refuse_unless((OPEN, PAUSED), "resolve")
        self._resolved(self.contract_id, reason, at)

    def reopen(self, reason: str | None, at: datetime) -> None:
        values.text("reason", reason, values.MAX_REASON)
        self._refuse_unless((RESOLVED,), "reopen")
        self._reopened(self.contract_id, reason, at)

    def cancel(self, reason: str | None, at: datetime) -> None:
        values.text("reason", reason, values.MAX_REASON)
        self._refuse_unless((OPEN, PAUSED), "cancel")
        self._cancelled(self.contract_id, reason, at)

    # -- events ---------------------------------------------------------------------------

    @event("Classified")
    def _classified(
        self, contract_id: str, priority: str, category: str | None, occurred_at: datetime
    ) -> None:
        self.priority = priority
        if category is not None:
            self.category = category
        self.last_at = occurred_at

    @event("Responded")
    def _responded(self, contract_id: str, occurred_at: datetime) -> None:
        if self.responded_at is None:
            self.responded_at = occurred_at.isoformat()
        self.last_at = occurred_at

    @event("TimeConsumed")
    def _time_consumed(
        self, contract_id: str, minutes: int, kind: str, engineer: str | None, occurred_at: datetime
    ) -> None:
        self.minutes += minutes
        self.last_at = occurred_at

    @event("Paused")
    def _paused(self, contract_id: str, reason: str | None, occurred_at: datetime) -> None:
        self.status = PAUSED
        self.last_at = occurred_at

    @event("Resumed")
    def _resumed(self, contract_id: str, occurred_at: datetime) -> None:
        self.status = OPEN
        self.last_at = occurred_at

    @event("Restored")
    def _restored(self, contract_id: str, occurred_at: datetime) -> None:
        self.restored_at = occurred_at.isoformat()
        self.last_at = occurred_at

    @event("Resolved")
    def _resolved(self, contract_id: str, reason: str | None, occurred_at: datetime) -> None:
        self.status = RESOLVED
        self.last_at = occurred_at

    @event("Reopened")
    def _reopened(self, contract_id: str, reason: str | None, occurred_at: datetime) -> None:
        self.status = OPEN
        self.last_at = occurred_at

    @event("Cancelled")
    def _cancelled(self, contract_id: str, reason: str | None, occurred_at: datetime) -> None:
        self.status = CANCELLED
        self.last_at = occurred_at

    def state(self) -> dict[str, Any]:
        """The ticket as an auditor reads it."""
        return {
            "ticket_id": str(self.id),
            "contract_id": self.contract_id,
            "title": self.title,
            "reporter": self.reporter,
            "channel": self.channel,
            "priority": self.priority or values.DEFAULT_PRIORITY,
            "reported_priority": self.reported_priority,
            "category": self.category,
            "status": self.status,
            "opened_at": self.opened_at.isoformat(),
            "responded_at": self.responded_at,
            "restored_at": self.restored_at,
            "down_since": self.down_since,
            "minutes": self.minutes,
            "version": self.version,
        }
