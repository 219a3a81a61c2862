"""Charge rules for banks, credits and periodic allowances, and a credit balance.

Pure functions only: what a time entry costs on a credit plan (``dolibarr/credits``:
minimums, 15-credit rounding blocks, flat update charges; a kind the plan does not charge
costs nothing), what it debits from an hour bank (exact minutes), how much of a periodic
allowance (``datacrm``: 2 h of guidance per quarter, never carried over) covers it, and what
is left of the credits granted. The application's refusal to open a ticket without credits
and the ledger's balance both use these, so the two never disagree. An entry's charge depends
on its kind and minutes alone, so the credits used follow from how many entries there are of
each (kind, minutes): the credit check counts them that way (`Usage`). Which period an entry
falls in is domain/periods.py's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "DOLIBARR_RULES",
    "ChargeRule",
    "Usage",
    "balance",
    "credit_balance",
    "credit_charge",
    "entry_charge",
    "hour_bank_charge",
    "split_allowance",
]


@dataclass(frozen=True)
class ChargeRule:
    """How one entry kind on a credit plan is charged, in credits (1 credit = 1 minute)."""

    minimum: int
    block: int
    flat: int | None = None

    def __post_init__(self) -> None:
        if self.minimum < 0:
            raise ValueError(f"minimum must be >= 0, got {self.minimum}")
        if self.block <= 0:
            raise ValueError(f"block must be > 0, got {self.block}")
        if self.flat is not None and self.flat < 0:
            raise ValueError(f"flat must be >= 0, got {self.flat}")


# The interpretation of the 2byte page; the plan catalog states the same defaults.
DOLIBARR_RULES: Mapping[str, ChargeRule] = MappingProxyType(
    {
        "query": ChargeRule(minimum=15, block=15),
        "intervention": ChargeRule(minimum=45, block=15),
        "update": ChargeRule(minimum=120, block=15, flat=120),
    }
)

# How many time entries there are of each (kind, minutes).
Usage = Mapping[tuple[str, int], int]


def _require_positive_minutes(minutes: int) -> None:
    if minutes <= 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")


def credit_charge(rule: ChargeRule, minutes: int) -> int:
    """Credits for an entry of ``minutes``: the flat charge, else max(minimum, whole blocks)."""
    _require_positive_minutes(minutes)
    if rule.flat is not None:
        return rule.flat
    blocks = -(-minutes // rule.block)  # ceil without floats
    return max(rule.minimum, blocks * rule.block)


def entry_charge(charges: Mapping[str, ChargeRule], kind: str, minutes: int) -> int:
    """Credits for an entry of ``kind`` on a plan charging ``charges``; a kind it does not
    charge costs nothing."""
    rule = charges.get(kind)
    return credit_charge(rule, minutes) if rule is not None else 0


def balance(granted: int, used: int) -> int:
    """What is left: negative once more was used than granted (the overrun stays visible)."""
    return granted - used


def credit_balance(granted: int, charges: Mapping[str, ChargeRule], usage: Usage) -> int:
    """The credits left of ``granted`` after the time entries counted in ``usage``: each
    charged as the ledger charges it, one entry at a time (`entry_charge`)."""
    return balance(granted, sum(entry_charge(charges, kind, minutes) * count
                                for (kind, minutes), count in usage.items()))


def hour_bank_charge(minutes: int) -> int:
    """Minutes debited from an hour bank: exactly the minutes worked."""
    _require_positive_minutes(minutes)
    return minutes


def split_allowance(used_before: int, minutes: int, allowance: int) -> tuple[int, int]:
    """``(covered, billable)`` for a new entry when ``used_before`` of the allowance is used.

    Only this period's allowance counts: nothing carries over, so callers pass the minutes
    already used inside the same period.
    """
    if used_before < 0 or minutes < 0 or allowance < 0:
        raise ValueError("used_before, minutes and allowance must be >= 0")
    left = max(0, allowance - used_before)
    covered = min(minutes, left)
    return covered, minutes - covered
