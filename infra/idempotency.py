"""Idempotency keys, after the IETF draft "The Idempotency-Key HTTP Header Field".

Every POST may carry `Idempotency-Key` (1-255 visible ASCII characters), scoped to the
caller's token. The first request with a key claims it (a row without an answer, owned by
this API process) and runs; its answer is kept in the same transaction as its events (see
infra/postgres/recorder.py). A repeat with the same request (method, path, and body compared
as parsed JSON; only a SHA-256 of it is kept) gets the kept answer; the same key with another
request is refused (422); a repeat while the first still runs is refused (409), unless the
process that ran it has died: each API process holds an advisory lock for its life, so a
claim whose owner holds none is taken over at once. A request that fails keeps nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from typing import Any

import psycopg
import structlog
from psycopg_pool import ConnectionPool

from consumers import leases
from infra import postgres
from domain.errors import Conflict, DomainError, InvalidInput
from infra.postgres.recorder import Claim

log = structlog.get_logger("idempotency")
KEY = re.compile(r"[\x21-\x7e]{1,255}")
STALE = 60  # seconds: no command runs this long (its store waits time out first), so its claim was lost


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


class Claims:
    """Claims, completions (in the recorder) and releases of idempotency keys."""

    def __init__(self, pool: ConnectionPool, url: str, schema: str) -> None:
        self.pool, self.schema = pool, schema
        self.owner = Owner(url)

    def close(self) -> None:
        self.owner.close()

    def begin(self, scope: str, key: str, digest: bytes, status: int, answer_key: str | None) -> Claim:
        """Claim the key for a run of this request, or raise: Replayed, 422, or 409."""
        if not KEY.fullmatch(key):
            raise InvalidInput("Idempotency-Key must be 1 to 255 visible ASCII characters")
        attempt = str(uuid.uuid4())  # one per request: a retried insert finds its own row
        for _ in range(3):
            row = self._one(
                "INSERT INTO {s}.idempotency (scope, key, request_hash, attempt, owner)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING attempt",
                (scope, key, digest, attempt, self.owner.role))
            if row is not None or self._taken_over(scope, key, digest, attempt):
                return Claim(scope, key, attempt, status, answer_key)
        raise Conflict("a request with this Idempotency-Key is still running", {"retry": True})

    def _taken_over(self, scope: str, key: str, digest: bytes, attempt: str) -> bool:
        row = self._one("SELECT request_hash, attempt, owner, status, answer,"
                        f" started_at < now() - interval '{STALE} seconds' FROM {{s}}.idempotency"
                        " WHERE scope = %s AND key = %s", (scope, key))
        if row is None:
            return False  # released meanwhile: claim it again
        found_hash, old, owner, status, answer, stale = row
        if bytes(found_hash) != digest:
            raise InvalidInput("this Idempotency-Key was used for a different request")
        if status is not None:
            raise Replayed(status, answer)
        if str(old) == attempt:
            return True  # our own insert, whose answer was lost with a dead connection
        if not stale and (owner == self.owner.role or self.owner.alive(owner)):
            raise Conflict("a request with this Idempotency-Key is still running", {"retry": True})
        log.info("taking over the key of a dead process", scope=scope, owner=owner)
        return self._one("UPDATE {s}.idempotency SET attempt = %s, owner = %s, started_at = now()"
                         " WHERE scope = %s AND key = %s AND attempt = %s AND status IS NULL RETURNING 1",
                         (attempt, self.owner.role, scope, key, old)) is not None

    def release(self, claim: Claim) -> None:
        """Forget a claim whose command failed: the client may correct it and retry."""
        try:
            self._one("DELETE FROM {s}.idempotency WHERE scope = %s AND key = %s AND attempt = %s"
                      " AND status IS NULL RETURNING 1", (claim.scope, claim.key, claim.attempt))
        except psycopg.Error as error:  # the owner's death will free it for a repeat
            log.warning("could not release an idempotency key", error=str(error))

    def _one(self, query: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        sql = query.replace("{s}", self.schema)
        return postgres.run(self.pool, lambda conn: conn.execute(sql, params).fetchone())  # type: ignore[arg-type]


class Owner:
    """This process's life, as an advisory lock others can look for; kept across reconnects."""

    def __init__(self, url: str) -> None:
        self.url, self.role = url, f"api-process:{uuid.uuid4()}"
        self.conn = leases.connect(url, autocommit=True)
        leases.try_lock(self.conn, self.role)
        self.stopped = threading.Event()
        threading.Thread(target=self._keep, name="idempotency-owner", daemon=True).start()

    def alive(self, role: str) -> bool:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            return leases.holder(conn, role) is not None

    def _keep(self) -> None:
        while not self.stopped.wait(2.0):
            try:
                self.conn.execute("SELECT 1")
            except psycopg.Error:
                self._reconnect()

    def _reconnect(self) -> None:
        try:
            self.conn.close()
            self.conn = leases.connect(self.url, autocommit=True)
            leases.try_lock(self.conn, self.role)
        except psycopg.Error:
            time.sleep(1.0)

    def close(self) -> None:
        self.stopped.set()
        self.conn.close()
