"""The availability read model's PostgreSQL view (its notices are encoded by
infra/kafka/notices.py, its route is infra/http/routes/availability.py). The view decides nothing: at `flush` it reads the batch's
tickets (and their contracts) in one query each, runs the projection's folds on them, and
writes the rows they gave in a handful of set-based statements (one upsert of the contracts,
one of the tickets' facts, one rewrite of the outage segments of the tickets whose segments
changed, each batch of rows sent as one JSON document), so thousands of ticket events cost a
few round trips. For the tick it answers the projection's indexed questions: the contracts
marked as changed or with an open outage, and one contract's outages over a span.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from domain.availability import Interval
from domain.periods import from_iso, utc, utc_or_none
from infra.kafka.notices import AVAILABILITY_TOPIC, encode_budget
from infra.postgres.outbox import enqueue
from infra.postgres.views.rows import Rows
from projections.availability import BudgetNotice
from projections.availability_rows import Candidate, ContractOutages, Outage, OutageFacts, Terms
from projections.envelope import Fold

NAME = "availability"
SCHEMA = f"proj_{NAME}"
SQL_FILES = tuple(f"availability_{t}" for t in ("contracts", "tickets", "outages", "maintenance", "notices"))
Fetch = Callable[[str, tuple[Any, ...]], list[dict[str, Any]]]


_FAR = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))


def load(fetch: Fetch, schema: str, contract_id: str, since: datetime | None = None,
         until: datetime | None = None) -> ContractOutages | None:
    """A contract's terms, noticed months, and the outage segments and maintenance windows
    that overlap [since, until) (default: all)."""
    terms = fetch(f"SELECT time_zone, target_pct FROM {schema}.availability_contracts"
                  " WHERE contract_id = %s", (contract_id,))
    if not terms:
        return None
    bounds = (contract_id, since or _FAR[0], until or _FAR[1])
    outages = fetch(f"SELECT ticket_id, starts_at, ends_at FROM {schema}.availability_outages"
                    " WHERE contract_id = %s AND (ends_at IS NULL OR ends_at > %s) AND starts_at < %s"
                    " ORDER BY starts_at, ticket_id, seq", bounds)
    windows = fetch(f"SELECT starts_at, ends_at FROM {schema}.availability_maintenance"
                    " WHERE contract_id = %s AND ends_at > %s AND starts_at < %s ORDER BY starts_at", bounds)
    noticed = fetch(f"SELECT month FROM {schema}.availability_notices WHERE contract_id = %s", (contract_id,))
    return ContractOutages(
        contract_id, terms[0]["time_zone"], terms[0]["target_pct"],
        tuple(Outage(r["ticket_id"], utc(r["starts_at"]), utc_or_none(r["ends_at"])) for r in outages),
        tuple((utc(r["starts_at"]), utc(r["ends_at"])) for r in windows),
        frozenset(r["month"] for r in noticed),
    )


class PgAvailabilityView:
    """The availability read model in {schema}.availability_*: the batch's tickets folded at
    flush, on their facts read in one query, contracts read on first use; written at flush."""

    def __init__(self, conn: psycopg.Connection, schema: str) -> None:
        self.conn, self.schema = conn, schema
        self.contracts: Rows[str, Terms] = Rows(self._contracts)
        self.tickets: Rows[str, OutageFacts] = Rows(self._tickets)
        self.windows: list[tuple[str, int, Interval, str | None]] = []
        self.erased: list[str] = []

    def _sql(self, text: str) -> Any:
        return text.replace("{s}", self.schema)

    # -- the rows the projection gets and puts ----------------------------------------------

    def prefetch(self, contracts: Collection[str]) -> None:
        self.contracts.prefetch(contracts)

    def contract(self, contract_id: str) -> Terms | None:
        return self.contracts.get(contract_id)

    def put_contract(self, contract_id: str, terms: Terms) -> None:
        self.contracts.put(contract_id, terms)

    def scheduled(self, contract_id: str, position: int, window: Interval, reason: str | None) -> None:
        self.windows.append((contract_id, position, window, reason))

    def change(self, ticket_id: str, fold: Fold, *args: Any) -> bool:
        return self.tickets.change(ticket_id, fold, args)

    def erase(self, contract_id: str) -> None:
        self.erased.append(contract_id)

    def _contracts(self, ids: list[str]) -> dict[str, Terms]:
        rows = self.conn.execute(self._sql(
            "SELECT contract_id, time_zone, target_pct, position, dirty_since FROM {s}.availability_contracts"
            " WHERE contract_id = ANY(%s)"), (ids,)).fetchall()
        return {r[0]: Terms(r[1], r[2], r[3], utc_or_none(r[4])) for r in rows}

    def _tickets(self, ids: list[str]) -> dict[str, OutageFacts]:
        rows = self.conn.execute(self._sql(
            "SELECT ticket_id, contract_id, since, down, cancelled, history, position"
            " FROM {s}.availability_tickets WHERE ticket_id = ANY(%s)"), (ids,)).fetchall()
        return {r[0]: OutageFacts(r[0], r[1], utc(r[2]), r[3], r[4], tuple((k, from_iso(at)) for k, at in r[5]), r[6])
                for r in rows}

    # -- the writes -------------------------------------------------------------------------

    def flush(self) -> int:
        """Write the batch; how many of its changes were declined (events already applied)."""
        # The folds mark their tickets' contracts: read those in one query too.
        loaded = self.tickets.prefetch_pending()
        self.contracts.prefetch(f.contract_id for f in loaded if f is not None)
        declined = self.tickets.settle()
        contracts = self.contracts.take_changed()
        if contracts:
            self._insert("availability_contracts", [
                {"contract_id": c, "time_zone": t.time_zone, "target_pct": t.target_pct, "position": t.position,
                 "dirty_since": t.dirty_since and t.dirty_since.isoformat()}
                for c, t in contracts.items()
            ], "(contract_id) DO UPDATE SET time_zone = EXCLUDED.time_zone, target_pct = EXCLUDED.target_pct,"
               " position = EXCLUDED.position, dirty_since = EXCLUDED.dirty_since")
        if self.windows:
            self._insert("availability_maintenance", [
                {"contract_id": c, "position": p, "starts_at": w[0].isoformat(), "ends_at": w[1].isoformat(),
                 "reason": r} for c, p, w, r in self.windows])
        before = {t: f.segments() if (f := self.tickets.loaded.get(t)) else [] for t in self.tickets.changed}
        after = self.tickets.take_changed()
        if after:
            self._insert("availability_tickets", [
                {"ticket_id": f.ticket_id, "contract_id": f.contract_id, "since": f.since.isoformat(),
                 "down": f.down, "cancelled": f.cancelled, "position": f.position,
                 "history": [[kind, at.isoformat()] for kind, at in f.history]}
                for f in after.values()
            ], "(ticket_id) DO UPDATE SET down = EXCLUDED.down, cancelled = EXCLUDED.cancelled,"
               " history = EXCLUDED.history, position = EXCLUDED.position")
        # Each ticket's outage rows are its segments; rewritten only where they differ.
        new = {t: f.segments() for t, f in after.items()}
        moved = [after[t] for t in after if new[t] != before[t]]
        if moved:
            self.conn.execute(self._sql("DELETE FROM {s}.availability_outages WHERE ticket_id = ANY(%s)"),
                              ([f.ticket_id for f in moved],))
            self._insert("availability_outages", [
                {"ticket_id": f.ticket_id, "seq": n, "contract_id": f.contract_id,
                 "starts_at": start.isoformat(), "ends_at": end and end.isoformat()}
                for f in moved for n, (start, end) in enumerate(new[f.ticket_id])
            ])
        self.windows = []
        if self.erased:  # after the inserts: windows this batch wrote are blanked too
            self.conn.execute(self._sql("UPDATE {s}.availability_maintenance SET reason = NULL WHERE contract_id = ANY(%s)"),
                              (self.erased,))
            self.erased = []
        return declined

    def _insert(self, table: str, rows: list[dict[str, Any]], on_conflict: str | None = None) -> None:
        """All rows in one statement, sent as one JSON document: far cheaper than a statement
        per row or binding arrays, and unlike COPY it runs in the runner's pipeline mode."""
        if rows:
            conflict = f" ON CONFLICT {on_conflict}" if on_conflict else ""
            self.conn.execute(self._sql(
                f"INSERT INTO {{s}}.{table} SELECT * FROM json_populate_recordset("
                f"NULL::{{s}}.{table}, %s::json){conflict}"), (json.dumps(rows),))

    # -- the tick's reads and writes, immediate ---------------------------------------------

    def _fetch(self, query: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchall()

    def candidates(self) -> list[Candidate]:
        """The contracts with `dirty_since` set or an open outage, from the two partial
        indexes, with the earliest start of their open outages and their noticed months."""
        rows = self._fetch(self._sql(
            "WITH x AS (SELECT contract_id FROM {s}.availability_contracts WHERE dirty_since IS NOT NULL"
            " UNION SELECT contract_id FROM {s}.availability_outages WHERE ends_at IS NULL)"
            " SELECT c.contract_id, c.time_zone, c.target_pct, c.position, c.dirty_since,"
            " (SELECT min(o.starts_at) FROM {s}.availability_outages o"
            "  WHERE o.contract_id = c.contract_id AND o.ends_at IS NULL) AS open_since,"
            " ARRAY(SELECT n.month FROM {s}.availability_notices n WHERE n.contract_id = c.contract_id) AS noticed"
            " FROM x JOIN {s}.availability_contracts c USING (contract_id) ORDER BY 1"), ())
        return [Candidate(r["contract_id"],
                          Terms(r["time_zone"], r["target_pct"], r["position"], utc_or_none(r["dirty_since"])),
                          utc_or_none(r["open_since"]), frozenset(r["noticed"])) for r in rows]

    def outages_of(self, contract_id: str, since: datetime | None = None,
                   until: datetime | None = None) -> ContractOutages | None:
        return load(self._fetch, self.schema, contract_id, since, until)

    def budget_exhausted(self, notice: BudgetNotice) -> None:
        value, headers = encode_budget(notice)
        self.conn.execute(self._sql(
            "INSERT INTO {s}.availability_notices VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"),
            (notice.contract_id, notice.month, notice.notice_id, notice.exhausted_at, notice.decided_at))
        enqueue(self.conn, self.schema, notice.notice_id, AVAILABILITY_TOPIC, notice.contract_id, value, headers)

    def checked(self, contract_id: str) -> None:
        self.conn.execute(self._sql(
            "UPDATE {s}.availability_contracts SET dirty_since = NULL WHERE contract_id = %s"),
            (contract_id,))


