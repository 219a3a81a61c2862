"""What a rebuild changes, in the business's terms: two schemas of one read model compared by
key, as of one instant. Per ticket and clock, the SLA due instant and status the projection
derived and stored (what the tick judges breaches by); per contract and period, the ledger's
balance, low balance and exhaustion; per contract and month, the availability's downtime,
percentage and verdict. The tickets list has no figures of its own: its changes are the
per-table row counts of infra/postgres/rebuild.py.

A change is one field of one thing, before and after; a *verdict* is a field that judges
(an SLA status, a ledger's low balance or exhaustion, a month's `met`). The full list goes to
`rebuild-<projection>-<stamp>.csv` and `.json`, a summary to the terminal.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from domain.periods import months_touched
from infra.postgres.views.availability import load
from infra.postgres.views.ledger import book_from_row
from projections.ledger_rows import Period

CLOCKS = ("response", "resolution")
VERDICTS = {"status", "low_balance", "exhausted", "met"}
Key = tuple[str, str, str, str]  # contract, ticket, clock, period (or month)
Figures = dict[Key, dict[str, str | None]]


@dataclass(frozen=True)
class Change:
    """One field of one ticket's clock, contract's period or contract's month, before and after
    (None: the thing is not in that schema)."""

    projection: str
    contract_id: str
    ticket_id: str
    clock: str
    period: str
    field: str
    before: str | None
    after: str | None

    @property
    def verdict(self) -> bool:
        return self.field in VERDICTS


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _status(due: datetime | None, stopped: datetime | None, on: bool, now: datetime) -> str:
    """A clock's status from what the projection stored ('running' covers a paused clock)."""
    if due is None:
        return "none"
    if on:
        return "breached" if now >= due else "running"
    if stopped is None:
        return "none"
    return "met" if stopped <= due else "missed"


Advance = Callable[[int], None]
KEY_TABLES = {"sla": "sla_tickets", "ledger": "periods", "availability": "availability_contracts"}


def size(conn: psycopg.Connection, projection: str, schema: str) -> int:
    """How many things of `schema` a comparison reads (tickets, periods or contracts)."""
    table = KEY_TABLES.get(projection)
    row = conn.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone() if table else None
    return int(row[0]) if row else 0


def sla_figures(conn: psycopg.Connection, schema: str, now: datetime, advance: Advance) -> Figures:
    out: Figures = {}
    columns = ", ".join(f"{c}_{f}" for c in CLOCKS for f in ("due_at", "stopped_at", "on"))
    rows = conn.cursor(row_factory=dict_row).execute(
        f"SELECT ticket_id, contract_id, {columns} FROM {schema}.sla_tickets").fetchall()
    for r in rows:
        for c in CLOCKS:
            due, stopped = r[f"{c}_due_at"], r[f"{c}_stopped_at"]
            out[(r["contract_id"], r["ticket_id"], c, "")] = {
                "due_at": _text(due), "status": _status(due, stopped, r[f"{c}_on"], now)}
        advance(1)
    return out


def ledger_figures(conn: psycopg.Connection, schema: str, advance: Advance) -> Figures:
    cur = conn.cursor(row_factory=dict_row)
    books = {r["contract_id"]: book_from_row(r) for r in cur.execute(f"SELECT * FROM {schema}.contracts").fetchall()}
    out: Figures = {}
    for row in cur.execute(f"SELECT * FROM {schema}.periods").fetchall():
        period, book = Period(**row), books.get(row["contract_id"])
        balance, threshold = period.balance, book.threshold if book else None
        out[(period.contract_id, "", "", period.label)] = {
            "balance": _text(balance),
            "low_balance": _text(balance is not None and threshold is not None and balance <= threshold),
            "exhausted": _text(balance is not None and balance <= 0),
        }
        advance(1)
    return out


