"""A contract as a MySQL/MariaDB dump: CREATE TABLE and INSERT statements that load into a
real server with `mysql < dump.sql`, for a customer leaving the service (DataCRM's seed
promises one on cancellation) or an auditor who wants SQL.

The dump holds the contract, its tickets, every event (fields, actor, commit time, hash),
the time entries, and the figures (SLA per month, ledger, availability per month) both as
JSON, exactly as the API answers them, and flattened where a column is natural. It sets
`NO_BACKSLASH_ESCAPES`, so a string literal needs only its quotes doubled, whatever text it
holds; text is utf8mb4.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Column types of the dump's tables, in order. Instants are kept as ISO-8601 text with their
# offset (as the API answers them) next to a DATETIME(6) in UTC for SQL arithmetic.
TABLES: dict[str, list[tuple[str, str]]] = {
    "export": [("contract_id", "CHAR(36) NOT NULL"), ("exported_at", "VARCHAR(40) NOT NULL"),
               ("rules_version", "VARCHAR(40) NOT NULL"), ("head_hash", "CHAR(64) NOT NULL"),
               ("events", "BIGINT NOT NULL"), ("position", "BIGINT NOT NULL")],
    "contract": [("contract_id", "CHAR(36) NOT NULL PRIMARY KEY"), ("customer", "VARCHAR(200)"),
                 ("plan", "VARCHAR(64) NOT NULL"), ("status", "VARCHAR(16) NOT NULL"),
                 ("time_zone", "VARCHAR(64) NOT NULL"), ("starts_on", "DATE"), ("terms", "LONGTEXT NOT NULL")],
    "tickets": [("ticket_id", "CHAR(36) NOT NULL PRIMARY KEY"), ("title", "VARCHAR(500)"),
                ("reporter", "VARCHAR(200)"), ("channel", "VARCHAR(64)"), ("priority", "CHAR(2)"),
                ("category", "VARCHAR(32)"), ("status", "VARCHAR(16)"), ("opened_at", "VARCHAR(40)"),
                ("minutes", "INT")],
    "events": [("position", "BIGINT NOT NULL PRIMARY KEY"), ("type", "VARCHAR(64) NOT NULL"),
               ("aggregate_id", "CHAR(36) NOT NULL"), ("aggregate_version", "INT NOT NULL"),
               ("occurred_at", "VARCHAR(40) NOT NULL"), ("committed_at", "VARCHAR(40) NOT NULL"),
               ("actor", "LONGTEXT NOT NULL"), ("fields", "LONGTEXT NOT NULL"), ("hash", "CHAR(64) NOT NULL")],
    "time_entries": [("position", "BIGINT NOT NULL PRIMARY KEY"), ("ticket_id", "CHAR(36) NOT NULL"),
                     ("minutes", "INT NOT NULL"), ("kind", "VARCHAR(16) NOT NULL"), ("engineer", "VARCHAR(200)"),
                     ("at", "VARCHAR(40) NOT NULL")],
    "reports": [("report", "VARCHAR(16) NOT NULL"), ("period", "VARCHAR(16) NOT NULL"), ("body", "LONGTEXT NOT NULL")],
}


@dataclass
class Contents:
    """What a dump holds: one contract's rows, in the API's own shapes."""

    header: Mapping[str, Any]
    contract: Mapping[str, Any]
    tickets: Sequence[Mapping[str, Any]]
    events: Sequence[Mapping[str, Any]]
    reports: Sequence[tuple[str, str, Any]] = field(default_factory=list)  # (report, period, answer)


def literal(value: Any) -> str:
    """A SQL literal under NO_BACKSLASH_ESCAPES: NULL, a number, or a quoted string (JSON
    text for lists and mappings)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return "'" + text.replace("'", "''") + "'"


def _inserts(table: str, rows: Iterable[Sequence[Any]]) -> Iterable[str]:
    names = ", ".join(f"`{c}`" for c, _ in TABLES[table])
    for row in rows:
        yield f"INSERT INTO `{table}` ({names}) VALUES ({', '.join(literal(v) for v in row)});"


def dump(contents: Contents) -> str:
    """The whole dump, as text."""
    h, c = contents.header, contents.contract
    lines = [
        f"-- ticketing export of contract {h['contract_id']}, as committed at {h['exported_at']}",
        f"-- rules version {h['rules_version']}; head of its hash chain {h['head_hash']} after {h['events']} events",
        "SET NAMES utf8mb4;",
        "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES';",
    ]
    for table, columns in TABLES.items():
        body = ",\n  ".join(f"`{name}` {kind}" for name, kind in columns)
        lines += [f"DROP TABLE IF EXISTS `{table}`;",
                  f"CREATE TABLE `{table}` (\n  {body}\n) DEFAULT CHARSET=utf8mb4;"]
    lines += _inserts("export", [[h["contract_id"], h["exported_at"], h["rules_version"], h["head_hash"],
                                  h["events"], h["position"]]])
    lines += _inserts("contract", [[c["contract_id"], c.get("customer"), c["plan"], c["status"], c["time_zone"],
                                    c.get("starts_on"), c.get("terms", {})]])
    lines += _inserts("tickets", ([t["ticket_id"], t.get("title"), t.get("reporter"), t.get("channel"), t.get("priority"),
                                   t.get("category"), t.get("status"), t.get("opened_at"), t.get("minutes")]
                                  for t in contents.tickets))
    lines += _inserts("events", ([e["position"], e["type"], e["aggregate_id"], e["aggregate_version"], e["occurred_at"],
                                  e["committed_at"], e["actor"], e["fields"], e["hash"]] for e in contents.events))
    lines += _inserts("time_entries", ([e["position"], e["aggregate_id"], e["fields"]["minutes"], e["fields"]["kind"],
                                        e["fields"].get("engineer"), e["occurred_at"]]
                                       for e in contents.events if e["type"] == "Ticket.TimeConsumed"))
    lines += _inserts("reports", ([report, period, answer] for report, period, answer in contents.reports))
    return "\n".join(lines) + "\n"
