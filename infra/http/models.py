"""Request bodies: strict (unknown fields are refused) and bounded as docs/design.md says, so
the OpenAPI schema publishes the bounds the domain enforces. Instants are kept as text so
the domain can refuse one without an offset with a clear reason; ids as text so that one
which is no UUID answers 404, as an unknown one does.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from domain import values

Instant = Annotated[str, Field(max_length=64, description="ISO-8601 instant with offset, from 2000-01-01")]
Reason = Annotated[str, Field(max_length=values.MAX_REASON)]
Name = Annotated[str, Field(min_length=1, max_length=values.MAX_NAME)]
Word = Annotated[str, Field(max_length=64)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: Instant | None = Field(None, description="ISO-8601 instant with offset; default: now")


class SignContract(Body):
    customer: Name
    plan: Word
    starts_on: date
    time_zone: Word | None = None
    holidays: list[date] = Field([], max_length=values.MAX_HOLIDAYS)


class AddCredits(Body):
    credits: int = Field(ge=1, le=values.MAX_CREDITS)


class Because(Body):
    reason: Reason | None = None


class Maintenance(Body):
    starts_at: Instant
    ends_at: Instant
    reason: Reason | None = None


class OpenTicket(Body):
    contract_id: Word
    title: str = Field(min_length=1, max_length=values.MAX_TITLE)
    reporter: Name
    channel: Word | None = None
    priority: Word | None = None
    category: Word | None = None
    down_since: Instant | None = None


class Classify(Body):
    priority: Word
    category: Word | None = None


class TimeEntry(Body):
    minutes: int = Field(ge=1, le=values.MAX_MINUTES)
    kind: Word
    engineer: Annotated[str, Field(max_length=values.MAX_NAME)] | None = None
