"""The token rows an API process keeps (infra/postgres/token_cache.py), on the real PostgreSQL:
two token stores stand for two API processes, each with its own cache and listener."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from domain.actors import BOOTSTRAP
from infra.postgres.token_cache import TokenCache
from infra.postgres.tokens import SCHEMA, TokenStore
from infra.settings import Settings


def _until(check: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.fixture
def processes(servers: Settings) -> Iterator[tuple[TokenStore, TokenStore]]:
    url = servers.database_url
    assert url
    made = [TokenStore(url, lambda _: None, cache=TokenCache(url, retry_seconds=0.05).start()) for _ in range(2)]
    for each in made:
        _until(lambda each=each: each.cache is not None and each.cache.listening, "the cache listens")  # type: ignore[misc]
    yield made[0], made[1]
    for each in made:
        each.close()


def _kept(store: TokenStore, token: str) -> bool:
    return store.kept_caller(token)[0]


def test_a_revocation_in_one_process_ends_the_token_kept_by_another(processes: tuple[TokenStore, TokenStore]) -> None:
    here, there = processes
    issued = here.create(BOOTSTRAP, "agent", [])
    assert here.caller(issued.token) is not None
    assert _kept(here, issued.token)  # the next request needs no read of the table

    there.revoke(BOOTSTRAP, uuid.UUID(issued.state["token_id"]))
    assert there.caller(issued.token) is None  # at once where it was revoked
    _until(lambda: here.caller(issued.token) is None, "the other process hears of the revocation")


def test_a_rotation_in_one_process_ends_the_old_secret_kept_by_another(processes: tuple[TokenStore, TokenStore]) -> None:
    here, there = processes
    issued = here.create(BOOTSTRAP, "auditor", [])
    assert here.caller(issued.token) is not None
    rotated = there.rotate(BOOTSTRAP, uuid.UUID(issued.state["token_id"]))
    _until(lambda: here.caller(issued.token) is None, "the old secret dies in the other process")
    assert here.caller(rotated.token) is not None


def test_a_change_that_commits_while_a_row_is_being_read_is_not_kept_stale(
        processes: tuple[TokenStore, TokenStore]) -> None:
    here, there = processes
    assert here.cache is not None
    issued = here.create(BOOTSTRAP, "agent", [])
    token_id = uuid.UUID(issued.state["token_id"])
    since = here.cache.begin()
    row = here._row(token_id)  # read before the revocation commits...
    assert row is not None and row.revoked_at is None
    there.revoke(BOOTSTRAP, token_id)
    _until(lambda: here.cache is not None and here.cache.begin() != since, "the revocation is heard")
    here.cache.keep(token_id, row, since)  # ...offered for keeping after it
    assert here.caller(issued.token) is None


def test_a_change_made_while_the_listener_was_cut_off_is_not_missed(
        servers: Settings, processes: tuple[TokenStore, TokenStore]) -> None:
    here, _ = processes
    assert here.cache is not None and servers.database_url
    issued = here.create(BOOTSTRAP, "agent", [])
    assert here.caller(issued.token) is not None and _kept(here, issued.token)
    with psycopg.connect(servers.database_url, autocommit=True) as admin:
        listeners = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN ticketing_tokens%'").fetchall()
        assert listeners
        for (pid,) in listeners:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # A change nobody notifies (an operator's hand on the table): unheard by any cache.
        admin.execute(f"UPDATE {SCHEMA}.tokens SET revoked_at = now() WHERE token_id = %s",
                      (uuid.UUID(issued.state["token_id"]),))
    _until(lambda: here.cache is not None and not _kept(here, issued.token), "the cut-off cache keeps nothing")
    assert here.caller(issued.token) is None  # read from the table, listening or not
    _until(lambda: here.cache is not None and here.cache.listening, "the cache listens again")
    assert here.caller(issued.token) is None
