"""What the SLA rules need to know about one ticket, folded from its events: `TicketFacts`.

The facts are the ticket's own history, reduced to instants (opened, classified, first
response, pauses, resolutions and reopenings, cancellation) and nothing derived: due dates
come from `domain.sla.clock`, so a rule change is a re-evaluation, never a migration. The fold
`apply(facts, event_type, occurred_at, data)` is pure and total: an event type it does not
know, or one the aggregate would have refused in that state, leaves the facts as they are;
the events of one ticket arrive in order (an `at` never precedes the ticket's previous event). `to_json`/`from_json` give the stored form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from domain.periods import from_iso, utc
from domain.values import DEFAULT_PRIORITY, PRIORITIES

# The ticket events the fold reads; Opened builds the facts, TimeConsumed/Restored change nothing.
EVENT_TYPES = tuple(
    f"Ticket.{name}"
    for name in ("Classified", "Responded", "Paused", "Resumed", "Resolved", "Reopened", "Cancelled")
)

Span = tuple[datetime, datetime | None]  # an end of None: still going
_ACTIVE = ("open", "paused")


class Classification(NamedTuple):
    """A (re)classification: the new priority, and the new category if one was given."""

    at: datetime
    priority: str
    category: str | None


@dataclass(frozen=True)
class TicketFacts:
    """One ticket's SLA-relevant history. Instants are UTC-aware datetimes."""

    opened_at: datetime
    reported_priority: str | None = None
    opened_category: str | None = None
    classifications: tuple[Classification, ...] = ()
    responded_at: datetime | None = None
    pauses: tuple[Span, ...] = ()
    resolutions: tuple[Span, ...] = ()  # (resolved_at, reopened_at or None)
    cancelled_at: datetime | None = None

    @classmethod
    def opened(cls, occurred_at: datetime, data: dict[str, Any]) -> TicketFacts:
        """The facts of a `Ticket.Opened` event; ValueError on a priority outside P1-P4."""
        return cls(
            utc(occurred_at), _priority(data.get("priority"), optional=True),
            _category(data.get("category")),
        )

    @property
    def priority(self) -> str:
        """The current priority: the last classification's, else the reporter's, else P3."""
        if self.classifications:
            return self.classifications[-1].priority
        return self.reported_priority or DEFAULT_PRIORITY

    @property
    def initial_priority(self) -> str:
        return self.reported_priority or DEFAULT_PRIORITY

    @property
    def category(self) -> str | None:
        """The last category given, at opening or by a classification."""
        given = [c.category for c in self.classifications if c.category is not None]
        return given[-1] if given else self.opened_category

    def in_force(self, at: datetime | None) -> tuple[str, str | None]:
        """The priority and category in force at `at` (None: the current ones).

        Only classifications before that instant count: the facts keep instants, not the order
        of two events of one instant, and every event recorded after a clock's stop is at or
        after it, so none of them can change how that stopped clock is judged.
        """
        if at is None:
            return self.priority, self.category
        priority, category = self.initial_priority, self.opened_category
        for c in self.classifications:
            if c.at >= at:
                break
            priority = c.priority
            category = c.category if c.category is not None else category
        return priority, category

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1][1] is None

    @property
    def resolved_at(self) -> datetime | None:
        """The resolution in force: the last one, unless a reopening followed it."""
        if self.resolutions and self.resolutions[-1][1] is None:
            return self.resolutions[-1][0]
        return None

    @property
    def first_resolved_at(self) -> datetime | None:
        return self.resolutions[0][0] if self.resolutions else None

    @property
    def state(self) -> str:
        """open, paused, resolved or cancelled, as the Ticket aggregate says."""
        if self.cancelled_at is not None:
            return "cancelled"
        if self.resolved_at is not None:
            return "resolved"
        return "paused" if self.paused else "open"

    @property
    def last_at(self) -> datetime:
        """The latest instant the facts mention (each list's last entry is its latest)."""
        found = [self.opened_at]
        if self.classifications:
            found.append(self.classifications[-1].at)
        for spans in (self.pauses, self.resolutions):
            if spans:
                found.append(spans[-1][1] or spans[-1][0])
        found += [t for t in (self.responded_at, self.cancelled_at) if t is not None]
        return max(found)


