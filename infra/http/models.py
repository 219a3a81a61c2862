"""The HTTP interface's shapes, published as the OpenAPI schema: request bodies (strict:
unknown fields are refused; bounded as docs/design.md says), the answers of every route,
and the one error body. The vocabularies (priorities, categories, entry kinds, statuses) are
the domain's own constants, so the schema cannot drift from what the domain accepts.

Instants in requests are parsed here, at the edge, into aware datetimes (one without an
offset is refused with 422 and a reason); instants in answers stay the text the read models
wrote, declared as `date-time`. An id in a body stays text, declared as a UUID, so that one
which is no UUID answers 404 as an unknown one does.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from domain import ticket, values
from domain.actors import ActorKind, Role
from domain.sla import report
from domain.values import Category, EntryKind, Priority

# The statuses are tuples of the domain's constants; a Literal built from them publishes the
# same values as an enum (pydantic reads it at run time, a type checker cannot).
TICKET_STATUSES = (ticket.OPEN, ticket.PAUSED, ticket.RESOLVED, ticket.CANCELLED)
TicketStatus = Literal[TICKET_STATUSES]  # type: ignore[valid-type]  # values from the domain, read at run time
ClockStatus = Literal[report.STATUSES]  # type: ignore[valid-type]  # values from the domain, read at run time
# Plan ids and the plans' channels are data (the catalog), not code: a schema marked so gets
# the catalog's values as its enum when the app publishes its schema (`infra.http.app.publish`);
# the domain refuses any other value (422) with the allowed ones in the detail.
CATALOG_MARK = "x-catalog"
Channel = Annotated[str, Field(min_length=1, max_length=64, json_schema_extra={CATALOG_MARK: "channels"})]
Plan = Annotated[str, Field(max_length=64, json_schema_extra={CATALOG_MARK: "plans"})]

Instant = Annotated[AwareDatetime, Field(description="ISO-8601 instant with a UTC offset, from 2000-01-01")]
# Free text may hold any character but NUL, which PostgreSQL cannot store (in text or jsonb).
NO_NUL = r"^[^\x00]*$"
Reason = Annotated[str, Field(max_length=values.MAX_REASON, pattern=NO_NUL)]
Name = Annotated[str, Field(min_length=1, max_length=values.MAX_NAME, pattern=NO_NUL)]
Word = Annotated[str, Field(max_length=64, pattern=NO_NUL)]
IdText = Annotated[str, Field(max_length=64, json_schema_extra={"format": "uuid"},
                              description="a UUID; any other text names nothing (404)")]


def _absent(value: Any) -> bool:
    return value is None


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# An instant in an answer: the read model's ISO text (a datetime from a row is written the same way).
At = Annotated[str, BeforeValidator(_iso), Field(json_schema_extra={"format": "date-time"})]
Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]


# -- errors ----------------------------------------------------------------------------------

class Problem(BaseModel):
    """Every refusal and failure: why, and what it concerns."""

    error: str = Field(description="what went wrong, for people")
    detail: Any = Field(None, description="what it concerns: fields and values, allowed values, limits")


STATUS_TEXT = {
    400: "a body that cannot be decoded as text",
    401: "no bearer token, or a wrong one (only when TICKETING_ADMIN_TOKEN is set)",
    404: "unknown id, or an id that is no UUID",
    409: "conflicts with the aggregate's state or a concurrent change, or the same Idempotency-Key is in flight",
    413: "the request body is larger than 1 MiB",
    422: "invalid input: a field, a bound, an instant without offset, or an Idempotency-Key reused for another"
         " request",
    503: "the store or the read models cannot be reached; try again (with the same Idempotency-Key)",
    504: "the read model did not reach `wait_for` within 10 s",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of these statuses, each with the error body."""
    return {code: {"model": Problem, "description": STATUS_TEXT[code]} for code in codes}


# -- commands --------------------------------------------------------------------------------

class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: Instant | None = Field(None, description="when it happened (ISO-8601 with offset); default: now")


class SignContract(Body):
    customer: Name
    plan: Plan = Field(description="a plan id of the catalog")
    starts_on: date
    time_zone: Word | None = None
    holidays: list[date] = Field([], max_length=values.MAX_HOLIDAYS)


class AddCredits(Body):
    credits: int = Field(ge=1, le=values.MAX_CREDITS)


class Because(Body):
    reason: Reason | None = None


class Maintenance(Body):
    starts_at: Instant = Field(description="up to two years ahead")
    ends_at: Instant
    reason: Reason | None = None


class OpenTicket(Body):
    contract_id: IdText
    title: str = Field(min_length=1, max_length=values.MAX_TITLE, pattern=NO_NUL)
    reporter: Name
    channel: Channel | None = Field(None, description=f"default: {values.DEFAULT_CHANNEL}; one the plan offers")
    priority: Priority | None = None
    category: Category | None = None
    down_since: Instant | None = None


class Classify(Body):
    priority: Priority
    category: Category | None = None


