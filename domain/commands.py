"""Commands: what a caller asks of the application, as frozen values with typed fields.

An entry point (the HTTP routes, the renewals pass, a test) builds one and hands it to
`TicketingApplication.handle`, which loads the aggregate, calls it and saves what it decided.
Building a command parses and checks what needs no state: ids become UUIDs (text that is no
UUID names nothing: NotFound), instants become aware UTC datetimes (text without an offset
is refused), priorities, categories and entry kinds must be in the vocabulary, free text
within its bounds. So a command that exists is well formed, and the application only decides
what depends on the aggregates (an unknown plan, a cancelled contract, a ticket resolved
twice, the credits left). `aggregate_id` names the aggregate a command changes (None for a
creation), so the host can serialise the commands of one aggregate. The names differ from the
HTTP request bodies' (`Sign` is built from a `SignContract` body, `Open` from an `OpenTicket`
body...) because the OpenAPI schema publishes those. Every command names its `actor`, the
caller the application records on each event the command decides (domain/actors.py); a
command built without one is the system's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar
from uuid import UUID

from domain import values
from domain.actors import SYSTEM, Actor
from domain.errors import InvalidInput, NotFound
from domain.values import Category, EntryKind, Priority

__all__ = [
    "BuyCredits",
    "CancelContract",
    "CancelTicket",
    "ClassifyTicket",
    "Command",
    "EraseContract",
    "ExportContract",
    "Open",
    "Pause",
    "RecordTime",
    "RenewContract",
    "Reopen",
    "Resolve",
    "Respond",
    "Restore",
    "Resume",
    "ScheduleMaintenance",
    "Sign",
    "as_id",
]


def as_id(value: str | UUID) -> UUID:
    """An aggregate id in its one canonical form; text that is no UUID names nothing."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise NotFound(f"no such id {str(value)[:64]!r}") from None


def _instant(value: datetime | str | None) -> datetime | None:
    return None if value is None else values.instant(value)


class Command:
    """Base of the commands: fields are normalised once, when the command is built."""

    # The field naming the aggregate the command changes; None for a creation.
    target: ClassVar[str | None] = None
    # Every command's last field (declared on each, after its own: a keyword in practice).
    actor: Actor

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _normalise(self) -> None:
        """Parse the fields every command shares: its target id and its `at`."""
        if self.target is not None:
            self._set(self.target, as_id(getattr(self, self.target)))
        self._set("at", _instant(getattr(self, "at", None)))
        if not isinstance(self.actor, Actor):
            raise TypeError(f"a command's actor is an Actor, not {type(self.actor).__name__}")

    @property
    def aggregate_id(self) -> UUID | None:
        return None if self.target is None else getattr(self, self.target)


# -- contracts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sign(Command):
    """Sign a customer on a catalog plan, from `starts_on`, in the plan's zone or another."""

    customer: str
    plan: str
    starts_on: date
    time_zone: str | None = None
    holidays: tuple[date, ...] = ()
    at: datetime | None = None
    actor: Actor = SYSTEM

    def __post_init__(self) -> None:
        values.text("customer", self.customer, values.MAX_NAME, required=True)
        if not isinstance(self.plan, str):
            raise InvalidInput("plan must be a plan id")
        self._set("starts_on", values.iso_date(self.starts_on))
        # Their number and range are the contract's to judge (Contract.sign).
        self._set("holidays", tuple(values.iso_date(h) for h in self.holidays))
        self._normalise()


@dataclass(frozen=True)
class BuyCredits(Command):
    """Add a pack of credits the customer bought to a credit contract."""

    target = "contract_id"
    contract_id: UUID
    credits: int
    at: datetime | None = None
    actor: Actor = SYSTEM

    def __post_init__(self) -> None:
        self._normalise()


@dataclass(frozen=True)
class RenewContract(Command):
    """Start a new period on the day of `at`, or on `period_starts_on` (the renewal pass names
    the anniversary when the contract's last event is later than it)."""

    target = "contract_id"
    contract_id: UUID
    reason: str | None = None
    at: datetime | None = None
    period_starts_on: date | None = None
    actor: Actor = SYSTEM

    def __post_init__(self) -> None:
        self._normalise()


@dataclass(frozen=True)
class CancelContract(Command):
    target = "contract_id"
    contract_id: UUID
    reason: str | None = None
    at: datetime | None = None
    actor: Actor = SYSTEM

    def __post_init__(self) -> None:
        self._normalise()


