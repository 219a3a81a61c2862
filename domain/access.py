"""Access tokens, as an aggregate: issued with a role (and, for a customer, its contracts),
rotated in place, revoked. Each change is an event naming who made it, so an audit sees who
could do what, when. The secret is not part of any event: only the token table keeps a hash
of it (infra/postgres/tokens.py), written in the same transaction as the event.

The rules that need no storage live here too: what a new token may say, and the named-user
limit of a contract's plan (a contract's active customer tokens count against it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import values
from domain.actors import ROLES, Role
from domain.errors import Conflict, InvalidInput

MAX_CONTRACTS = 100  # contracts one customer token may be bound to
MAX_LIFETIME = timedelta(days=3 * 366)  # the latest expiry a token may be given


def role(value: str) -> Role:
    if value not in ROLES:
        raise InvalidInput(f"unknown role {value!r}", {"allowed": list(ROLES)})
    return value


def check_binding(token_role: Role, contracts: list[UUID]) -> None:
    """A customer token is bound to one or more contracts; the other roles see every contract."""
    if token_role == "customer" and not contracts:
        raise InvalidInput("a customer token names the contracts it may see", {"contracts": []})
    if token_role != "customer" and contracts:
        raise InvalidInput(f"only a customer token is bound to contracts, not an {token_role} token")
    if len(contracts) > MAX_CONTRACTS:
        raise InvalidInput(f"a token may be bound to at most {MAX_CONTRACTS} contracts")


def check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is None:
        return
    if expires_at <= now:
        raise InvalidInput("expires_at must lie in the future", {"expires_at": expires_at.isoformat()})
    if expires_at > now + MAX_LIFETIME:
        raise InvalidInput("a token expires within three years", {"expires_at": expires_at.isoformat()})


def check_named_users(contract_id: UUID, limit: int | None, active: int) -> None:
    """Refuse one more customer token on a contract whose plan's named users are all taken."""
    if limit is not None and active >= limit:
        raise Conflict(
            f"contract {contract_id}'s plan supports {limit} named user(s), and {active} active customer"
            " token(s) already use them: revoke one first",
            {"contract_id": str(contract_id), "named_users": limit, "active": active},
        )


class Token(Aggregate):
    """One issued access token."""

    @event("Created")
    def __init__(self, role: str, contracts: list[str], name: str | None, expires_at: str | None,
                 occurred_at: datetime) -> None:
        self.role = role
        self.contracts = contracts
        self.name = name
        self.expires_at = expires_at
        self.created_at = occurred_at.isoformat()
        self.rotated_at: str | None = None
        self.revoked_at: str | None = None

    @classmethod
    def issue(cls, token_role: str, contracts: list[UUID], name: str | None, expires_at: datetime | None,
              now: datetime) -> Token:
        checked = role(token_role)
        check_binding(checked, contracts)
        values.text("name", name, values.MAX_NAME)
        check_expiry(expires_at, now)
        unique = sorted({str(c) for c in contracts})
        return cls(checked, unique, name, expires_at.isoformat() if expires_at else None, now)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def rotate(self, at: datetime) -> None:
        if self.revoked:
            raise Conflict("the token is revoked: issue a new one", {"revoked_at": self.revoked_at})
        self._rotated(at)

    @event("Rotated")
    def _rotated(self, occurred_at: datetime) -> None:
        self.rotated_at = occurred_at.isoformat()

    def revoke(self, at: datetime) -> None:
        if self.revoked:
            raise Conflict("the token is already revoked", {"revoked_at": self.revoked_at})
        self._revoked(at)

    @event("Revoked")
    def _revoked(self, occurred_at: datetime) -> None:
        self.revoked_at = occurred_at.isoformat()

    def state(self) -> dict[str, Any]:
        return {"token_id": str(self.id), "role": self.role, "contracts": list(self.contracts), "name": self.name,
                "expires_at": self.expires_at, "created_at": self.created_at, "rotated_at": self.rotated_at,
                "revoked_at": self.revoked_at}
