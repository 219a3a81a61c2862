"""The primitive view of one recorded event, the same whether it came from Kafka or the store.

Projections read envelopes only, so a rebuild straight from the event store and a run from
the topic apply exactly the same thing. The envelope also says who asked for the event (its
`actor`, apart from the fact's own `data`); the history shows it, the projections ignore it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Attributes of an eventsourcing domain event that belong to the envelope, not to the fact.
_ENVELOPE_ATTRS = {"originator_id", "originator_version", "timestamp", "originator_topic", "actor"}


def system_actor() -> dict[str, Any]:
    """The actor of an event recorded before events named one: the backend itself."""
    return {"kind": "system"}


@dataclass(frozen=True)
class Envelope:
    """One event: where it stands in the global order, what it is about, its fields, and who
    asked for it (`actor`, in the shape of `domain.actors.Actor.as_json`)."""

    position: int
    type: str
    aggregate_id: str
    aggregate_version: int
    contract_id: str
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    actor: dict[str, Any] = field(default_factory=system_actor)

    @property
    def is_ticket_event(self) -> bool:
        return self.type.startswith("Ticket.")

    def as_json(self) -> dict[str, Any]:
        """The event as the audit history shows it."""
        return {
            "type": self.type,
            "aggregate_id": self.aggregate_id,
            "aggregate_version": self.aggregate_version,
            "position": self.position,
            "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "actor": self.actor,
            **self.data,
        }


# What an event does to one row: `fold(row, *args)` is the row after the event, given the row
# as it stands (None if there is none), or None when the event changes nothing there. A view
# runs it when it has the row: an in-memory view at once, a PostgreSQL one at flush, once one
# query has read the rows of the whole batch. Folds are plain functions given their arguments
# (not closures): a batch holds thousands of them until flush.
Fold = Callable[..., Any]


def opening(found: Any, row: Any) -> Any:
    """The fold of an event that creates a row: that row, unless the row is there already
    (a row is created once: this is a redelivery)."""
    return row if found is None else None


def seen(env: Envelope, position: int | None) -> bool:
    """Whether a read-model row that last applied the event at `position` already holds `env`
    (Eventide's `processed?`): one contract's events reach a row in store order, so an event at
    or below that position is a redelivery, or one a rebuild applied before the live runner."""
    return position is not None and env.position <= position


def from_domain_event(event: Any, position: int) -> Envelope:
    """Build the envelope of an eventsourcing domain event recorded at `position`."""
    data = {k: v for k, v in vars(event).items() if k not in _ENVELOPE_ATTRS}
    occurred_at = data.pop("occurred_at")
    aggregate_id = str(event.originator_id)
    contract_id = data.pop("contract_id", None) or aggregate_id
    return Envelope(
        position=position,
        type=type(event).__qualname__,
        aggregate_id=aggregate_id,
        aggregate_version=event.originator_version,
        contract_id=contract_id,
        occurred_at=occurred_at,
        recorded_at=event.timestamp,
        data=data,
        actor=getattr(event, "actor", None) or system_actor(),
    )
