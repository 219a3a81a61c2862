"""The operators' commands on read models: `ticketing rebuild` (with its dry run, switch and
abort) and `ticketing status` (docs/operations.md).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infra.registry import PROJECTIONS
from infra.settings import Settings


def cmd_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    """Rebuild a projection: build and switch at once; or `--dry-run` (build the new tables, say
    what would change, switch nothing), then `--switch` or `--abort` the prepared tables."""
    import json
    from pathlib import Path

    from rich.console import Console

    from domain.rules import RULES_VERSION
    from infra.postgres import changes, rebuild
    from infra.process import wiring

    if not settings.database_url:
        from infra.process import embedded

        settings = settings.with_servers(embedded.start_postgres(settings.data_dir), settings.kafka_bootstrap or "")
    assert settings.database_url
    spec = PROJECTIONS[args.projection]
    if args.abort:
        try:
            dropped = rebuild.abort(settings.database_url, spec)
        except rebuild.RebuildRunning as refused:
            print(f"ticketing rebuild: {refused}", file=sys.stderr)
            return 1
        print(f"{'dropped the prepared' if dropped else 'no prepared'} rebuild of {spec.name}")
        return 0
    if args.source == "kafka" and not settings.kafka_bootstrap:
        print("ticketing rebuild --from kafka: set KAFKA_BOOTSTRAP_SERVERS (the broker's address)", file=sys.stderr)
        return 2
    store = wiring.event_store(settings)
    run = {"show_progress": True, "source": args.source, "bootstrap": settings.kafka_bootstrap,
           "clock": settings.clock.now}
    place = (spec, store, settings.database_url, settings.events_topic, settings.partitions)
    try:
        if args.dry_run:
            found: rebuild.DryRun | rebuild.Report = rebuild.dry_run(*place, **run)
        elif args.switch:
            found = rebuild.switch_prepared(*place, **run)
        else:
            found = rebuild.rebuild(*place, **run)
    except (rebuild.NotPrepared, rebuild.PreparedWithOtherRules, rebuild.RebuildRunning) as refused:
        print(f"ticketing rebuild: {refused}", file=sys.stderr)
        return 1
    finally:
        store.close()
    _print_changes(Console(stderr=True, emoji=False, width=None if sys.stderr.isatty() else 160), found.business, spec.name)
    out: dict[str, Any] = {"projection": spec.name, "rules_version": RULES_VERSION, "events": found.events,
                           "events_per_s": round(found.events / found.seconds) if found.seconds else 0,
                           "changed": found.changed, "business_changes": len(found.business),
                           "verdicts_flipped": changes.flipped(found.business)}
    if isinstance(found, rebuild.DryRun):
        out |= {"switched": False, "compared_at_position": found.position}
    else:
        out |= {"switched": True, "old_schema": found.old_schema}
    if args.dry_run or args.switch:
        files = changes.write_files(found.business, spec.name, RULES_VERSION, settings.clock.now(), Path.cwd())
        out["files"] = [str(f) for f in files]
    print(json.dumps(out, indent=2))
    if args.drop_old and not args.dry_run:
        rebuild.drop_old(settings.database_url, spec)
    return 0


def _print_changes(console: Any, found: list[Any], projection: str) -> None:
    """The summary table: per figure, how many changed, and a few of them."""
    from rich.table import Table

    from infra.postgres import changes

    table = Table("figure", "changed", "appeared or vanished", "verdict", "first of them",
                  title=f"{projection}: {len(found)} business changes, {changes.flipped(found)} verdicts flipped")
    for name, count, appeared in changes.summary(found):
        first = next(c for c in found if c.field == name)
        where = " ".join(x for x in (first.contract_id, first.ticket_id, first.clock, first.period) if x)
        table.add_row(name, str(count), str(appeared), "yes" if name in changes.VERDICTS else "",
                      f"{where}: {first.before} -> {first.after}")
    console.print(table)


def cmd_status(settings: Settings, _: argparse.Namespace) -> int:
    """The pipeline at a glance: where the broker is and how to reach it, the store's head, the
    relay's and each read model's position, lag and counts, heartbeats and lease holders."""
    import json

    from rich.console import Console
    from rich.table import Table

    from infra import postgres
    from infra.postgres import status
    from infra.process import embedded

    running = settings.data_dir / "run.json"
    seen = json.loads(running.read_text()) if running.exists() else {}
    url = settings.database_url or seen.get("database_url") or embedded.start_postgres(settings.data_dir)
    broker = settings.kafka_bootstrap or seen.get("kafka_bootstrap") or f"127.0.0.1:{settings.kafka_port}"
    s = status.read(url, settings.events_topic, sorted(PROJECTIONS), f"{postgres.STORE_SCHEMA}.ticketing_events",
                    settings.partitions)
    out = Console(emoji=False, width=None if sys.stdout.isatty() else 200)  # a file or a pipe gets whole lines
    out.print(f"API      {seen.get('http', f'http://{settings.http_host}:{settings.http_port}')}")
    out.print(f"broker   {broker}  (a consumer: bootstrap_servers={broker!r}, topic {settings.events_topic!r},"
              " Avro: docs/wire-format.md)")
    out.print(f"store    head position {s.head}")

    def age(seconds: float | None) -> str:
        return "never" if seconds is None else f"{seconds:.1f} s ago"

    def holder(pid: int | None) -> str:
        return "free" if pid is None else f"held (pid {pid})"

    table = Table("part", "position", "lag (events)", "lag (s)", "applied", "ignored", "parked", "notices pending",
                  "heartbeat", "leases", "rebuild prepared")
    relay_state = f"blocked at {s.relay_blocked}" if s.relay_blocked is not None else ""
    table.add_row("relay", str(s.relay_position), str(s.relay_lag_events), f"{s.relay_lag_seconds:.1f}", "", "", "",
                  relay_state, age(s.relay_heartbeat_age), f"relay: {holder(s.relay_lease)}", "")
    for p in s.projections:
        table.add_row(p.name, str(p.position), str(p.lag_events), f"{p.lag_seconds:.1f}", str(p.applied),
                      str(p.ignored), f"{p.parked} ({p.dead_letters} waiting)",
                      ", ".join(f"{t}: {n}" for t, n in p.notices_pending.items()) or "0",
                      age(p.heartbeat_age) + (f", refuses: {p.refused}" if p.refused else ""),
                      "; ".join(f"{k}: {holder(v)}" for k, v in p.leases.items()),
                      f"at {p.rebuild[0]} of {p.rebuild[1]}" if p.rebuild else "")
    out.print(table)
    return 0


def add_parser(sub: Any) -> None:
    """`ticketing rebuild` and `ticketing status`."""
    rebuild = sub.add_parser("rebuild", help="rebuild a projection into new tables, then switch; or see first"
                             " what it would change (--dry-run), then --switch or --abort")
    rebuild.add_argument("projection", choices=sorted(PROJECTIONS))
    mode = rebuild.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="build the new tables and report what would change"
                      " (summary here, the full list as rebuild-<projection>-<time>.csv and .json); switch nothing")
    mode.add_argument("--switch", action="store_true", help="switch the tables a dry run prepared (caught up first)")
    mode.add_argument("--abort", action="store_true", help="drop the tables a dry run prepared")
    rebuild.add_argument("--from", dest="source", choices=["store", "kafka"], default="store",
                         help="read the events from the event store (default) or from the events topic")
    rebuild.add_argument("--drop-old", action="store_true", help="drop the tables it replaced")
    rebuild.set_defaults(func=cmd_rebuild)
    sub.add_parser("status", help="the pipeline at a glance: broker address, positions, lags, heartbeats, leases"
                   ).set_defaults(func=cmd_status)
