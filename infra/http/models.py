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
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from domain import access, commands, contract, periods, ticket, values
from domain.actors import ActorKind, Role
from domain.sla import report
from domain.values import Category, EntryKind, Priority

# The statuses are tuples of the domain's constants; a Literal built from them publishes the
# same values as an enum (pydantic reads it at run time, a type checker cannot).
TICKET_STATUSES = (ticket.OPEN, ticket.PAUSED, ticket.RESOLVED, ticket.CANCELLED)
TicketStatus = Literal[TICKET_STATUSES]  # type: ignore[valid-type]  # values from the domain, read at run time
ClockStatus = Literal[report.STATUSES]  # type: ignore[valid-type]  # values from the domain, read at run time
CONTRACT_STATUSES = (contract.ACTIVE, contract.CANCELLED)
ContractStatus = Literal[CONTRACT_STATUSES]  # type: ignore[valid-type]  # values from the domain, read at run time
AllowancePeriod = Literal[periods.PERIODS]  # type: ignore[valid-type]  # values from the domain, read at run time
ExportFormat = Literal[commands.EXPORT_FORMATS]  # type: ignore[valid-type]  # values from the domain, read at run time
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
    400: "a body that cannot be decoded as text, or a Host header this API does not serve",
    401: "no bearer token where one is needed, or one that is unknown, revoked or expired",
    403: "the caller's role may not do this (the access table of docs/design.md)",
    404: "unknown id, an id that is no UUID, or (to a customer) another customer's contract or ticket",
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


class Erasure(Body):
    reason: Reason | None = Field(None, description="why (kept readable: the audit's record of the erasure)")


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


class ExitExport(BaseModel):
    format: ExportFormat
    href: str = Field(description="where to fetch it: GET this path (staff tokens)")


class Cancelled(Position):
    export: ExitExport | None = Field(None, description=(
        "the export the plan promises the customer on cancellation (datacrm: its database as a MySQL dump);"
        " absent when the plan promises none. POST /contracts/{id}/erase then erases its personal data."))


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
    committed_at: At = Field(description="when the store committed it (commit time: what `known_at` filters on)")
    hash: str = Field(description="its link in the contract's hash chain (hex SHA-256; docs/audit.md)")


class History(BaseModel):
    as_of: At
    known_at: At | None = Field(description="only events committed at or before it (null: all so far)")
    events: list[Event]
    contract: dict[str, Any] | None = Field(description="the contract's state as of `as_of`")
    tickets: list[dict[str, Any]] = Field(description="its tickets' states as of `as_of`")


ERASED = "null once the contract's personal data is erased (POST /contracts/{id}/erase)"


class TicketSummary(BaseModel):
    ticket_id: Uuid
    contract_id: Uuid
    title: str | None = Field(description=ERASED)
    reporter: str | None = Field(description=ERASED)
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
    rules_version: str = Field(description="the version of the rules the figures are computed with")


class LedgerEntry(BaseModel):
    ticket_id: Uuid
    kind: str
    minutes: int
    charge: int
    overage: int
    at: At
    engineer: str | None = Field(description=f"who did the work, if given; {ERASED}")
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
    rules_version: str = Field(description="the version of the rules the figures are computed with")


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
    rules_version: str = Field(description="the version of the rules the figures are computed with")


# -- the catalog and the contracts' terms ---------------------------------------------------
# The terms as `PlanTerms.to_dict` writes them (docs/plans.md reads each value from its page);
# a contract's terms are the same shape, copied from its plan when it was signed.

class CalendarTerms(BaseModel):
    """A named calendar's spec; a key the catalog leaves out is not answered."""

    always_open: bool = Field(False, description="open every instant (24x7): no windows, no holidays")
    windows: dict[str, list[list[str]]] = Field({}, description='day ("mon".."sun") -> [["HH:MM", "HH:MM"], ...]')
    holidays: list[date] = Field([], description="closed days besides the holiday country's")
    holiday_country: str | None = Field(None, description="ISO country whose public holidays close the calendar")
    holiday_subdiv: str | None = None


