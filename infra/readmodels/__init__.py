"""One module per read model: its PostgreSQL view (the projection's port), its SQL files,
its query routes, and a `SPEC` that the composition root (infra/wiring.py) collects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from fastapi import APIRouter


@dataclass(frozen=True)
class ProjectionSpec:
    """A projection, the SQL files of its read model, its view, its routes and notice topics."""

    name: str
    make: Callable[[], Any]
    sql_files: tuple[str, ...]
    view: Callable[[psycopg.Connection, str], Any]
    routes: Callable[[Any], APIRouter] | None = None
    notice_topics: tuple[str, ...] = field(default=())

    @property
    def schema(self) -> str:
        return f"proj_{self.name}"
