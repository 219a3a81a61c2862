"""The automatic renewal of hour banks, by the backend itself when a period ends.

A projection must not record events, so this small pass does. It asks the ledger read model
which hour-bank contracts are due (`renews_at`, set only while a bank contract is active, at
or before now), then loads each contract (the aggregate is the authority, the read model may
lag) and records one `Contract.Renewed` per anniversary that has passed: at the anniversary's
local midnight in the contract's zone, or at the contract's last event when that is later
(an imported contract), the new period still starting on the anniversary. It is idempotent:
a renewed contract is not due any more, `Contract.renew` refuses a period that is not later
than the current one, and a cancelled contract refuses renewal. `ticketing renewals` runs it
about once a minute under the supervisor, in one process at a time (the `renewals` lease);
`--once` runs one pass. Its renewals name the system as their actor: no caller asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from datetime import date, datetime

import psycopg
import structlog

from domain.actors import SYSTEM
from domain.application import Recorded
from domain.commands import RenewContract
from domain.contract import ACTIVE
from domain.errors import DomainError
from domain.periods import local_midnight, next_period_start
from infra.postgres import leases
from infra.postgres.store import ApplicationHost

log = structlog.get_logger("renewals")
REASON = "automatic renewal at the end of the period"
ROLE = "renewals"


def due_contracts(conn: psycopg.Connection, now: datetime, only: Collection[str] | None = None) -> list[str]:
    """Active hour-bank contracts whose period ended at or before `now`, per the ledger."""
    rows = conn.execute(
        "SELECT contract_id FROM proj_ledger.contracts WHERE renews_at <= %s"
        " AND (%s::text[] IS NULL OR contract_id = ANY(%s)) ORDER BY renews_at LIMIT 1000",
        (now, None if only is None else list(only), None if only is None else list(only)),
    ).fetchall()
    return [r[0] for r in rows]


def renew_if_due(store: ApplicationHost, contract_id: str, now: datetime) -> list[Recorded]:
    """Record every renewal the contract is due by `now`, oldest first (as any other writer's
    commands: serialised per contract, and decided again if another writer recorded first)."""
    recorded: list[Recorded] = []
    while True:
        try:
            rec = store.run(lambda: _renew_next(store, contract_id, now), contract_id)
        except DomainError as error:  # cancelled or renewed concurrently: nothing more to do
            log.info("renewal refused", contract_id=contract_id, reason=error.message)
            return recorded
        if rec is None:
            return recorded
        recorded.append(rec)


def _renew_next(store: ApplicationHost, contract_id: str, now: datetime) -> Recorded | None:
    """Record the contract's next renewal if it is due by `now` (None when none is)."""
    app = store.app
    contract = app.contract(contract_id)
    bank = contract.terms.get("bank")
    if contract.status != ACTIVE or not bank:
        return None
    starts_on = date.fromisoformat(contract.starts_on)
    current = date.fromisoformat(contract.period_starts_on)
    anniversary = next_period_start(starts_on, current, int(bank["period_months"]))
    at = local_midnight(anniversary, contract.time_zone)
    if at > now:
        return None
    rec = app.handle(RenewContract(contract.id, REASON, max(at, contract.last_at), anniversary, actor=SYSTEM))
    log.info("renewed", contract_id=contract_id, period_starts_on=anniversary.isoformat(), position=rec.position)
    return rec


def run_pass(store: ApplicationHost, conn: psycopg.Connection, now: datetime,
             only: Collection[str] | None = None) -> list[Recorded]:
    """One pass over the due contracts (or those of `only` that are due)."""
    recorded: list[Recorded] = []
    for contract_id in due_contracts(conn, now, only):
        recorded.extend(renew_if_due(store, contract_id, now))
    conn.commit()
    return recorded


def run(store: ApplicationHost, db_url: str, stop: Callable[[], bool], interval: float = 60.0,
        once: bool = False) -> None:
    """Run a pass every `interval` seconds until stopped (the clock is the application's),
    holding the `renewals` role: a second process waits as a standby. A failed pass is
    retried next time; a lost connection is made again and the role taken again."""
    lease: psycopg.Connection | None = None
    while not stop():
        lease = _hold(db_url, lease, stop)
        if lease is None:
            return
        try:
            with psycopg.connect(db_url) as conn:
                done = run_pass(store, conn, store.app.clock.now())
            log.info("renewal pass", renewed=len(done))
        except Exception as exc:  # noqa: BLE001 - the process's top-level loop keeps going
            log.error("renewal pass failed", error=repr(exc))
        deadline = time.monotonic() + interval
        while not once and not stop() and time.monotonic() < deadline:
            time.sleep(0.2)
        if once:
            return


def _hold(db_url: str, lease: psycopg.Connection | None, stop: Callable[[], bool]) -> psycopg.Connection | None:
    """The connection holding the role, made again (and the role taken again) if it broke."""
    if lease is not None:
        try:
            lease.execute("SELECT 1")
            return lease
        except psycopg.Error:
            log.warning("lost the connection holding the renewals role")
            lease.close()
    while not stop():
        try:
            conn = leases.connect(db_url, autocommit=True)
        except psycopg.Error:
            time.sleep(1.0)
            continue
        try:
            if leases.acquire(conn, ROLE, stop):
                return conn
        except psycopg.Error:
            time.sleep(1.0)
        conn.close()
    return None
