"""Idempotency keys, after the IETF draft "The Idempotency-Key HTTP Header Field".

Every POST may carry `Idempotency-Key` (1-255 visible ASCII characters), scoped to the
caller's token. A command that succeeds keeps its answer under the key in the same
transaction as its events (infra/postgres/recorder.py), so the happy path costs no extra
round trip. A repeat (same method, path, and body compared as parsed JSON; only a SHA-256
of it is kept) gets the kept answer: either at once, when its own append finds the key
taken, or when its command is refused because the first run already changed the state.
The same key on another request is refused (422). A repeat while the first still runs in
this process is refused (409); one that races it from another API process gets the kept
answer once the first commits, and is never recorded twice. A request that fails keeps
nothing, so a client may correct it and retry with the same key.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from psycopg_pool import ConnectionPool

from domain.errors import Conflict, DomainError, InvalidInput
from infra import postgres
from infra.postgres.recorder import Claim, KeyKept

KEY = re.compile(r"[\x21-\x7e]{1,255}")
T = TypeVar("T")


class Replayed(DomainError):
    """The request repeats one that succeeded: here is the answer it got."""

    def __init__(self, status: int, answer: dict[str, Any]) -> None:
        super().__init__("replayed", answer)
        self.status, self.answer = status, answer


def request_digest(method: str, path: str, body: Any) -> bytes:
    """What identifies a request: method, path and the body as parsed JSON (key order and
    spacing do not matter)."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()


class Keys:
    """Runs keyed commands at most once: in flight in this process, and kept in the store."""

    def __init__(self, pool: ConnectionPool, schema: str) -> None:
        self.pool, self.schema = pool, schema
        self.running: set[tuple[str, str]] = set()
        self.lock = threading.Lock()

    def claim(self, scope: str, key: str, digest: bytes, status: int, answer_key: str | None) -> Claim:
        if not KEY.fullmatch(key):
            raise InvalidInput("Idempotency-Key must be 1 to 255 visible ASCII characters")
        return Claim(scope, key, digest, status, answer_key)

    def run(self, claim: Claim, command: Callable[[], T]) -> T:
        """Run the command once for this key, or answer what its first run kept."""
        with self._in_flight(claim):
            try:
                return command()
            except (KeyKept, DomainError) as error:
                kept = self._kept(claim)
                if kept is not None:
                    raise kept from None
                if isinstance(error, KeyKept):  # kept, then gone: a concurrent repeat; try again
                    raise Conflict("a request with this Idempotency-Key is still running", {"retry": True}) from None
                raise

    @contextmanager
    def _in_flight(self, claim: Claim) -> Iterator[None]:
        mine = (claim.scope, claim.key)
        with self.lock:
            if mine in self.running:
                raise Conflict("a request with this Idempotency-Key is still running", {"retry": True})
            self.running.add(mine)
        try:
            yield
        finally:
            with self.lock:
                self.running.discard(mine)

    def _kept(self, claim: Claim) -> DomainError | None:
        """What the key answers now: the kept answer, a refusal of another request, or nothing."""
        sql = f"SELECT request_hash, status, answer FROM {self.schema}.idempotency WHERE scope = %s AND key = %s"
        row = postgres.run(self.pool, lambda conn: conn.execute(sql, (claim.scope, claim.key)).fetchone())
        if row is None:
            return None
        if bytes(row[0]) != claim.digest:
            return InvalidInput("this Idempotency-Key was used for a different request")
        return Replayed(row[1], row[2])

