"""The ticket list: one row per ticket with its current status, priority and time spent.

It dispatches on the event type and issues one view command per event; the view is a port
(an in-memory version here for unit tests, a PostgreSQL one in infra/postgres/views.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from projections.envelope import Envelope

STATUS_AFTER = {
    "Ticket.Paused": "paused",
    "Ticket.Resumed": "open",
    "Ticket.Resolved": "resolved",
    "Ticket.Reopened": "open",
    "Ticket.Cancelled": "cancelled",
}


class TicketsView(Protocol):
    def add(self, row: dict[str, Any]) -> None: ...
    def update(self, ticket_id: str, changes: dict[str, Any]) -> None: ...
    def add_minutes(self, ticket_id: str, minutes: int, at: datetime, position: int) -> None: ...


class TicketsProjection:
    """Keeps the ticket list."""

    name = "tickets"

    def apply(self, env: Envelope, view: TicketsView) -> bool:
        if env.type == "Ticket.Opened":
            d = env.data
            view.add({
                "ticket_id": env.aggregate_id, "contract_id": env.contract_id,
                "title": d["title"], "reporter": d["reporter"], "channel": d["channel"],
                "priority": d.get("priority") or "P3", "category": d.get("category"),
                "status": "open", "opened_at": env.occurred_at, "updated_at": env.occurred_at,
                "minutes": 0, "position": env.position,
            })
        elif env.type == "Ticket.Classified":
            changes: dict[str, Any] = {"priority": env.data["priority"]}
            if env.data.get("category"):
                changes["category"] = env.data["category"]
            self._update(view, env, changes)
        elif env.type in STATUS_AFTER:
            self._update(view, env, {"status": STATUS_AFTER[env.type]})
        elif env.type == "Ticket.TimeConsumed":
            view.add_minutes(env.aggregate_id, env.data["minutes"], env.occurred_at, env.position)
        else:
            return False
        return True

    @staticmethod
    def _update(view: TicketsView, env: Envelope, changes: dict[str, Any]) -> None:
        view.update(env.aggregate_id, {**changes, "updated_at": env.occurred_at, "position": env.position})


@dataclass
class InMemoryTicketsView:
    """The ticket list in a dict, for unit tests."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, row: dict[str, Any]) -> None:
        self.rows[row["ticket_id"]] = dict(row)

    def update(self, ticket_id: str, changes: dict[str, Any]) -> None:
        self.rows[ticket_id].update(changes)

    def add_minutes(self, ticket_id: str, minutes: int, at: datetime, position: int) -> None:
        row = self.rows[ticket_id]
        row.update(minutes=row["minutes"] + minutes, updated_at=at, position=position)
