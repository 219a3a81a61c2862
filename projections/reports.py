"""The answers of a contract's three reports (the monthly SLA report, the ledger of a period,
the monthly availability), shaped from a read model's rows: the same functions serve the rows a
PostgreSQL view reads (the HTTP routes) and the rows of the in-memory views that
projections/replay.py fills from a contract's events, so the two answers can only differ by
their rows. Every answer names the rules version it was computed with (`rules_version`,
domain/rules.py). Figures that depend on the instant they are asked at (statuses, open
outages, the current period) take it as `now`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from domain.errors import NotFound
from domain.periods import allowance_period, allowance_start, month_bounds
from domain.rules import RULES_VERSION
from domain.sla.clock import SlaRules, evaluate
from domain.sla.facts import TicketFacts
from domain.sla.report import compliance
from projections.availability_rows import ContractOutages
from projections.ledger_rows import Book, Entry, Period

# A ledger entry as the answer lists it (the PostgreSQL route reads these columns).
ENTRY_FIELDS = ("ticket_id", "kind", "minutes", "charge", "overage", "at", "engineer", "position")


def sla_answer(contract_id: str, plan_id: str, time_zone: str, rules: SlaRules, month: str,
               facts: Iterable[TicketFacts], now: datetime) -> dict[str, Any]:
    """The monthly SLA report over the facts of the tickets opened in `month`, as of `now`."""
    results = [evaluate(rules, f, now) for f in facts]
    head = {"contract_id": contract_id, "plan_id": plan_id, "month": month, "time_zone": time_zone,
            "as_of": now.isoformat(), "rules_version": RULES_VERSION}
    return head | compliance(rules, results)


def ledger_period(book: Book, periods: Mapping[str, Period], now: datetime,
                  asked: str | None = None) -> tuple[Period, list[str]]:
    """The period a ledger answer shows (the asked one, default the current) and every
    period's label, in order. An allowance's periods are calendar ones: the current one, and
    an asked one without activity, exist with their full grant; a bank's period must be known
    (NotFound, naming the known ones)."""
    known = dict(periods)
    if book.scheme == "allowance":
        kind = book.allowance_period or "quarter"
        start, _, current = allowance_period(now, book.time_zone, kind)
        known.setdefault(current, Period(book.contract_id, current, start, book.grant))
        label = asked or current
        starts_at = allowance_start(label, kind, book.time_zone)
    else:
        label, starts_at = asked or book.periods[-1], None
    labels = [p.label for p in sorted(known.values(), key=lambda p: p.starts_at)]
    if label not in known:
        if starts_at is None:
            raise NotFound(f"no period {label!r} in the ledger of {book.contract_id}", {"periods": labels})
        known[label] = Period(book.contract_id, label, starts_at, book.grant)  # an allowance period without activity
    return known[label], labels


def entry_json(entry: Entry) -> dict[str, Any]:
    """A ledger entry's row, as the PostgreSQL view's entries table holds it."""
    return {name: getattr(entry, name) for name in ENTRY_FIELDS}


def ledger_answer(book: Book, period: Period, labels: list[str], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON of one contract's ledger in one period (docs/design.md, with its period fields)."""
    balance = period.balance
    start, end = book.bounds(period.label, period.starts_at)
    return {
        "contract_id": book.contract_id, "plan": book.plan, "scheme": book.scheme, "unit": book.unit,
        "status": book.status, "period": period.label, "periods": labels,
        "starts_at": start.isoformat(), "ends_at": end and end.isoformat(),
        "renews_at": book.renews_at and book.renews_at.isoformat(),
        "granted": period.granted, "used": period.used, "balance": balance, "minutes": period.minutes,
        "overage": max(0, -balance) if balance is not None else 0,
        "low_balance_threshold": book.threshold,
        "low_balance": balance is not None and book.threshold is not None and balance <= book.threshold,
        "exhausted": balance is not None and balance <= 0,
        "entries": [{**e, "at": e["at"].isoformat()} for e in entries],
        "rules_version": RULES_VERSION,
    }


def availability_answer(contract: ContractOutages, month: str, now: datetime) -> dict[str, Any]:
    """The availability of one month as of `now` (docs/design.md), plus maintenance and the
    error budget; `contract` holds at least the outages and windows that overlap the month."""
    f = contract.month(month, now)
    start, end = month_bounds(month, contract.time_zone)
    left = f.budget_left_minutes
    return {
        "contract_id": contract.contract_id, "month": month, "time_zone": contract.time_zone,
        "minutes_in_month": f.minutes_in_month, "downtime_minutes": round(f.downtime_minutes, 4),
        "availability_pct": f.availability_pct, "target_pct": f.target_pct, "met": f.met,
        "maintenance_minutes": round(f.maintenance_minutes, 4),
        "allowed_downtime_minutes": f.allowed_downtime_minutes, "budget_left_minutes": left,
        "budget_exhausted": None if left is None else f.downtime_minutes > 0 and left <= 0,
        "as_of": now.isoformat(),
        "outages": [
            {"ticket_id": o.ticket_id, "starts_at": o.start.isoformat(),
             "ends_at": o.end and o.end.isoformat(), "open": o.end is None}
            for o in contract.outages if o.start < end and (o.end is None or o.end > start)
        ],
        "maintenance": [
            {"starts_at": s.isoformat(), "ends_at": e.isoformat()}
            for s, e in contract.maintenance if s < end and e > start
        ],
        "rules_version": RULES_VERSION,
    }