@dataclass(frozen=True)
class EraseContract(Command):
    """Make a cancelled contract's personal data unreadable everywhere (crypto-shredding).
    It takes no `at`: an erasure happens when it is made. Its `reason` stays readable (it is
    the audit's record of why), so it must not name the person."""

    target = "contract_id"
    contract_id: UUID
    reason: str | None = None
    actor: Actor = SYSTEM

    def __post_init__(self) -> None:
        self._normalise()


@dataclass(frozen=True)
class ScheduleMaintenance(Command):
    """Announce a maintenance window; its downtime does not count against availability."""

    target = "contract_id"
    contract_id: UUID
    starts_at: datetime
    ends_at: datetime
    reason: str | None = None
    at: datetime | None = None
    actor: Actor = SYSTEM

    def __post_init__(self) -> None:
        self._set("starts_at", values.instant(self.starts_at))
        self._set("ends_at", values.instant(self.ends_at))
        self._normalise()


EXPORT_FORMATS = values.EXPORT_FORMATS


@dataclass(frozen=True)
class ExportContract(Command):
    """Record that the contract's events were exported, in which format (who asked: the
    actor). It takes no `at`: an export happens when it is made, never back-dated."""

    target = "contract_id"
    contract_id: UUID
    format: str
    actor: Actor = SYSTEM

    def __post_init__(self) -> None:
        if self.format not in EXPORT_FORMATS:
            raise InvalidInput(f"an export's format is one of {', '.join(EXPORT_FORMATS)}", {"format": str(self.format)[:64]})
        self._normalise()


# -- tickets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Open(Command):
    """Open a ticket under a contract; `down_since` when the customer's system went down earlier."""

    contract_id: UUID
    title: str
    reporter: str
    channel: str | None = None
    priority: Priority | None = None
    category: Category | None = None
    down_since: datetime | None = None
    at: datetime | None = None
    actor: Actor = SYSTEM

    def __post_init__(self) -> None:
        # The order of the checks is the order of the refusals callers have always seen.
        values.text("title", self.title, values.MAX_TITLE, required=True)
        values.text("reporter", self.reporter, values.MAX_NAME, required=True)
        self._set("channel", self.channel or values.DEFAULT_CHANNEL)
        if self.priority is not None:
            values.priority(self.priority)
        if self.category is not None:
            values.category(self.category)
        self._set("down_since", _instant(self.down_since))
        self._set("contract_id", as_id(self.contract_id))
        self._normalise()


@dataclass(frozen=True)
class ClassifyTicket(Command):
    target = "ticket_id"
    ticket_id: UUID
    priority: Priority
    category: Category | None = None
    at: datetime | None = None
    actor: Actor = SYSTEM

    def __post_init__(self) -> None:
        values.priority(self.priority)
        if self.category is not None:
            values.category(self.category)
        self._normalise()


@dataclass(frozen=True)
class RecordTime(Command):
    """Record minutes of work of one kind on a ticket (charged by the contract's plan)."""

    target = "ticket_id"
    ticket_id: UUID
    minutes: int
    kind: EntryKind
    engineer: str | None = None
    at: datetime | None = None
    actor: Actor = SYSTEM

    def __post_init__(self) -> None:
        values.positive_minutes(self.minutes)
        values.entry_kind(self.kind)
        self._normalise()


@dataclass(frozen=True)
class _TicketStep(Command):
    """A ticket command that carries nothing but the ticket and `at`."""

    target = "ticket_id"
    ticket_id: UUID
    at: datetime | None = None
    actor: Actor = SYSTEM

    def __post_init__(self) -> None:
        self._normalise()


@dataclass(frozen=True)
class _TicketStepBecause(Command):
    """A ticket command that may say why."""

    target = "ticket_id"
    ticket_id: UUID
    reason: str | None = None
    at: datetime | None = None
    actor: Actor = SYSTEM

    def __post_init__(self) -> None:
        self._normalise()


class Respond(_TicketStep):
    """The first response to the customer (stops the response clock)."""


class Resume(_TicketStep):
    """Work goes on after a pause."""


class Restore(_TicketStep):
    """Service is back: a system-down ticket's outage ends."""


class Pause(_TicketStepBecause):
    """Waiting on the customer (the resolution clock pauses)."""


class Resolve(_TicketStepBecause):
    """The ticket is solved."""


class Reopen(_TicketStepBecause):
    """A resolved ticket turned out not to be."""


class CancelTicket(_TicketStepBecause):
    """A withdrawn report (a duplicate, a false alarm)."""
