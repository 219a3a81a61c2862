"""The automatic renewal of hour banks, by the backend itself when a period ends.

A projection must not record events, so this small pass does. It asks the ledger read model
which hour-bank contracts are due (`renews_at`, set only while a bank contract is active, at
or before now), then loads each contract (the aggregate is the authority, the read model may
lag) and records one `Contract.Renewed` per anniversary that has passed: at the anniversary's
local midnight in the contract's zone, or at the contract's last event when that is later
(an imported contract), the new period still starting on the anniversary. It is idempotent:
a renewed contract is not due any more, `Contract.renew` refuses a period that is not later
than the current one, and a cancelled contract refuses renewal. `ticketing renewals` runs it
about once a minute under the supervisor; `--once` runs one pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from datetime import date, datetime

import psycopg
import structlog

from domain.application import Recorded, TicketingApplication
from domain.contract import ACTIVE
from domain.errors import DomainError
from projections.ledger import local_midnight, next_period_start

log = structlog.get_logger("renewals")
REASON = "automatic renewal at the end of the period"


def due_contracts(conn: psycopg.Connection, now: datetime, only: Collection[str] | None = None) -> list[str]:
    """Active hour-bank contracts whose period ended at or before `now`, per the ledger."""
    rows = conn.execute(
        "SELECT contract_id FROM proj_ledger.contracts WHERE renews_at <= %s"
        " AND (%s::text[] IS NULL OR contract_id = ANY(%s)) ORDER BY renews_at LIMIT 1000",
        (now, None if only is None else list(only), None if only is None else list(only)),
    ).fetchall()
    return [r[0] for r in rows]


def renew_if_due(app: TicketingApplication, contract_id: str, now: datetime) -> list[Recorded]:
    """Record every renewal the contract is due by `now`, oldest first."""
    recorded: list[Recorded] = []
    while True:
        contract = app.contract(contract_id)
        bank = contract.terms.get("bank")
        if contract.status != ACTIVE or not bank:
            return recorded
        starts_on = date.fromisoformat(contract.starts_on)
        current = date.fromisoformat(contract.period_starts_on)
        anniversary = next_period_start(starts_on, current, int(bank["period_months"]))
        at = local_midnight(anniversary, contract.time_zone)
        if at > now:
            return recorded
        try:
            rec = app.renew_contract(contract_id, REASON, max(at, contract.last_at), anniversary)
        except DomainError as error:  # cancelled or renewed concurrently: nothing more to do
            log.info("renewal refused", contract_id=contract_id, reason=error.message)
            return recorded
        log.info("renewed", contract_id=contract_id, period_starts_on=anniversary.isoformat(),
                 position=rec.position)
        recorded.append(rec)


def run_pass(app: TicketingApplication, conn: psycopg.Connection, now: datetime,
             only: Collection[str] | None = None) -> list[Recorded]:
    """One pass over the due contracts (or those of `only` that are due)."""
    recorded: list[Recorded] = []
    for contract_id in due_contracts(conn, now, only):
        recorded.extend(renew_if_due(app, contract_id, now))
    conn.commit()
    return recorded


def run(app: TicketingApplication, db_url: str, stop: Callable[[], bool], interval: float = 60.0,
        once: bool = False) -> None:
    """Run a pass every `interval` seconds until stopped (the clock is the application's); a
    failed pass is retried next time."""
    while True:
        try:
            with psycopg.connect(db_url) as conn:
                done = run_pass(app, conn, app.clock.now())
            log.info("renewal pass", renewed=len(done))
        except Exception as exc:  # noqa: BLE001 - the process's top-level loop keeps going
            log.error("renewal pass failed", error=repr(exc))
        deadline = time.monotonic() + interval
        while not once and not stop() and time.monotonic() < deadline:
            time.sleep(0.2)
        if once or stop():
            return