class TimeEntry(Body):
    minutes: int = Field(ge=1, le=values.MAX_MINUTES)
    kind: EntryKind
    engineer: Annotated[str, Field(max_length=values.MAX_NAME, pattern=NO_NUL)] | None = None


class Position(BaseModel):
    position: int = Field(ge=1, description="the event-store position of the last event recorded")


class NewContract(Position):
    contract_id: Uuid


class NewTicket(Position):
    ticket_id: Uuid


# -- queries ---------------------------------------------------------------------------------

class FreeForm(BaseModel):
    """Free-form JSON whose keys depend on the event or the plan."""

    model_config = ConfigDict(extra="allow")


class EventActor(BaseModel):
    """Who asked for an event (docs/design.md, Access): a token's id and role, or only the kind."""

    kind: ActorKind
    # Absent, not null, for the kinds that name no token: the recorded shape.
    token_id: str | None = Field(None, exclude_if=_absent, description="the token presented (kind `token`)")
    role: Role | None = Field(None, exclude_if=_absent, description="the token's role (kind `token`)")


class Event(FreeForm):
    type: str
    aggregate_id: Uuid
    aggregate_version: int
    position: int
    occurred_at: At
    recorded_at: At
    actor: EventActor


class History(BaseModel):
    as_of: At
    events: list[Event]
    contract: dict[str, Any] | None = Field(description="the contract's state as of `as_of`")
    tickets: list[dict[str, Any]] = Field(description="its tickets' states as of `as_of`")


class TicketSummary(BaseModel):
    ticket_id: Uuid
    contract_id: Uuid
    title: str
    reporter: str
    channel: Channel
    priority: Priority
    category: Category | None
    status: TicketStatus
    opened_at: At
    updated_at: At
    minutes: int
    position: int


class Tickets(BaseModel):
    tickets: list[TicketSummary]


class SlaClock(BaseModel):
    due_at: At | None
    stopped_at: At | None
    status: ClockStatus
    stopped_by: Literal["responded", "resolved", "cancelled", "lowered"] | None
    priority: Priority = Field(description="whose target applies")
    target: str | None
    target_minutes: float | None
    elapsed_minutes: float | None
    calendar: str


class TicketSla(BaseModel):
    ticket_id: Uuid
    contract_id: Uuid
    plan_id: str
    priority: Priority
    category: str | None
    as_of: At
    response: SlaClock
    resolution: SlaClock
    explain: dict[str, Any] = Field(default_factory=dict,
                                    description="only with ?explain=true: each clock's rule and timeline")


class ClockStats(BaseModel):
    met: int
    missed: int
    breached: int
    running: int
    paused: int
    none: int
    met_pct: float | None
    timed: int
    mean_minutes: float | None
    p90_minutes: float | None


class Group(BaseModel):
    tickets: int
    response: ClockStats
    resolution: ClockStats


class ContractSla(BaseModel):
    contract_id: Uuid
    plan_id: str
    month: str
    time_zone: str
    as_of: At
    targets_by: Literal["priority", "category"]
    tickets: int
    groups: dict[str, Group]
    all: Group


class LedgerEntry(BaseModel):
    ticket_id: Uuid
    kind: str
    minutes: int
    charge: int
    overage: int
    at: At
    engineer: str | None
    position: int


class Ledger(BaseModel):
    contract_id: Uuid
    plan: str
    scheme: str
    unit: str
    status: str
    period: str
    periods: list[str]
    starts_at: At
    ends_at: At | None
    renews_at: At | None
    granted: int | None
    used: int
    balance: int | None
    minutes: int
    overage: int
    low_balance_threshold: int | None
    low_balance: bool
    exhausted: bool
    entries: list[LedgerEntry]


class TicketStatement(BaseModel):
    ticket_id: Uuid
    position: int
    contract_id: Uuid
    resolved_at: At
    period: str
    unit: str
    minutes: int
    charge: int
    overage: int
    balance_after: int | None


class Statements(TicketStatement):
    entries: list[LedgerEntry]
    statements: list[TicketStatement] = Field(description="one per resolution, the last one above")


class OutageSpan(BaseModel):
    ticket_id: Uuid
    starts_at: At
    ends_at: At | None
    open: bool


class Window(BaseModel):
    starts_at: At
    ends_at: At


class Availability(BaseModel):
    contract_id: Uuid
    month: str
    time_zone: str
    minutes_in_month: float
    downtime_minutes: float
    availability_pct: float
    target_pct: float | None
    met: bool | None
    maintenance_minutes: float
    allowed_downtime_minutes: float | None
    budget_left_minutes: float | None
    budget_exhausted: bool | None
    as_of: At
    outages: list[OutageSpan]
    maintenance: list[Window]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Literal["ok", "down", "timeout", "blocked", "no recent heartbeat", "unknown"]] = Field(
        description="store, broker, relay and projection:NAME, each by its state (never an error's text)")