class TargetTerms(BaseModel):
    response: str | None = Field(description='a duration ("30m", "2h", "3bd"); null: no target')
    resolution: str | None = Field(description='a duration ("30m", "2h", "3bd"); null: no target')


class BankTerms(BaseModel):
    minutes: int
    period_months: int
    low_balance_minutes: int


class ChargeTerms(BaseModel):
    minimum: int
    block: int
    flat: int | None


class CreditTerms(BaseModel):
    low_balance: int
    charges: dict[str, ChargeTerms] = Field(description="entry kind -> how it is charged, in credits")


class AllowanceTerms(BaseModel):
    kind: str
    minutes: int
    period: AllowancePeriod


class PlanTermsAnswer(BaseModel):
    """A plan's full terms as the catalog states them (or as a contract agreed to them)."""

    plan_id: str
    provider: str
    name: str
    time_zone: str
    channels: list[str]
    calendars: dict[str, CalendarTerms]
    coverage: dict[str, str] = Field(description='"default", "P1" or "P1.resolution" -> a calendar name')
    targets_by: Literal["priority", "category"]
    targets: dict[str, TargetTerms] = Field(description="priority or category -> its targets")
    default_category: str | None
    bank: BankTerms | None
    credits: CreditTerms | None
    allowances: list[AllowanceTerms]
    availability_target_pct: float | None
    p1_downgrade_meets_resolution: bool
    named_users: int | None
    features: list[str]
    exit_export: ExportFormat | None = Field(
        None, description="the export handed to the customer when the contract is cancelled (offered in the cancellation's answer)")
    terms_format: int


NamedUsers = Annotated[int | None, Field(
    description="how many active customer tokens a contract on the plan may hold; null: unlimited")]


class CatalogPlan(BaseModel):
    plan_id: str = Field(description='"provider/plan", e.g. crm-experts/gold')
    provider: str
    name: str
    time_zone: str
    channels: list[str]
    named_users: NamedUsers
    terms: PlanTermsAnswer


class Catalog(BaseModel):
    plans: list[CatalogPlan]


class ContractSummary(BaseModel):
    contract_id: Uuid
    customer: str | None = Field(description=ERASED)
    plan: str
    status: ContractStatus
    time_zone: str
    starts_on: date
    holidays: list[date]
    terms: PlanTermsAnswer = Field(description="the terms agreed when signed, copied from the plan then")
    named_users: NamedUsers
    erased_at: At | None = Field(None, description="when its personal data was erased; null: not erased")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Literal["ok", "down", "timeout", "blocked", "no recent heartbeat", "unknown"]] = Field(
        description="store, broker, relay and projection:NAME, each by its state (never an error's text)")


class Proof(BaseModel):
    """The head of a contract's hash chain: keep it, and check an export against it later."""

    contract_id: Uuid
    head_hash: str = Field(description="hex SHA-256: the link of the contract's last event (64 zeros before any)")
    events: int = Field(description="how many events the chain holds")
    position: int = Field(description="the store position of its last event")


# -- tokens ----------------------------------------------------------------------------------

class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    contracts: list[UUID] = Field([], max_length=access.MAX_CONTRACTS,
                                  description="a customer token's contracts (one or more); none for the other roles")
    name: Name | None = None
    expires_at: Instant | None = Field(None, description="default: never; at most three years ahead")


class TokenView(BaseModel):
    """A token as listed: never its secret."""

    token_id: Uuid
    role: Role
    contracts: list[Uuid]
    name: str | None
    created_at: At
    expires_at: At | None
    rotated_at: At | None
    revoked_at: At | None
    status: Literal["active", "expired", "revoked"]


class IssuedToken(TokenView):
    token: str = Field(description="the secret, shown this once: present it as `Authorization: Bearer <token>`")


class Tokens(BaseModel):
    tokens: list[TokenView]


class TokenEvent(FreeForm):
    type: str
    version: int
    occurred_at: At
    actor: dict[str, Any]


class TokenHistory(TokenView):
    events: list[TokenEvent]
