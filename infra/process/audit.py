"""The audit commands: `ticketing export` (a contract's events with their hash chain, recorded)
and `ticketing verify` (an export file alone, or the stored chains): docs/audit.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infra.settings import Settings


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    """Export a contract's events to a file, as the system (an operator on this machine),
    from DATABASE_URL or the embedded PostgreSQL of TICKETING_DATA_DIR; the export is recorded."""
    from pathlib import Path

    from domain import chain
    from domain.actors import SYSTEM
    from domain.errors import DomainError
    from infra.exports.contract import export_contract
    from infra.process import embedded, wiring

    url = settings.database_url or embedded.start_postgres(settings.data_dir)
    store = wiring.event_store(settings.with_servers(url, settings.kafka_bootstrap or ""))
    try:
        made = export_contract(store, args.contract_id, args.format, SYSTEM)
    except DomainError as refused:
        print(f"ticketing export: {refused.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    Path(args.out).write_bytes(made.content)
    h = made.header
    print(f"{args.out}: {h.events} events of contract {h.contract_id} as {args.format}, exported at"
          f" {chain.stamp(h.exported_at)}, head {h.head_hash} (position {h.position})")
    return 0


def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Check an export FILE with nothing but the file (no database, no broker), or with
    `--store` the stored hash chains: every contract's, or one's. Exit 1 naming the first event
    whose bytes no longer give the link stored with it."""
    if not args.store:
        return _verify_file(args.target, args.json)
    from infra.process import embedded, wiring

    url = settings.database_url or embedded.start_postgres(settings.data_dir)
    store = wiring.event_store(settings.with_servers(url, settings.kafka_bootstrap or ""))
    broken = 0
    try:
        for verdict in store.verify_chains(args.target):
            if verdict.ok:
                print(f"{verdict.contract_id}  ok      {verdict.events:6} events  head {verdict.head.hex()}")
            else:
                broken += 1
                print(f"{verdict.contract_id}  BROKEN  at position {verdict.broken_at}: its stored bytes no longer"
                      " give the link stored with it (altered, dropped or reordered)")
    finally:
        store.close()
    return 1 if broken else 0


def _verify_file(path: str | None, as_json: bool = False) -> int:
    """`ticketing verify FILE`: the export's chain, head and fields, from the file alone."""
    from pathlib import Path

    from infra.exports import files as export

    if not path:
        print("ticketing verify: give an export FILE, or --store [CONTRACT_ID]", file=sys.stderr)
        return 2
    try:
        report = export.verify(Path(path).read_bytes())
    except (OSError, export.Unreadable) as unreadable:
        print(f"ticketing verify: {path}: {unreadable}", file=sys.stderr)
        return 1
    for line in report.lines():
        print(line)
    if report.ok:  # the figures as of the export, by the rules of this code (the header names the export's)
        import json

        from domain.rules import RULES_VERSION
        from projections.replay import figures

        print(f"figures as of {report.header.exported_at.isoformat()}, rules {RULES_VERSION}"
              f" (the export's: {report.header.rules_version}):")
        found = figures(report.envelopes, report.header.exported_at)
        if as_json:
            print(json.dumps(found, indent=2, sort_keys=True, default=str))
        else:
            _print_figures(found)
    return 0 if report.ok else 1


def _print_figures(found: dict[str, Any]) -> None:
    """The figures at a glance: per month its tickets, SLA verdicts and availability; per
    ledger period what was granted, used and is left (`--json` prints every figure)."""
    from rich.console import Console
    from rich.table import Table

    def clocks(stats: dict[str, Any]) -> str:
        judged = {s: stats[s] for s in ("met", "missed", "breached") if stats.get(s)}
        return ", ".join(f"{n} {s}" for s, n in judged.items()) or "-"

    months = Table("month", "tickets", "response", "resolution", "downtime min", "availability", "target", "met",
                   title="SLA and availability", title_justify="left")
    for month, sla in found["sla"].items():
        up = found["availability"].get(month) or {}
        pct, target = up.get("availability_pct"), up.get("target_pct")
        months.add_row(month, str(sla["tickets"]), clocks(sla["all"]["response"]), clocks(sla["all"]["resolution"]),
                       str(up.get("downtime_minutes", "-")), "-" if pct is None else f"{pct} %",
                       "-" if target is None else f"{target} %", {"True": "yes", "False": "NO"}.get(str(up.get("met")), "-"))
    ledger = Table("period", "unit", "granted", "used", "balance", "overage", title="ledger", title_justify="left")
    for label, book in found["ledger"].items():
        ledger.add_row(label, str(book["unit"]), str(book["granted"]), str(book["used"]), str(book["balance"]),
                       str(book.get("overage", 0)))
    out = Console(emoji=False, width=None if sys.stdout.isatty() else 120)
    out.print(months)
    out.print(ledger)


def add_parser(sub: Any) -> None:
    """`ticketing export` and `ticketing verify`."""
    verify = sub.add_parser("verify", help="check an export file (no database, no broker), or the stored hash chains")
    verify.add_argument("--store", action="store_true", help="check the store's chains (every contract's, or one's)")
    verify.add_argument("--json", action="store_true", help="print every figure of the export as JSON (default: a summary)")
    verify.add_argument("target", nargs="?", default=None, metavar="FILE | CONTRACT_ID",
                        help="the export file to check; with --store, the one contract to check (default: all)")
    verify.set_defaults(func=cmd_verify)
    exporter = sub.add_parser("export", help="export a contract's events with their hash chain to a file (recorded)")
    exporter.add_argument("contract_id")
    exporter.add_argument("--format", required=True, choices=["jsonl", "avro", "mysql"])
    exporter.add_argument("--out", required=True, help="the file to write")
    exporter.set_defaults(func=cmd_export)
