"""The SLA read model: its PostgreSQL view, the Avro encoder of its breach notice, and the routes
GET /tickets/{id}/sla (?explain=true) and GET /contracts/{id}/sla?month=YYYY-MM. At `flush` the
view reads the batch's tickets in one query, runs the projection's folds on them, and writes
what changed in a few set-based statements (one upsert of the re-derived tickets), so a ticket
touched by many events of a batch is evaluated once. A derivation that fails (a clock beyond
the calendar's range) fails at flush; the runner then retries the batch event by event and
parks that one. Statuses are computed when read, from the stored
facts and the real now, so a clock shows `breached` the instant it passes its due.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import psycopg
from fastapi import APIRouter

from consumers.outbox import enqueue
from domain.errors import NotFound
from domain.sla.clock import ClockResult, SlaRules, evaluate
from domain.sla.explain import explain, minutes
from domain.sla.facts import TicketFacts, from_json, to_json
from domain.sla.report import compliance
from infra.avro import NoticeCodec
from infra.http.readmodels import month_window, waited
from infra.readmodels import ProjectionSpec
from infra.readmodels.rows import Rows
from projections.envelope import Fold
from projections.sla import CLOCKS, Breach, Derived, Signed, SlaProjection, Tracked, derive

NAME = "sla"
SCHEMA = f"proj_{NAME}"
NOTICE_TOPIC = "ticketing.notices.sla.v1"
NOTICE_TYPE = "Sla.Breached"
SQL_FILES = ("sla_contracts", "sla_tickets")
_COLUMNS = ("ticket_id", "contract_id", "opened_at", "position", "facts", "priority", "category", "grp",
            *(f"{c}_{k}" for c in CLOCKS for k in ("due_at", "stopped_at", "on", "target", "target_minutes")))
_CASTS = ("text[]", "text[]", "timestamptz[]", "bigint[]", "text[]::jsonb[]", "text[]", "text[]", "text[]",
          *(["timestamptz[]", "timestamptz[]", "bool[]", "text[]", "float8[]"] * 2))


BREACHED = NoticeCodec("ticketing.v1.SlaBreached", NOTICE_TYPE)


def encode_notice(breach: Breach) -> tuple[bytes, dict[str, str]]:
    """The notice's Avro value (no framing byte) and headers naming its type and schema."""
    return BREACHED.encode({"notice_id": breach.notice_id, **vars(breach)})


def decode_notice(value: bytes) -> dict[str, Any]:
    """The notice record of a message value (for consumers and tests)."""
    return BREACHED.decode(value)


def _utc(value: datetime | None) -> Any:
    return None if value is None else value.astimezone(UTC)


class PgSlaView:
    """The SLA read model in {schema}.sla_*: the batch's tickets folded, re-derived and written
    at flush, contracts read on first use; `guard` holds breach notices back while the
    projection lags behind the relay (a backlog may hold the event that stops a clock)."""

    def __init__(self, conn: psycopg.Connection, schema: str, guard: bool = True) -> None:
        self.conn, self.schema, self.guard = conn, schema, guard
        self.contracts: Rows[str, Signed] = Rows(self._contracts)
        self.tickets: Rows[str, Tracked] = Rows(self._tickets)

    def _sql(self, text: str) -> Any:
        return text.replace("{s}", self.schema)

    # -- the rows the projection gets and puts ----------------------------------------------

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
        return {t: Tracked(c, from_json(f), p) for t, c, f, p in rows}

    # -- the writes -------------------------------------------------------------------------

    def flush(self) -> int:
        """Write the batch; how many of its changes were declined (events already applied)."""
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
            self.contracts.prefetch(t.contract_id for t in tickets.values())
            rows = [_row(i, t, _derived(self.contracts.get(t.contract_id), t.facts)) for i, t in tickets.items()]
            self.conn.execute(self._sql(
                f"INSERT INTO {{s}}.sla_tickets ({', '.join(_COLUMNS)}) SELECT * FROM unnest("
                + ", ".join(f"%b::{t}" for t in _CASTS)
                + ") ON CONFLICT (ticket_id) DO UPDATE SET "
                + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[3:])),
                [[row[i] for row in rows] for i in range(len(_COLUMNS))])
        return declined

    # -- the tick's reads and writes, immediate ---------------------------------------------

    def _caught_up(self) -> bool:
        if not self.guard:
            return True
        if self.conn.execute("SELECT to_regclass('relay.position')").fetchone() == (None,):
            return True
        row = self.conn.execute(self._sql(
            "SELECT (SELECT coalesce(max(position), 0) FROM relay.position)"
            " <= (SELECT coalesce(max(position), 0) FROM {s}.watermark)")).fetchone()
        return bool(row and row[0])

    def overdue(self, now: datetime) -> list[Breach]:
        if not self._caught_up():
            return []
        found = []
        for clock in CLOCKS:
            rows = self.conn.execute(self._sql(
                f"SELECT t.ticket_id, t.contract_id, c.plan_id, t.priority, t.category,"
                f" t.{clock}_target, t.{clock}_target_minutes, t.opened_at, t.{clock}_due_at"
                f" FROM {{s}}.sla_tickets t JOIN {{s}}.sla_contracts c USING (contract_id)"
                f" WHERE t.{clock}_on AND t.{clock}_due_at < %s"
                f" AND t.{clock}_noticed IS DISTINCT FROM t.{clock}_due_at"
                f" ORDER BY t.{clock}_due_at, t.ticket_id LIMIT 1000"), (now,)).fetchall()
            found += [Breach(t, c, p, clock, pr, cat, tg, tm, _utc(o), _utc(d), now)
                      for t, c, p, pr, cat, tg, tm, o, d in rows]
        return found

    def breached(self, breach: Breach) -> None:
        value, headers = encode_notice(breach)
        self.conn.execute(self._sql(
            f"UPDATE {{s}}.sla_tickets SET {breach.clock}_noticed = %s WHERE ticket_id = %s"),
            (breach.due_at, breach.ticket_id))
        enqueue(self.conn, self.schema, breach.notice_id, NOTICE_TOPIC, breach.contract_id, value, headers)


