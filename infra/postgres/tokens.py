"""The access tokens: their events (an eventsourcing application of their own, in the
`access` schema) and the token table that every request with a token reads.

A token change is one transaction: the library's recorder inserts the event, and
`AccessRecorder._insert_events` (the library's hook for "other things" in that transaction)
writes the token's row, so the table never says what no event recorded, and the named-user
count is taken under a lock in that same transaction (two concurrent creations cannot both
take a contract's last named user).

A token reads `tk_<token id, 32 hex digits>_<secret>`: the id finds the row, the secret's
SHA-256 is compared in constant time. Secrets are 256 random bits, so a plain hash suffices
(no password stretching is needed against guessing). The API keeps the rows of tokens
presented recently (infra/postgres/token_cache.py) while it hears every change to the table:
a rotation or a revocation takes effect on the next request in the process that made it,
and in every other API process as soon as PostgreSQL delivers the change's notification
(milliseconds after it commits).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.rows import dict_row

from domain import access
from domain.actors import Actor, Caller
from domain.errors import ConcurrentChange, Conflict, InvalidInput, NotFound
from domain.wallclock import Clock, SystemClock
from infra import postgres, sealing
from infra.postgres.keys import ContractKeys
from infra.postgres.token_cache import CHANNEL, TokenCache, TokenRow

SCHEMA = "access"
_PRESENTED = re.compile(r"tk_([0-9a-f]{32})_([A-Za-z0-9_-]{20,100})")
# Whose limit a contract's tokens count against: the plan's named users (None: unlimited),
# or NotFound for a contract that does not exist.
NamedUsers = Callable[[UUID], int | None]


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_secret(token_id: UUID) -> tuple[str, bytes]:
    """A presentable token for this id, and the hash of its secret that the table keeps."""
    secret = secrets.token_urlsafe(32)
    return f"tk_{token_id.hex}_{secret}", digest(secret)


def parse(presented: str) -> tuple[UUID, str] | None:
    found = _PRESENTED.fullmatch(presented)
    return (UUID(found.group(1)), found.group(2)) if found else None


class AccessRecorder(PostgresApplicationRecorder):
    """The library's recorder, writing the token's row in the event's transaction."""

    def _insert_events(self, curs: Any, stored_events: Any, **kwargs: Any) -> None:
        change: Callable[[Any], None] | None = kwargs.get("token_change")
        if change is not None:
            change(curs)


class AccessApplication(Application[UUID]):
    name = "access"


@dataclass(frozen=True)
class Issued:
    """A token just created or rotated: its state and its secret, shown once."""

    state: dict[str, Any]
    token: str


