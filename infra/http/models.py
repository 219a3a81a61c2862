"""Request bodies: strict (unknown fields are refused), instants kept as text so the domain
can refuse one without an offset with a clear reason."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: str | None = Field(None, description="ISO-8601 instant with offset; default: now")


class SignContract(Body):
    customer: str = Field(min_length=1)
    plan: str
    starts_on: date
    time_zone: str | None = None
    holidays: list[date] = []


class AddCredits(Body):
    credits: int


class Reason(Body):
    reason: str | None = None


class Maintenance(Body):
    starts_at: str
    ends_at: str
    reason: str | None = None


class OpenTicket(Body):
    contract_id: str
    title: str = Field(min_length=1)
    reporter: str = Field(min_length=1)
    channel: str | None = None
    priority: str | None = None
    category: str | None = None
    down_since: str | None = None


class Classify(Body):
    priority: str
    category: str | None = None


class TimeEntry(Body):
    minutes: int
    kind: str
    engineer: str | None = None
