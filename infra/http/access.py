"""Who may call what (docs/design.md, Access): one table, `RULES`, from every route (method and
path) to the roles that may call it and the object a customer must own for it. The route class
(`errors.Declared`) refuses to build a route the table does not name, so a new route cannot be
added without declaring who may call it; the tests derive their route x role matrix from it.

A request's caller is settled once, by the access middleware (app.py): the bootstrap admin
token, an issued token (looked up in PostgreSQL on every request, so a rotation or revocation
takes effect at once in every API process), or, without any token while no admin token is
configured, the open API acting as admin. The route then applies its rule: a customer asking
for another customer's contract or ticket gets the 404 an unknown id gets, whatever the verb
(its existence is not revealed); a role the rule does not name gets 403.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from domain.actors import BOOTSTRAP_CALLER, OPEN_CALLER, ROLES, Caller, Role

# Which object a customer must own for a route: the contract or the ticket in the path, the
# contract named by the body (opening a ticket), or none (the route names no customer's object).
Owns = Literal["contract", "ticket", "body", "none"]
ANYONE: frozenset[Role] = frozenset(ROLES)
STAFF: frozenset[Role] = frozenset({"admin", "agent", "auditor"})
WRITERS: frozenset[Role] = frozenset({"admin", "agent"})
ADMIN: frozenset[Role] = frozenset({"admin"})
CUSTOMERS_TOO: frozenset[Role] = WRITERS | {"customer"}


@dataclass(frozen=True)
class Rule:
    """Who may call a route: these roles; a customer only on objects it owns (`owns`).
    `public`: also a caller without a token (only /health: it then says no more than ok or
    unavailable per part)."""

    roles: frozenset[Role]
    owns: Owns = "none"
    public: bool = False


CONTRACT_COMMAND = Rule(WRITERS, "contract")
TICKET_COMMAND = Rule(WRITERS, "ticket")
CONTRACT_READ = Rule(ANYONE, "contract")
TICKET_READ = Rule(ANYONE, "ticket")

RULES: dict[tuple[str, str], Rule] = {
    # commands on contracts: the provider's staff
    ("POST", "/contracts"): Rule(WRITERS),
    ("POST", "/contracts/{contract_id}/credits"): CONTRACT_COMMAND,
    ("POST", "/contracts/{contract_id}/renew"): CONTRACT_COMMAND,
    ("POST", "/contracts/{contract_id}/cancel"): CONTRACT_COMMAND,
    ("POST", "/contracts/{contract_id}/maintenance"): CONTRACT_COMMAND,
    ("POST", "/contracts/{contract_id}/erase"): Rule(ADMIN, "contract"),
    # commands on tickets: a customer opens tickets on its contracts, cancels and reopens its tickets
    ("POST", "/tickets"): Rule(CUSTOMERS_TOO, "body"),
    ("POST", "/tickets/{ticket_id}/cancel"): Rule(CUSTOMERS_TOO, "ticket"),
    ("POST", "/tickets/{ticket_id}/reopen"): Rule(CUSTOMERS_TOO, "ticket"),
    ("POST", "/tickets/{ticket_id}/classify"): TICKET_COMMAND,
    ("POST", "/tickets/{ticket_id}/time"): TICKET_COMMAND,
    ("POST", "/tickets/{ticket_id}/respond"): TICKET_COMMAND,
    ("POST", "/tickets/{ticket_id}/pause"): TICKET_COMMAND,
    ("POST", "/tickets/{ticket_id}/resume"): TICKET_COMMAND,
    ("POST", "/tickets/{ticket_id}/restore"): TICKET_COMMAND,
    ("POST", "/tickets/{ticket_id}/resolve"): TICKET_COMMAND,
    # reads: everyone, a customer on its own contracts and tickets
    ("GET", "/contracts/{contract_id}"): CONTRACT_READ,
    ("GET", "/contracts/{contract_id}/history"): CONTRACT_READ,
    ("GET", "/contracts/{contract_id}/proof"): Rule(STAFF, "contract"),
    ("GET", "/contracts/{contract_id}/export"): Rule(STAFF, "contract"),
    ("GET", "/contracts/{contract_id}/tickets"): CONTRACT_READ,
    ("GET", "/contracts/{contract_id}/sla"): CONTRACT_READ,
    ("GET", "/contracts/{contract_id}/ledger"): CONTRACT_READ,
    ("GET", "/contracts/{contract_id}/availability"): CONTRACT_READ,
    ("GET", "/tickets/{ticket_id}"): TICKET_READ,
    ("GET", "/tickets/{ticket_id}/sla"): TICKET_READ,
    ("GET", "/tickets/{ticket_id}/statement"): TICKET_READ,
    ("GET", "/plans"): Rule(ANYONE),
    ("GET", "/plans/{plan_id:path}"): Rule(ANYONE),
    # tokens: the admin; an auditor reads one token's events
    ("POST", "/tokens"): Rule(ADMIN),
    ("GET", "/tokens"): Rule(ADMIN),
    ("GET", "/tokens/{token_id}"): Rule(frozenset({"admin", "auditor"})),
    ("POST", "/tokens/{token_id}/rotate"): Rule(ADMIN),
    ("DELETE", "/tokens/{token_id}"): Rule(ADMIN),
    # operations: the provider's staff
    ("GET", "/metrics"): Rule(STAFF),
    # the backend's health: anyone, a caller without a token sees only ok or unavailable per part
    ("GET", "/health"): Rule(ANYONE, public=True),
}


class Unknown(Exception):
    """A route the access table does not name: it would be callable by nobody knows whom."""


def rule_of(method: str, path: str) -> Rule:
    try:
        return RULES[(method, path)]
    except KeyError:
        raise Unknown(f"{method} {path} is not in infra/http/access.py RULES: declare who may call it") from None


class Refused(Exception):
    """The caller may not do this: 401 (no valid token), 403 (its role may not), or 404
    (another customer's object: as unknown to it as an unknown id)."""

    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail


def bearer(authorization: bytes | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header (None without one; "" when malformed)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def settle(presented: str | None, admin_token: str | None, lookup: Any) -> Caller | None:
    """The caller behind a request's token; None without a token when the API is guarded.
    A presented token is always checked, the bootstrap one in constant time."""
    if presented is None:
        return None if admin_token else OPEN_CALLER
    if admin_token and hmac.compare_digest(presented.encode(), admin_token.encode()):
        return BOOTSTRAP_CALLER
    found: Caller | None = lookup(presented) if presented else None
    if found is None:
        raise Refused(401, "the bearer token is unknown, revoked or expired")
    return found


def authorize(rule: Rule, caller: Caller | None, method: str, path: str,
              owner: Any) -> None:
    """Apply a route's rule to its caller. `owner()` answers the contract of the object a
    customer asks for (None when there is no such object) and the object's name for the 404."""
    if caller is None:
        if rule.public:
            return
        raise Refused(401, "this API needs a bearer token (Authorization: Bearer ...)")
    if caller.role == "customer" and rule.owns != "none":
        contract, label = owner()
        # An unknown object and another customer's answer alike; a body naming no contract that
        # parses is the route's to refuse (422), as for anyone.
        if (contract is None and rule.owns != "body") or (contract is not None and not caller.sees(contract)):
            raise Refused(404, f"no {label}")
    if caller.role not in rule.roles:
        raise Refused(403, f"the role {caller.role} may not call {method} {path}",
                      {"role": caller.role, "allowed": sorted(rule.roles)})


def body_contract(raw: bytes) -> str | None:
    """The `contract_id` a command's JSON body names, canonical, if it names one that parses."""
    try:
        value = json.loads(raw).get("contract_id")
        return str(UUID(str(value))) if value is not None else None
    except (ValueError, AttributeError, TypeError):
        return None