class TokenStore:
    """Create, list, rotate and revoke tokens; tell who presents one."""

    def __init__(self, url: str, named_users: NamedUsers, clock: Clock | None = None,
                 keys: ContractKeys | None = None, cache: TokenCache | None = None) -> None:
        self.clock = clock or SystemClock()
        # The rows of tokens presented recently, in the API (a one-off command reads the table).
        self.cache = cache
        self.named_users = named_users
        # A customer token's name is personal: sealed under its (first) contract's key, it is
        # erased with that contract (docs/audit.md). Staff tokens' names stay in clear.
        self.keys = keys
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext('ticketing-access-setup'))")
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            env = postgres.store_env(url, SCHEMA, pool_size=2)
            env["APPLICATION_RECORDER_TOPIC"] = f"{__name__}:AccessRecorder"
            self.app = AccessApplication(env=env)
            conn.execute(postgres.sql("tokens", SCHEMA))
            conn.execute("SELECT pg_advisory_unlock(hashtext('ticketing-access-setup'))")
        self.pool = postgres.make_pool(url, max_size=3, name="access")

    def close(self) -> None:
        if self.cache is not None:
            self.cache.stop()
        self.pool.close()
        self.app.close()

    # -- changes ----------------------------------------------------------------------------

    def create(self, actor: Actor, role: str, contracts: list[UUID], name: str | None = None,
               expires_at: datetime | None = None, key: str | None = None) -> Issued:
        """Issue a token. `key`, the request's Idempotency-Key: a key used before is refused
        (a token's answer holds its secret, so it is never kept to be replayed)."""
        now = self.clock.now()
        token = access.Token.issue(role, contracts, name, expires_at, now)
        limits = {c: self._limit(c) for c in token.contracts} if token.role == "customer" else {}
        presented, hashed = new_secret(token.id)
        self._stamp(token, actor)
        given = token.name
        if given is not None and token.role == "customer" and self.keys is not None:
            sealed = self.keys.seal(token.contracts[0], given)
            for pending in token.pending_events:
                if hasattr(pending, "name"):
                    object.__setattr__(pending, "name", sealed)  # events are frozen once built
            token.name = sealed

        def change(curs: Any) -> None:
            curs.execute(f"LOCK TABLE {SCHEMA}.tokens IN SHARE ROW EXCLUSIVE MODE")
            if key is not None:
                self._use_key(curs, actor, key)
            for contract, limit in limits.items():
                if limit is not None:
                    access.check_named_users(UUID(contract), limit, self._active_customers(curs, contract, now))
            curs.execute(
                f"INSERT INTO {SCHEMA}.tokens (token_id, secret_hash, role, contracts, name, created_at, expires_at)"
                " VALUES (%s, %s, %s, %s::uuid[], %s, %s, %s)",
                (token.id, hashed, token.role, token.contracts, token.name, now, expires_at))

        self._save(token, change)
        return Issued({**token.state(), "name": given}, presented)

    def rotate(self, actor: Actor, token_id: UUID, key: str | None = None) -> Issued:
        """A new secret for the same token; the old one is dead from this commit on."""
        token = self._token(token_id)
        now = self.clock.now()
        token.rotate(now)
        presented, hashed = new_secret(token.id)
        self._stamp(token, actor)

        def change(curs: Any) -> None:
            if key is not None:
                self._use_key(curs, actor, key)
            curs.execute(f"UPDATE {SCHEMA}.tokens SET secret_hash = %s, rotated_at = %s WHERE token_id = %s",
                         (hashed, now, token.id))
            self._notify(curs, token.id)

        self._save(token, change)
        return Issued(token.state(), presented)

    def revoke(self, actor: Actor, token_id: UUID) -> dict[str, Any]:
        token = self._token(token_id)
        now = self.clock.now()
        token.revoke(now)
        self._stamp(token, actor)

        def change(curs: Any) -> None:
            curs.execute(f"UPDATE {SCHEMA}.tokens SET revoked_at = %s WHERE token_id = %s", (now, token.id))
            self._notify(curs, token.id)

        self._save(token, change)
        return token.state()

    # -- reads ------------------------------------------------------------------------------

    def list(self) -> list[dict[str, Any]]:
        """Every token, without its secret, oldest first, with whether it is active now."""
        rows = postgres.run(self.pool, lambda conn: conn.cursor(row_factory=dict_row).execute(
            f"SELECT token_id, role, contracts, name, created_at, expires_at, rotated_at, revoked_at"
            f" FROM {SCHEMA}.tokens ORDER BY created_at, token_id").fetchall())
        now = self.clock.now()
        return self._opened([self._shown(row, now) for row in rows])

    def get(self, token_id: UUID) -> dict[str, Any]:
        """One token (no secret) and its events, each with who made it and when."""
        token = self._token(token_id)
        events = []
        for e in self.app.events.get(token.id):
            fields = {k: v for k, v in vars(e).items()
                      if k not in ("originator_id", "originator_version", "timestamp", "occurred_at", "actor")}
            events.append({"type": type(e).__qualname__, "version": e.originator_version,
                           "occurred_at": e.occurred_at.isoformat(),  # type: ignore[attr-defined]  # every Token event has it
                           "actor": getattr(e, "actor", None) or {"kind": "system"}, **fields})
        shown = self._opened([self._shown(token.state(), self.clock.now())])[0]
        for shown_event in events:
            if "name" in shown_event:  # the name as the token shows it: opened, or None once erased
                shown_event["name"] = shown["name"]
        return {**shown, "events": events}

    def _opened(self, shown: builtins.list[dict[str, Any]]) -> builtins.list[dict[str, Any]]:
        """Tokens as shown: a sealed name opened with its contract's key as it stands now (None once erased)."""
        def sealed(t: dict[str, Any]) -> bool:
            return sealing.is_sealed(t.get("name")) and bool(t.get("contracts"))

        if self.keys is None or not any(sealed(t) for t in shown):
            return shown
        openers = self.keys.openers(t["contracts"][0] for t in shown if sealed(t))
        return [{**t, "name": openers[t["contracts"][0]].open(t["name"])} if sealed(t) else t for t in shown]

    def caller(self, presented: str) -> Caller | None:
        """Who presents this token, or None when it names no active token (unknown, wrong
        secret, revoked, expired): each is the same 401 to the caller."""
        parsed = parse(presented)
        if parsed is None:
            return None
        token_id, secret = parsed
        row = self.cache.get(token_id) if self.cache is not None else None
        if row is None:
            since = self.cache.begin() if self.cache is not None else 0
            row = self._row(token_id)
            if row is None:
                hmac.compare_digest(digest(secret), bytes(32))  # the same work as for a known id
                return None
            if self.cache is not None:
                self.cache.keep(token_id, row, since)
        return self._check(token_id, secret, row)

    def kept_caller(self, presented: str) -> tuple[bool, Caller | None]:
        """`(True, caller)` when the answer needs no read of the table (a malformed token, or
        a kept row); `(False, None)` when `caller` must read it."""
        parsed = parse(presented)
        if parsed is None:
            return True, None
        token_id, secret = parsed
        row = self.cache.get(token_id) if self.cache is not None else None
        return (False, None) if row is None else (True, self._check(token_id, secret, row))

    def _row(self, token_id: UUID) -> TokenRow | None:
        found = postgres.run(self.pool, lambda conn: conn.execute(
            f"SELECT secret_hash, role, contracts, expires_at, revoked_at FROM {SCHEMA}.tokens WHERE token_id = %s",
            (token_id,)).fetchone())
        if found is None:
            return None
        hashed, role, contracts, expires_at, revoked_at = found
        return TokenRow(bytes(hashed), role, frozenset(str(c) for c in contracts), expires_at, revoked_at)

    def _check(self, token_id: UUID, secret: str, row: TokenRow) -> Caller | None:
        if not hmac.compare_digest(digest(secret), row.secret_hash):
            return None
        if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= self.clock.now()):
            return None
        return Caller(Actor("token", str(token_id), row.role), row.role, row.contracts)

    # -- helpers ----------------------------------------------------------------------------

    def _token(self, token_id: UUID) -> access.Token:
        try:
            token: object = self.app.repository.get(token_id)
        except AggregateNotFoundError:
            raise NotFound(f"no token {token_id}") from None
        if not isinstance(token, access.Token):
            raise NotFound(f"no token {token_id}")
        return token

    def _limit(self, contract: str) -> int | None:
        try:
            return self.named_users(UUID(contract))
        except NotFound:
            raise InvalidInput(f"no contract {contract}", {"contracts": [contract]}) from None

    @staticmethod
    def _stamp(token: access.Token, actor: Actor) -> None:
        for pending in token.pending_events:
            object.__setattr__(pending, "actor", actor.as_json())

    def _save(self, token: access.Token, change: Callable[[Any], None]) -> None:
        with self._conflicts():
            self.app.save(token, token_change=change)
        if self.cache is not None:  # this process's next request reads the committed row
            self.cache.drop(token.id)

    @staticmethod
    def _notify(curs: Any, token_id: UUID) -> None:
        """Tell every API process's cache, when this transaction commits, that the row changed."""
        curs.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(token_id)))

    @contextmanager
    def _conflicts(self) -> Iterator[None]:
        try:
            yield
        except IntegrityError:
            raise ConcurrentChange("the token changed at the same time; try again") from None
        except psycopg.errors.UniqueViolation:
            raise Conflict("this Idempotency-Key was used already: a token's answer holds its secret,"
                           " so it is never replayed") from None

    @staticmethod
    def _use_key(curs: Any, actor: Actor, key: str) -> None:
        curs.execute(f"INSERT INTO {SCHEMA}.used_keys (scope, key) VALUES (%s, %s)",
                     (actor.token_id or actor.kind, key))

    @staticmethod
    def _active_customers(curs: Any, contract: str, now: datetime) -> int:
        curs.execute(
            f"SELECT count(*) AS n FROM {SCHEMA}.tokens WHERE role = 'customer' AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > %s) AND contracts @> ARRAY[%s::uuid]", (now, contract))
        row = curs.fetchone()
        return int(row["n"] if isinstance(row, dict) else row[0])

    @staticmethod
    def _shown(row: dict[str, Any], now: datetime) -> dict[str, Any]:
        shown = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
        shown["token_id"] = str(row["token_id"])
        shown["contracts"] = [str(c) for c in row["contracts"]]
        expires = row["expires_at"]
        expired = expires is not None and (datetime.fromisoformat(expires) if isinstance(expires, str) else expires) <= now
        shown["status"] = "revoked" if row["revoked_at"] else "expired" if expired else "active"
        return shown
