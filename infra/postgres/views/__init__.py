"""The read models' PostgreSQL views, one module per projection: each gets and puts its rows by
key, is idempotent by position, and answers the indexed questions its projection asks. The
rules stay in `projections/`; `ProjectionSpec` names what a projection needs to run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from consumers.ports import Projection, View


@dataclass(frozen=True)
class ProjectionSpec:
    """A projection, the SQL files of its read model, its view, and its notice topics."""

    name: str
    make: Callable[[], Projection]
    sql_files: tuple[str, ...]
    view: Callable[[psycopg.Connection, str], View]
    notice_topics: tuple[str, ...] = field(default=())

    @property
    def schema(self) -> str:
        return f"proj_{self.name}"
