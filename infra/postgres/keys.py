"""The contracts' keys, and the personal fields sealed and opened with them (crypto-shredding,
docs/audit.md).

Writing: the host seals each new event's personal fields (domain/personal.py) under its
contract's key before it stores the event; a contract's key is made when it is signed. The key
a process seals with may be kept in memory, since sealing reveals nothing. Reading: whoever
shows a personal field opens it with the key read from PostgreSQL at that moment, never from a
cache, so once `erase` has destroyed a key, no process can open that contract's fields again:
they read as None (null in the API; the relay writes "" on the topics).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any
from uuid import UUID

import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg_pool import ConnectionPool

from domain import personal
from domain.errors import Conflict
from infra import postgres, sealing
from projections.envelope import Envelope

SEALING_CACHE = 100_000  # keys a writing process keeps to seal with (32 bytes each)


@dataclass(frozen=True)
class Opener:
    """What one contract's personal fields read as: opened with its key, or None once erased.
    A contract without a key (signed before sealing began) has its fields in clear."""

    contract_id: str
    key: bytes | None
    erased: bool

    @cached_property
    def _cipher(self) -> AESGCM | None:
        """The key made ready once for the many fields one reader opens (a contract's history)."""
        return None if self.key is None else sealing.cipher(self.key)

    def open(self, value: Any) -> Any:
        if value is None or self.erased:
            return None
        if sealing.is_sealed(value):
            return sealing.open_sealed(self._cipher, self.contract_id, value)
        return value  # stored in clear, before sealing began

    def opened(self, data: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
        """`data` with these of its fields opened."""
        names = [f for f in fields if f in data]
        return data if not names else {**data, **{f: self.open(data[f]) for f in names}}


def shown_columns(columns: Iterable[str], personal_columns: Iterable[str], schema: str = postgres.STORE_SCHEMA) -> str:
    """A read model's select list in which the personal columns read as NULL once their row's
    contract (its `contract_id` column) is erased, even before its projection blanks them."""
    hidden = set(personal_columns)
    return ", ".join(f"CASE WHEN {schema}.erased(contract_id) THEN NULL ELSE {c} END AS {c}" if c in hidden else c
                     for c in columns)


class ContractKeys:
    """The keys table, the sealing of new events and the opening of stored ones."""

    def __init__(self, pool: ConnectionPool, schema: str) -> None:
        self.pool, self.schema = pool, schema
        self.table = f"{schema}.contract_keys"
        self._sealing: dict[str, bytes] = {}

    # -- writing ----------------------------------------------------------------------------

    def seal_events(self, events: Sequence[Any]) -> tuple[list[Any], dict[tuple[str, str], str]]:
        """The events as they are stored: copies whose personal fields are sealed under their
        contract's key; and each sealed value by (aggregate id, field), for the caller to put in
        the aggregate it caches."""
        stored: list[Any] = []
        sealed_values: dict[tuple[str, str], str] = {}
        for event in events:
            kind = _kind(event)
            names = [f for f in personal.fields_of(kind) if isinstance(getattr(event, f, None), str)]
            if not names:
                stored.append(event)
                continue
            contract_id = str(getattr(event, "contract_id", None) or event.originator_id)
            key = self._key_to_seal(contract_id)
            sealed_copy = copy.copy(event)
            for name in names:
                value = sealing.seal(key, contract_id, getattr(event, name))
                object.__setattr__(sealed_copy, name, value)  # events are frozen once built
                sealed_values[(str(event.originator_id), name)] = value
            stored.append(sealed_copy)
        return stored, sealed_values

    def seal(self, contract_id: str, value: str) -> str:
        """One value sealed under the contract's key (a customer token's name, for one)."""
        return sealing.seal(self._key_to_seal(contract_id), contract_id, value)

    def _key_to_seal(self, contract_id: str) -> bytes:
        key = self._sealing.get(contract_id)
        if key is not None:
            return key

        def fetch(conn: psycopg.Connection) -> tuple[Any, ...] | None:
            # A contract signed before sealing began gets its key now: its new fields are sealed.
            conn.execute(f"INSERT INTO {self.table} (contract_id, key) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                         (UUID(contract_id), sealing.new_key()))
            return conn.execute(f"SELECT key, erased_at FROM {self.table} WHERE contract_id = %s",
                                (UUID(contract_id),)).fetchone()

        row = postgres.run(self.pool, fetch) or (None, None)
        if row[0] is None:
            raise Conflict("the contract's personal data is erased: nothing personal is recorded on it any more",
                           {"contract_id": contract_id})
        if len(self._sealing) >= SEALING_CACHE:
            self._sealing.clear()
        key = self._sealing[contract_id] = bytes(row[0])
        return key

    def erase(self, contract_id: UUID) -> None:
        """Destroy the contract's key: its sealed fields can never be opened again."""
        postgres.run(self.pool, lambda conn: conn.execute(
            f"INSERT INTO {self.table} (contract_id, key, erased_at) VALUES (%s, NULL, now())"
            f" ON CONFLICT (contract_id) DO UPDATE SET key = NULL, erased_at = COALESCE({self.table}.erased_at, now())",
            (contract_id,)))
        self._sealing.pop(str(contract_id), None)

    # -- reading ----------------------------------------------------------------------------

    def openers(self, contract_ids: Iterable[str]) -> dict[str, Opener]:
        """How each contract's fields read now, from one query (keys are never cached here)."""
        ids = sorted(set(contract_ids))
        if not ids:
            return {}
        rows = postgres.run(self.pool, lambda conn: conn.execute(
            f"SELECT contract_id, key, erased_at FROM {self.table} WHERE contract_id = ANY(%s)",
            ([UUID(i) for i in ids],)).fetchall())
        found = {str(r[0]): Opener(str(r[0]), bytes(r[1]) if r[1] is not None else None, r[2] is not None)
                 for r in rows}
        return {i: found.get(i) or Opener(i, None, False) for i in ids}

    def opener(self, contract_id: str | UUID) -> Opener:
        return self.openers([str(contract_id)])[str(contract_id)]

    def reveal(self, envelopes: Sequence[Envelope], erased_as: str | None = None) -> list[Envelope]:
        """The envelopes with their personal fields opened; an erased field reads as
        `erased_as` (None for the API, "" for the topics)."""
        openers = self.openers(e.contract_id for e in envelopes if personal.fields_of(e.type))
        return [reveal_envelope(e, openers.get(e.contract_id), erased_as) for e in envelopes]

    def reveal_state(self, kind: str, state: dict[str, Any], opener: Opener) -> dict[str, Any]:
        """An aggregate's `state()` with its personal attributes opened."""
        return opener.opened(state, personal.AGGREGATE_ATTRIBUTES.get(kind, ()))


def reveal_envelope(env: Envelope, opener: Opener | None, erased_as: str | None = None) -> Envelope:
    names = [f for f in personal.fields_of(env.type) if env.data.get(f) is not None]
    if not names or opener is None:
        return env
    data = dict(env.data)
    for name in names:
        opened = opener.open(data[name])
        data[name] = erased_as if opened is None else opened
    return replace(env, data=data)


def _kind(event: Any) -> str:
    return type(event).__qualname__
