"""The token rows an API process keeps between requests, for as long as PostgreSQL tells it of
every change to them.

Checking a token is a read of its row (infra/postgres/tokens.py); keeping the rows of tokens
presented recently spares every request that round trip. A kept row is only trusted while a
connection of this process LISTENs on the channel that every change to the token table
notifies in its own transaction (`NOTIFY` is delivered when that transaction commits):
- a notification drops the token's row, in every process, a few milliseconds after the
  change commits; the process that made the change drops it at once, before it answers;
- while the listening connection is down (PostgreSQL restarted, the connection cut), nothing
  is kept and every request reads the table, until the process listens again (and then
  starts from nothing: notifications sent meanwhile are lost);
- a row read from the table is kept only if no notification (and no reconnection) arrived
  since the read began, so a change that commits between the read and the keeping cannot
  leave a stale row behind (`generation`).
Only rows that exist are kept (an unknown id always reads the table), and at most `size` of
them, the least recently presented dropped first. Expiry is not the table's news: it is
checked against the clock on every request from the kept `expires_at`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg
import structlog

from domain.actors import Role

log = structlog.get_logger("token-cache")

CHANNEL = "ticketing_tokens"


@dataclass(frozen=True)
class TokenRow:
    """What a token check needs of the token's row."""

    secret_hash: bytes
    role: Role
    contracts: frozenset[str]
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCache:
    """Rows by token id, trusted only while listening; `start()` begins to listen."""

    def __init__(self, url: str, size: int = 10_000, retry_seconds: float = 1.0) -> None:
        self.url, self.size, self.retry_seconds = url, size, retry_seconds
        self.rows: OrderedDict[UUID, TokenRow] = OrderedDict()
        self.lock = threading.Lock()
        self.generation = 0
        self.listening = False
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._listen, name="token-cache", daemon=True)

    def start(self) -> TokenCache:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)  # the listener looks up at least once a second

    # -- requests ---------------------------------------------------------------------------

    def get(self, token_id: UUID) -> TokenRow | None:
        """The kept row, or None (not kept, or not listening: read the table)."""
        with self.lock:
            row = self.rows.get(token_id) if self.listening else None
            if row is not None:
                self.rows.move_to_end(token_id)
            return row

    def begin(self) -> int:
        """Call before reading a row from the table; pass the answer to `keep`."""
        with self.lock:
            return self.generation

    def keep(self, token_id: UUID, row: TokenRow, since: int) -> None:
        """Keep a row read from the table, unless anything changed since `begin()`."""
        with self.lock:
            if not self.listening or self.generation != since:
                return
            self.rows[token_id] = row
            self.rows.move_to_end(token_id)
            while len(self.rows) > self.size:
                self.rows.popitem(last=False)

    def drop(self, token_id: UUID) -> None:
        """Forget a token's row (its change committed, here or in another process)."""
        with self.lock:
            self.generation += 1
            self.rows.pop(token_id, None)

    # -- the listening connection -----------------------------------------------------------

    def _listen(self) -> None:
        while not self.stopped.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._set_listening(True)
                    while not self.stopped.is_set():
                        for notice in conn.notifies(timeout=1.0):  # ends after a quiet second
                            self._heard(notice.payload)
            except psycopg.Error as error:
                if not self.stopped.is_set():
                    log.warning("token changes not heard; checking every token against the table",
                                error=str(error)[:200])
            finally:
                self._set_listening(False)
            self.stopped.wait(self.retry_seconds)

    def _heard(self, payload: str) -> None:
        try:
            self.drop(UUID(payload))
        except ValueError:  # not one token's id: forget them all
            self._set_listening(self.listening)

    def _set_listening(self, listening: bool) -> None:
        """Start from nothing either way: what was kept may have changed unheard."""
        with self.lock:
            self.generation += 1
            self.rows.clear()
            self.listening = listening