def check(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> None:
    """Raise ValueError if `apply` would refuse this event's values (checked before buffering)."""
    utc(occurred_at)
    if event_type == "Ticket.Classified":
        _priority(data.get("priority"))
        _category(data.get("category"))


def _with(facts: TicketFacts, **changes: Any) -> TicketFacts:
    """`dataclasses.replace` without re-running __init__ (the fold's hot path)."""
    new = object.__new__(TicketFacts)
    new.__dict__.update(facts.__dict__, **changes)
    return new


def apply(facts: TicketFacts, event_type: str, occurred_at: datetime, data: dict[str, Any]) -> TicketFacts:
    """The facts after one more event of the ticket.

    Total: an unknown type, or an event the Ticket aggregate would have refused in the state
    the facts describe (a pause while resolved, a second resolution...), changes nothing.
    """
    at = utc(occurred_at)
    state = facts.state
    if event_type == "Ticket.Classified":
        found = Classification(at, _priority(data.get("priority")), _category(data.get("category")))
        return facts if state not in _ACTIVE else _with(facts, classifications=(*facts.classifications, found))
    if state == "cancelled":
        return facts
    if event_type == "Ticket.Responded" and state in _ACTIVE and facts.responded_at is None:
        return _with(facts, responded_at=at)
    if event_type == "Ticket.Paused" and state == "open":
        return _with(facts, pauses=(*facts.pauses, (at, None)))
    if event_type == "Ticket.Resumed":
        return _end_pause(facts, at)
    if event_type == "Ticket.Resolved" and state in _ACTIVE:
        # A ticket resolved while it waits on the customer: the wait ends with the resolution.
        ended = _end_pause(facts, at)
        return _with(ended, resolutions=(*ended.resolutions, (at, None)))
    if event_type == "Ticket.Reopened" and state == "resolved":
        return _with(facts, resolutions=(*facts.resolutions[:-1], (facts.resolutions[-1][0], at)))
    if event_type == "Ticket.Cancelled" and state in _ACTIVE:
        return _with(_end_pause(facts, at), cancelled_at=at)
    return facts


def _end_pause(facts: TicketFacts, at: datetime) -> TicketFacts:
    if not facts.paused:
        return facts
    return _with(facts, pauses=(*facts.pauses[:-1], (facts.pauses[-1][0], at)))


def _priority(value: Any, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if value not in PRIORITIES:
        raise ValueError(f"unknown priority {value!r}: expected one of {PRIORITIES}")
    return value


def _category(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"a category is a non-empty text, got {value!r}")
    return value


# -- the stored form -----------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _at(value: str | None) -> datetime | None:
    return None if value is None else from_iso(value)


def to_json(facts: TicketFacts) -> dict[str, Any]:
    """The facts as a JSON-able document (ISO instants), read back by `from_json`."""
    return {
        "opened_at": facts.opened_at.isoformat(),
        "reported_priority": facts.reported_priority,
        "opened_category": facts.opened_category,
        "classifications": [[c.at.isoformat(), c.priority, c.category] for c in facts.classifications],
        "responded_at": _iso(facts.responded_at),
        "pauses": [[s.isoformat(), _iso(e)] for s, e in facts.pauses],
        "resolutions": [[s.isoformat(), _iso(e)] for s, e in facts.resolutions],
        "cancelled_at": _iso(facts.cancelled_at),
    }


def from_json(doc: dict[str, Any]) -> TicketFacts:
    def spans(key: str) -> tuple[Span, ...]:
        return tuple((from_iso(s), _at(e)) for s, e in doc.get(key, ()))

    return TicketFacts(
        opened_at=from_iso(doc["opened_at"]),
        reported_priority=doc.get("reported_priority"),
        opened_category=doc.get("opened_category"),
        classifications=tuple(Classification(from_iso(a), p, c) for a, p, c in doc.get("classifications", ())),
        responded_at=_at(doc.get("responded_at")),
        pauses=spans("pauses"),
        resolutions=spans("resolutions"),
        cancelled_at=_at(doc.get("cancelled_at")),
    )
