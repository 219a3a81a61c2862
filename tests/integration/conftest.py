"""An in-process event store on the session's PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra import wiring
from infra.settings import Settings
from infra.store import EventStore


@pytest.fixture(scope="session")
def store(servers: Settings) -> Iterator[EventStore]:
    s = wiring.event_store(servers)
    yield s
    s.close()