def _months(conn: psycopg.Connection, schema: str, now: datetime) -> dict[str, set[str]]:
    """Per contract, the months its outages and maintenance windows touch."""
    found: dict[str, set[str]] = {}
    for cid, tz, start, end in conn.execute(
            f"SELECT c.contract_id, c.time_zone, o.starts_at, o.ends_at FROM {schema}.availability_contracts c"
            f" JOIN (SELECT contract_id, starts_at, ends_at FROM {schema}.availability_outages UNION ALL"
            f" SELECT contract_id, starts_at, ends_at FROM {schema}.availability_maintenance) o USING (contract_id)"):
        found.setdefault(cid, set()).update(months_touched(start, end or max(now, start), tz))
    return found


def availability_figures(conn: psycopg.Connection, schema: str, now: datetime,
                         months: dict[str, set[str]], advance: Advance) -> Figures:
    cur = conn.cursor(row_factory=dict_row)

    def fetch(query: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        return cur.execute(query, params).fetchall()

    out: Figures = {}
    advance(max(0, size(conn, "availability", schema) - len(months)))  # contracts without outages: nothing to read
    for cid, wanted in months.items():
        contract = load(fetch, schema, cid)
        for month in sorted(wanted) if contract else ():
            f = contract.month(month, now) if contract else None
            if f is not None:
                out[(cid, "", "", month)] = {"downtime_minutes": _text(round(f.downtime_minutes, 4)),
                                             "availability_pct": _text(f.availability_pct), "met": _text(f.met)}
        advance(1)
    return out


def compare(conn: psycopg.Connection, projection: str, before: str, after: str, now: datetime,
            advance: Advance = lambda _: None) -> list[Change]:
    """The business figures of `projection` that differ between schema `before` and `after`;
    `advance` is told of each thing read (for a progress bar)."""
    readers: dict[str, Callable[[str], Figures]] = {
        "sla": lambda schema: sla_figures(conn, schema, now, advance),
        "ledger": lambda schema: ledger_figures(conn, schema, advance),
    }
    if projection == "availability":
        months = _months(conn, before, now)
        for cid, more in _months(conn, after, now).items():
            months.setdefault(cid, set()).update(more)
        readers["availability"] = lambda schema: availability_figures(conn, schema, now, months, advance)
    read = readers.get(projection)
    if read is None:
        return []
    old, new = read(before), read(after)
    changes = []
    for key in sorted(old.keys() | new.keys()):
        was, now_is = old.get(key, {}), new.get(key, {})
        for name in sorted(was.keys() | now_is.keys(), key=lambda n: (n in VERDICTS, n)):
            if was.get(name) != now_is.get(name):
                changes.append(Change(projection, *key, name, was.get(name), now_is.get(name)))
    return changes


def flipped(changes: list[Change]) -> int:
    return sum(1 for c in changes if c.verdict)


def summary(changes: list[Change]) -> list[tuple[str, int, int]]:
    """Per field: how many things changed, and how many of those had no figure before or after."""
    changed = Counter(c.field for c in changes)
    appeared = Counter(c.field for c in changes if c.before is None or c.after is None)
    return [(name, changed[name], appeared[name]) for name in sorted(changed)]


def write_files(changes: list[Change], projection: str, rules_version: str, compared_at: datetime,
                directory: Path) -> tuple[Path, Path]:
    """The full list as rebuild-<projection>-<stamp>.csv and .json in `directory`."""
    stamp = compared_at.strftime("%Y%m%dT%H%M%SZ")
    csv_path, json_path = (directory / f"rebuild-{projection}-{stamp}.{ext}" for ext in ("csv", "json"))
    names = [f.name for f in fields(Change)]
    with csv_path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*names, "verdict"])
        for c in changes:
            writer.writerow([*("" if (v := getattr(c, n)) is None else v for n in names), str(c.verdict).lower()])
    json_path.write_text(json.dumps({
        "projection": projection, "rules_version": rules_version, "compared_at": compared_at.isoformat(),
        "changes": len(changes), "verdicts_flipped": flipped(changes),
        "list": [asdict(c) | {"verdict": c.verdict} for c in changes],
    }, indent=2) + "\n")
    return csv_path, json_path
