"""The ticket list: one row per ticket with its current status, priority and time spent.

It dispatches on the event type, gets the ticket's row from the view, and puts it back
changed. Each row records the store position of the last event applied to it, and an event
at or below that position is ignored (a redelivery, or a rebuild that overlapped the live
runner), so replaying any part of the history again changes nothing. The view is a port: an
in-memory version here for unit tests, a PostgreSQL one in infra/readmodels/tickets.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from projections.envelope import Envelope, seen

STATUS_AFTER = {
    "Ticket.Paused": "paused",
    "Ticket.Resumed": "open",
    "Ticket.Resolved": "resolved",
    "Ticket.Reopened": "open",
    "Ticket.Cancelled": "cancelled",
}
CHANGES = ("Ticket.Classified", "Ticket.TimeConsumed", *STATUS_AFTER)


class TicketsView(Protocol):
    def get(self, ticket_id: str) -> dict[str, Any] | None: ...
    def put(self, row: dict[str, Any]) -> None: ...


class TicketsProjection:
    """Keeps the ticket list."""

    name = "tickets"

    def apply(self, env: Envelope, view: TicketsView) -> bool:
        if env.type == "Ticket.Opened":
            return self._opened(env, view)
        if env.type not in CHANGES:
            return False
        row = view.get(env.aggregate_id)
        if row is None or seen(env, row["position"]):
            return False  # never seen opened (its opening was parked), or already applied
        view.put(row | self._changes(env, row) | {"updated_at": env.occurred_at, "position": env.position})
        return True

    @staticmethod
    def _opened(env: Envelope, view: TicketsView) -> bool:
        if view.get(env.aggregate_id) is not None:
            return False  # a ticket is opened once: this is a redelivery
        d = env.data
        view.put({
            "ticket_id": env.aggregate_id, "contract_id": env.contract_id,
            "title": d["title"], "reporter": d["reporter"], "channel": d["channel"],
            "priority": d.get("priority") or "P3", "category": d.get("category"),
            "status": "open", "opened_at": env.occurred_at, "updated_at": env.occurred_at,
            "minutes": 0, "position": env.position,
        })
        return True

    @staticmethod
    def _changes(env: Envelope, row: dict[str, Any]) -> dict[str, Any]:
        if env.type == "Ticket.TimeConsumed":
            return {"minutes": row["minutes"] + int(env.data["minutes"])}
        if env.type == "Ticket.Classified":
            changes = {"priority": env.data["priority"]}
            return changes | ({"category": env.data["category"]} if env.data.get("category") else {})
        return {"status": STATUS_AFTER[env.type]}


@dataclass
class InMemoryTicketsView:
    """The ticket list in a dict, for unit tests."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, ticket_id: str) -> dict[str, Any] | None:
        return self.rows.get(ticket_id)

    def put(self, row: dict[str, Any]) -> None:
        self.rows[row["ticket_id"]] = dict(row)
