"""Which fields hold personal data: what the store seals under the contract's key and what an
erasure makes unreadable (crypto-shredding, docs/audit.md).

This is domain knowledge, so it is written here once: the host seals these fields before it
stores an event (infra/postgres/keys.py), and every reader that shows them opens them with the
contract's key, or shows nothing once the key is destroyed. No rule of the domain reads them:
every figure (SLA, ledger, availability) comes out the same whether they are readable or not.
Identifiers (contract, ticket and token ids) stay in clear, so the store's indexes keep working.
"""

from __future__ import annotations

# The personal fields of each event type, as its envelope names them.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "Contract.Signed": ("customer",),
    "Contract.Renewed": ("reason",),
    "Contract.Cancelled": ("reason",),
    "Contract.MaintenanceScheduled": ("reason",),
    "Ticket.Opened": ("title", "reporter"),
    "Ticket.TimeConsumed": ("engineer",),
    "Ticket.Paused": ("reason",),
    "Ticket.Resolved": ("reason",),
    "Ticket.Reopened": ("reason",),
    "Ticket.Cancelled": ("reason",),
}

# The aggregates' attributes that hold a personal field (what `state()` shows under that name).
AGGREGATE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "Contract": ("customer",),
    "Ticket": ("title", "reporter"),
}

ERASED = "Contract.Erased"


def fields_of(event_type: str) -> tuple[str, ...]:
    return EVENT_FIELDS.get(event_type, ())


# The personal fields every event of their type holds (the published schemas require a string):
# once erased, they read as "" wherever a string is required (the topics, the avro export).
REQUIRED = frozenset({"customer", "title", "reporter"})
