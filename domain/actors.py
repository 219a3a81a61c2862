"""Who did it: the actor every recorded event names (docs/design.md, Access).

A command carries its actor; the application stamps it on each event the command records, so
the history, the exports and the topics say who asked for each fact. The kinds:

- `token`: a caller presenting an issued token (its id and role);
- `bootstrap`: the caller presenting the bootstrap admin token (TICKETING_ADMIN_TOKEN);
- `open`: a caller without a token while no admin token is configured (loopback only);
- `system`: the backend itself (the renewals pass) and operators' local commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

ActorKind = Literal["token", "bootstrap", "open", "system"]
Role = Literal["admin", "agent", "auditor", "customer"]
ROLES: tuple[Role, ...] = get_args(Role)


@dataclass(frozen=True)
class Actor:
    """One caller, as recorded on events: `{"kind": "token", "token_id", "role"}`, or only the kind."""

    kind: ActorKind
    token_id: str | None = None
    role: Role | None = None

    def __post_init__(self) -> None:
        if (self.kind == "token") != (self.token_id is not None and self.role is not None):
            raise ValueError("a token actor names its token and role; the other kinds name neither")

    def as_json(self) -> dict[str, Any]:
        """The recorded shape: primitives only."""
        if self.kind == "token":
            return {"kind": "token", "token_id": self.token_id, "role": self.role}
        return {"kind": self.kind}

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> Actor:
        """The actor of a recorded shape (an event recorded before actors were: the system)."""
        if not value:
            return SYSTEM
        return cls(value["kind"], value.get("token_id"), value.get("role"))


SYSTEM = Actor("system")
OPEN = Actor("open")
BOOTSTRAP = Actor("bootstrap")


@dataclass(frozen=True)
class Caller:
    """Who is calling, for the access rules: the actor its commands record, its role, and (for
    a customer) the contracts it may see."""

    actor: Actor
    role: Role
    contracts: frozenset[str] = frozenset()

    def sees(self, contract_id: str) -> bool:
        """Whether this caller may see the contract (and its tickets) at all."""
        return self.role != "customer" or contract_id in self.contracts


OPEN_CALLER = Caller(OPEN, "admin")
BOOTSTRAP_CALLER = Caller(BOOTSTRAP, "admin")
SYSTEM_CALLER = Caller(SYSTEM, "admin")