def _derived(contract: Signed | None, facts: TicketFacts) -> Derived | None:
    return None if contract is None else derive(contract.rules, facts)


def _row(ticket_id: str, ticket: Tracked, d: Derived | None) -> tuple[Any, ...]:
    facts = ticket.facts
    head = (ticket_id, ticket.contract_id, facts.opened_at, ticket.position, json.dumps(to_json(facts)))
    if d is None:  # the contract is unknown: facts kept, no deadline
        return (*head, facts.priority, facts.category, None, *([None, None, False, None, None] * 2))
    clocks = [x for c in (d.response, d.resolution) for x in c]
    return (*head, d.priority, d.category, d.group, *clocks)


# -- the routes ------------------------------------------------------------------------------


def _clock_json(c: ClockResult) -> dict[str, Any]:
    return {
        "due_at": c.due_at and c.due_at.isoformat(), "stopped_at": c.stopped_at and c.stopped_at.isoformat(),
        "status": c.status, "stopped_by": c.stopped_by, "priority": c.priority,
        "target": None if c.target is None else str(c.target), "target_minutes": minutes(c.target_time),
        "elapsed_minutes": minutes(c.elapsed), "calendar": c.calendar_name,
    }


def ticket_answer(row: dict[str, Any], now: datetime, with_explain: bool = False) -> dict[str, Any]:
    """GET /tickets/{id}/sla from a stored ticket row joined with its contract's terms."""
    rules = SlaRules.from_signed(row["terms"], row["time_zone"], row["holidays"])
    facts = from_json(row["facts"])
    result = evaluate(rules, facts, now)
    body = {
        "ticket_id": row["ticket_id"], "contract_id": row["contract_id"], "plan_id": row["plan_id"],
        "priority": result.priority, "category": result.category, "as_of": result.as_of.isoformat(),
        "response": _clock_json(result.response), "resolution": _clock_json(result.resolution),
    }
    return body | {"explain": explain(rules, facts, now)} if with_explain else body


Waited = Annotated[None, waited(NAME)]


def routes(backend: Any) -> APIRouter:
    r = APIRouter(tags=["sla"])
    joined = (f"SELECT t.ticket_id, t.contract_id, t.facts, c.plan_id, c.terms, c.time_zone, c.holidays"
              f" FROM {SCHEMA}.sla_tickets t JOIN {SCHEMA}.sla_contracts c USING (contract_id)")

    @r.get("/tickets/{ticket_id}/sla")
    def ticket_sla(ticket_id: UUID, _: Waited, explain: bool = False) -> dict[str, Any]:
        ticket_id = str(ticket_id)  # type: ignore[assignment]  # canonical text, as stored
        row = backend.reads.one(f"{joined} WHERE t.ticket_id = %s", (ticket_id,))
        if row is None:
            raise NotFound(f"no ticket {ticket_id}")
        return ticket_answer(row, backend.clock.now(), explain)

    @r.get("/contracts/{contract_id}/sla")
    def contract_sla(contract_id: UUID, _: Waited, month: str | None = None) -> dict[str, Any]:
        contract_id = str(contract_id)  # type: ignore[assignment]  # canonical text, as stored
        c = backend.reads.one(f"SELECT * FROM {SCHEMA}.sla_contracts WHERE contract_id = %s", (contract_id,))
        if c is None:
            raise NotFound(f"no contract {contract_id}")
        now = backend.clock.now()
        month, start, end = month_window(month, c["time_zone"], now)
        rows = backend.reads.all(
            f"SELECT facts FROM {SCHEMA}.sla_tickets WHERE contract_id = %s AND opened_at >= %s"
            " AND opened_at < %s ORDER BY opened_at, ticket_id", (contract_id, start, end))
        rules = SlaRules.from_signed(c["terms"], c["time_zone"], c["holidays"])
        results = [evaluate(rules, from_json(row["facts"]), now) for row in rows]
        head = {"contract_id": contract_id, "plan_id": c["plan_id"], "month": month,
                "time_zone": c["time_zone"], "as_of": now.isoformat()}
        return head | compliance(rules, results)

    return r


SPEC = ProjectionSpec(NAME, SlaProjection, SQL_FILES, PgSlaView, routes, notice_topics=(NOTICE_TOPIC,))
