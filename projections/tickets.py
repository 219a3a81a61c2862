"""The ticket list: one row per ticket with its current status, priority and time spent.

It dispatches on the event type and hands the view a fold of the ticket's row (`change`): the
in-memory view runs it at once, the PostgreSQL one at flush, once it has read the rows of the
whole batch in one query. Each row records the store position of the last event applied to
it, and the fold ignores an event at or below that position (a redelivery, or a rebuild that
overlapped the live runner), so replaying any part of the history again changes nothing. The
view is a port: an in-memory version here for unit tests, a PostgreSQL one in
infra/postgres/views/tickets.py.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from domain.personal import ERASED
from domain.values import DEFAULT_PRIORITY
from projections.envelope import Envelope, Fold, opening, seen

STATUS_AFTER = {
    "Ticket.Paused": "paused",
    "Ticket.Resumed": "open",
    "Ticket.Resolved": "resolved",
    "Ticket.Reopened": "open",
    "Ticket.Cancelled": "cancelled",
}
CHANGES = ("Ticket.Classified", "Ticket.TimeConsumed", *STATUS_AFTER)


class TicketsView(Protocol):
    """The ticket rows by key."""

    def change(self, ticket_id: str, fold: Fold, *args: Any) -> bool: ...
    def erase(self, contract_id: str) -> None:
        """Blank the personal fields (title, reporter) of every ticket of the contract."""
        ...
    def flush(self) -> int: ...


class TicketsProjection:
    """Keeps the ticket list."""

    name = "tickets"
    reads: frozenset[str] | None = None  # every event type: a rebuild decodes all of them for it

    def apply(self, env: Envelope, view: TicketsView) -> bool:
        if env.type == "Ticket.Opened":
            return view.change(env.aggregate_id, opening, self._opened(env))
        if env.type == ERASED:
            view.erase(env.contract_id)  # idempotent: a redelivery blanks what is blank already
            return True
        if env.type not in CHANGES:
            return False
        return view.change(env.aggregate_id, changed, env)

    def tick(self, now: datetime, view: TicketsView) -> None:
        """Nothing in the ticket list depends on the passing of time."""

    @staticmethod
    def _opened(env: Envelope) -> dict[str, Any]:
        d = env.data
        return {
            "ticket_id": env.aggregate_id, "contract_id": env.contract_id,
            "title": d["title"], "reporter": d["reporter"], "channel": d["channel"],
            "priority": d.get("priority") or DEFAULT_PRIORITY, "category": d.get("category"),
            "status": "open", "opened_at": env.occurred_at, "updated_at": env.occurred_at,
            "minutes": 0, "position": env.position,
        }


def changed(row: dict[str, Any] | None, env: Envelope) -> dict[str, Any] | None:
    """The fold of a change of the ticket (status, priority, time spent)."""
    if row is None or seen(env, row["position"]):
        return None  # never seen opened (its opening was parked), or already applied
    return row | _changes(env, row) | {"updated_at": env.occurred_at, "position": env.position}


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

    def prefetch(self, contracts: Collection[str]) -> None:
        """Every row is in memory already."""

    def change(self, ticket_id: str, fold: Fold, *args: Any) -> bool:
        row = fold(self.rows.get(ticket_id), *args)
        if row is not None:
            self.rows[ticket_id] = row
        return row is not None

    def erase(self, contract_id: str) -> None:
        for ticket_id, row in self.rows.items():
            if row["contract_id"] == contract_id:
                self.rows[ticket_id] = row | {"title": None, "reporter": None}

    def flush(self) -> int:
        return 0  # every fold ran at once
