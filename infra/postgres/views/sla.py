"""The SLA read model's PostgreSQL view (its breach notice is encoded by infra/kafka/notices.py,
its routes are infra/http/routes/sla.py). The view decides nothing: at `flush` it reads the
batch's tickets in one query, runs the projection's folds on them, and writes the rows they
gave in a few set-based statements (one upsert of the tickets, with the deadlines each row
derives when asked, so a ticket touched by many events of a batch is evaluated once). A
derivation that fails (a clock beyond the calendar's range) fails at flush; the runner then
retries the batch event by event and parks that one. For the tick it answers one indexed
question, the clocks whose alarm is before an instant and not noticed for it, and the
projection judges them.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

import psycopg

from domain.periods import utc, utc_or_none
from domain.sla.clock import SlaRules
from domain.sla.facts import from_json, to_json
from domain.values import CLOCKS
from infra.kafka.notices import SLA_TOPIC, encode_breach
from infra.postgres.outbox import enqueue
from infra.postgres.views.rows import Rows
from projections.envelope import Fold
from projections.sla import Breach, Deadline, Due, Signed, Tracked

NAME = "sla"
SCHEMA = f"proj_{NAME}"
SQL_FILES = ("sla_contracts", "sla_tickets")
_COLUMNS = ("ticket_id", "contract_id", "opened_at", "position", "facts", "priority", "category", "grp",
            *(f"{c}_{k}" for c in CLOCKS for k in ("due_at", "stopped_at", "on", "target", "target_minutes", "alarm_at")))
_CASTS = ("text[]", "text[]", "timestamptz[]", "bigint[]", "text[]::jsonb[]", "text[]", "text[]", "text[]",
          *(["timestamptz[]", "timestamptz[]", "bool[]", "text[]", "float8[]", "timestamptz[]"] * 2))
_DEADLINE = ("due_at", "stopped_at", "on", "target", "target_minutes")


class PgSlaView:
    """The SLA read model in {schema}.sla_*: the batch's tickets folded and written at flush,
    contracts read on first use; without `guard` it answers that it is always caught up."""

    def __init__(self, conn: psycopg.Connection, schema: str, guard: bool = True) -> None:
        self.conn, self.schema, self.guard = conn, schema, guard
        self.contracts: Rows[str, Signed] = Rows(self._contracts)
        self.tickets: Rows[str, Tracked] = Rows(self._tickets)

    def _sql(self, text: str) -> Any:
        return text.replace("{s}", self.schema)

    # -- the rows the projection gets and puts ----------------------------------------------

    def prefetch(self, contracts: Collection[str]) -> None:
        self.contracts.prefetch(contracts)

    def contract(self, contract_id: str) -> Signed | None:
        return self.contracts.get(contract_id)

    def signed(self, contract: Signed) -> None:
        self.contracts.put(contract.contract_id, contract)

    def change(self, ticket_id: str, fold: Fold, *args: Any) -> bool:
        return self.tickets.change(ticket_id, fold, args)

    def _contracts(self, ids: list[str]) -> dict[str, Signed]:
        rows = self.conn.execute(self._sql(
            "SELECT contract_id, plan_id, terms, time_zone, holidays, position FROM {s}.sla_contracts"
            " WHERE contract_id = ANY(%s)"), (ids,)).fetchall()
        return {c: Signed(c, plan, terms, zone, tuple(holidays), SlaRules.from_signed(terms, zone, holidays), p)
                for c, plan, terms, zone, holidays, p in rows}

    def _tickets(self, ids: list[str]) -> dict[str, Tracked]:
        rows = self.conn.execute(self._sql(
            "SELECT ticket_id, contract_id, facts, position FROM {s}.sla_tickets"
            " WHERE ticket_id = ANY(%s)"), (ids,), binary=True).fetchall()
        return {t: Tracked(c, from_json(f), p) for t, c, f, p in rows}  # read only to fold into

    # -- the writes -------------------------------------------------------------------------

    def flush(self) -> int:
        """Write the batch; how many of its changes were declined (events already applied)."""
        # The folds read their tickets' contracts: read those in one query too.
        loaded = self.tickets.prefetch_pending()
        self.contracts.prefetch(t.contract_id for t in loaded if t is not None)
        declined = self.tickets.settle()
        signed = self.contracts.take_changed()
        if signed:
            with self.conn.cursor() as cur:
                cur.executemany(self._sql(
                    "INSERT INTO {s}.sla_contracts VALUES (%s, %s, %s::jsonb, %s, %s, %s)"
                    " ON CONFLICT (contract_id) DO UPDATE SET (plan_id, terms, time_zone, holidays, position)"
                    " = (EXCLUDED.plan_id, EXCLUDED.terms, EXCLUDED.time_zone, EXCLUDED.holidays, EXCLUDED.position)"),
                    [(c.contract_id, c.plan_id, json.dumps(c.terms), c.time_zone, list(c.holidays), c.position)
                     for c in signed.values()])
        tickets = self.tickets.take_changed()
        if tickets:
            rows = [_row(i, t) for i, t in tickets.items()]
            self.conn.execute(self._sql(
                f"INSERT INTO {{s}}.sla_tickets ({', '.join(_COLUMNS)}) SELECT * FROM unnest("
                + ", ".join(f"%b::{t}" for t in _CASTS)
                + ") ON CONFLICT (ticket_id) DO UPDATE SET "
                + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[3:])),
                [[row[i] for row in rows] for i in range(len(_COLUMNS))])
        return declined

    # -- the tick's reads and writes, immediate ---------------------------------------------

    def caught_up(self) -> bool:
        """Whether the watermark reached the relay's position (always, without `guard`)."""
        if not self.guard:
            return True
        if self.conn.execute("SELECT to_regclass('relay.position')").fetchone() == (None,):
            return True
        row = self.conn.execute(self._sql(
            "SELECT (SELECT coalesce(max(position), 0) FROM relay.position)"
            " <= (SELECT coalesce(max(position), 0) FROM {s}.watermark)")).fetchone()
        return bool(row and row[0])

    def due(self, now: datetime, limit: int = 1000) -> list[Due]:
        """The clocks whose alarm is before `now` and not noticed for it, from the partial
        index on each clock's alarm: at most `limit` per clock, earliest first."""
        found = []
        for clock in CLOCKS:
            rows = self.conn.execute(self._sql(
                f"SELECT ticket_id, contract_id, opened_at, priority, category,"
                f" {', '.join(f'{clock}_{k}' for k in _DEADLINE)}, {clock}_noticed FROM {{s}}.sla_tickets"
                f" WHERE {clock}_alarm_at < %s AND {clock}_noticed IS DISTINCT FROM {clock}_alarm_at"
                f" ORDER BY {clock}_alarm_at, ticket_id LIMIT %s"), (now, limit)).fetchall()
            found += [Due(t, c, utc(o), p, cat, clock, Deadline(utc_or_none(due), utc_or_none(stop), on, tg, tm), utc_or_none(n))
                      for t, c, o, p, cat, due, stop, on, tg, tm, n in rows]
        return found

    def breached(self, breach: Breach) -> None:
        value, headers = encode_breach(breach)
        self.conn.execute(self._sql(
            f"UPDATE {{s}}.sla_tickets SET {breach.clock}_noticed = %s WHERE ticket_id = %s"),
            (breach.due_at, breach.ticket_id))
        enqueue(self.conn, self.schema, breach.notice_id, SLA_TOPIC, breach.contract_id, value, headers)


def _row(ticket_id: str, ticket: Tracked) -> tuple[Any, ...]:
    facts, d = ticket.facts, ticket.derived
    head = (ticket_id, ticket.contract_id, facts.opened_at, ticket.position, json.dumps(to_json(facts)))
    if d is None:  # the contract is unknown: facts kept, no deadline
        return (*head, facts.priority, facts.category, None, *([None, None, False, None, None, None] * 2))
    clocks = [x for c in (d.response, d.resolution) for x in (*c, c.alarm_at)]
    return (*head, d.priority, d.category, d.group, *clocks)
