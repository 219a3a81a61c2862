"""The `ticketing` command: run the whole backend, or one of its processes.

`ticketing run` starts the embedded PostgreSQL and broker unless DATABASE_URL and
KAFKA_BOOTSTRAP_SERVERS point at real ones, then supervises the API, the relay and one
consumer per projection as child processes, restarting any that dies.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

import structlog

from infra.process import logging as logs
from infra.registry import PROJECTIONS
from infra.settings import Settings

log = structlog.get_logger("cli")


def _stopper() -> Any:
    stopped = {"flag": False}

    def handler(*_: Any) -> None:
        stopped["flag"] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return lambda: stopped["flag"]


def exposed_without_token(settings: Settings) -> str | None:
    """Why this API must not start (bound beyond loopback with no admin token: anyone who can
    reach it could do anything), or None."""
    import ipaddress

    host = settings.http_host.strip("[]")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback or settings.admin_token:
        return None
    return (f"TICKETING_HTTP_HOST={settings.http_host} is beyond loopback and no TICKETING_ADMIN_TOKEN is set:"
            " the API would be open to anyone who reaches it. Set an admin token, or bind to 127.0.0.1.")


def cmd_api(settings: Settings, _: argparse.Namespace) -> int:
    import os

    import uvicorn

    from infra.process import lifeline

    refusal = exposed_without_token(settings)
    if refusal:
        print(f"ticketing api: {refusal}", file=sys.stderr)
        return 2
    if not settings.admin_token:
        log.warning("the API is open: without TICKETING_ADMIN_TOKEN a request without a token acts as admin"
                    " (it listens on loopback only)", http=f"{settings.http_host}:{settings.http_port}")

    if settings.api_workers > 1:  # uvicorn's workers are our children: they die with us
        os.environ[lifeline.PARENT] = str(os.getpid())
        # One scrape of GET /metrics shows every worker's command histogram (prometheus-client's
        # multiprocess mode: each worker writes its samples to files there, emptied at each start).
        import shutil

        shared = settings.data_dir / f"prometheus-{settings.http_port}"
        shutil.rmtree(shared, ignore_errors=True)
        shared.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(shared)

    # Each worker is a process of its own (commands on one aggregate may then race across
    # workers: the store's version check and the command's retry settle it).
    uvicorn.run("infra.process.api:app_from_env", factory=True, workers=settings.api_workers,
                host=settings.http_host, port=settings.http_port, log_level="warning", access_log=False)
    return 0


def cmd_relay(settings: Settings, _: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from infra.process import wiring

    store = wiring.event_store(settings)
    try:
        wiring.ensure_topic(settings)
    except KafkaError as exc:  # a broker that is away is the relay's to wait out, not a reason to exit
        log.warning("topics not ensured; the relay creates its own when the broker is back", error=repr(exc))
    relay = wiring.relay(settings, store)
    try:
        relay.run(_stopper())
    finally:
        relay.close()
        store.close()
    return 0


def cmd_consume(settings: Settings, args: argparse.Namespace) -> int:
    from infra.process import wiring

    # A consumer group where Kafka is given (a cluster, shared by runners on several machines);
    # `ticketing run` says `--no-group`: its one runner per projection reads every partition.
    group = settings.kafka_bootstrap is not None if args.group is None else args.group
    runner = wiring.runner(settings, args.projection, group=group)
    try:
        runner.run(_stopper())
    finally:
        runner.close()
    return 0


def cmd_renewals(settings: Settings, args: argparse.Namespace) -> int:
    from infra.process import renewals, wiring

    assert settings.database_url
    store = wiring.event_store(settings)
    try:
        interval = settings.renewals_interval if args.interval is None else args.interval
        renewals.run(store, settings.database_url, _stopper(), interval, args.once)
    finally:
        store.close()
    return 0


def cmd_plans(_: Settings, args: argparse.Namespace) -> int:
    from infra.process.catalog import load_catalog

    for plan_id, terms in sorted(load_catalog().items()):
        extra = []
        if terms.bank:
            extra.append(f"bank {terms.bank.minutes // 60} h / {terms.bank.period_months} months")
        if terms.credits:
            extra.append("credits")
        if terms.availability_target_pct is not None:
            extra.append(f"availability {terms.availability_target_pct} %")
        print(f"{plan_id:28} {terms.time_zone:32} targets by {terms.targets_by:9} {', '.join(extra)}")
    return 0


def cmd_setup(settings: Settings, _: argparse.Namespace) -> int:
    from infra.process import wiring

    assert settings.database_url
    wiring.setup_database(settings.database_url)
    return 0


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


def cmd_tokens(settings: Settings, args: argparse.Namespace) -> int:
    """Issue, list, rotate and revoke access tokens, as the system (an operator on this machine),
    against DATABASE_URL or the embedded PostgreSQL of TICKETING_DATA_DIR."""
    import json
    from uuid import UUID

    from domain import values
    from domain.actors import SYSTEM
    from domain.errors import DomainError
    from infra.postgres.tokens import TokenStore
    from infra.process import embedded, wiring

    url = settings.database_url or embedded.start_postgres(settings.data_dir)
    settings = settings.with_servers(url, settings.kafka_bootstrap or "")
    store = wiring.event_store(settings)
    tokens = TokenStore(url, store.named_users, settings.clock, store.keys)
    try:
        if args.action == "create":
            expires = values.instant(args.expires_at) if args.expires_at else None
            issued = tokens.create(SYSTEM, args.role, [UUID(c) for c in args.contract], args.name, expires)
            print(json.dumps({**issued.state, "token": issued.token}, indent=2))
        elif args.action == "list":
            for t in tokens.list():
                print(f"{t['token_id']}  {t['role']:8} {t['status']:8} {t['name'] or '':24} {' '.join(t['contracts'])}")
        elif args.action == "rotate":
            issued = tokens.rotate(SYSTEM, UUID(args.token_id))
            print(json.dumps({**issued.state, "token": issued.token}, indent=2))
        else:
            tokens.revoke(SYSTEM, UUID(args.token_id))
            print(f"revoked {args.token_id}")
    except (DomainError, ValueError) as refused:
        print(f"ticketing tokens {args.action}: {getattr(refused, 'message', refused)}", file=sys.stderr)
        return 1
    finally:
        tokens.close()
        store.close()
    return 0


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


def cmd_run(settings: Settings, _: argparse.Namespace) -> int:
    from infra.process.embedded import PortTaken
    from infra.process.lifeline import AlreadyRunning
    from infra.process.supervisor import run

    refusal = exposed_without_token(settings)
    if refusal:
        print(f"ticketing run: {refusal}", file=sys.stderr)
        return 2
    try:
        return run(settings, _stopper())
    except (AlreadyRunning, PortTaken) as refused:
        print(f"ticketing run: {refused}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    from infra.process import lifeline

    lifeline.supervised()
    parser = argparse.ArgumentParser(prog="ticketing", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="the whole backend on embedded defaults (or DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS)"
                   ).set_defaults(func=cmd_run)
    sub.add_parser("api", help="the HTTP API alone").set_defaults(func=cmd_api)
    sub.add_parser("relay", help="the event store to Kafka relay alone").set_defaults(func=cmd_relay)
    consume = sub.add_parser("consume", help="one projection's consumer")
    consume.add_argument("projection", choices=sorted(PROJECTIONS))
    consume.add_argument("--group", action=argparse.BooleanOptionalAction, default=None,
                         help="join the projection's consumer group, sharing the partitions with its other runners"
                              " (default: when KAFKA_BOOTSTRAP_SERVERS is set); --no-group reads every partition,"
                              " a second runner waiting as a standby")
    consume.set_defaults(func=cmd_consume)
    renew = sub.add_parser("renewals", help="renew hour banks whose period ended (about once a minute)")
    renew.add_argument("--once", action="store_true", help="one pass, then exit")
    renew.add_argument("--interval", type=float, default=None,
                       help="seconds between passes (default: TICKETING_RENEWALS_INTERVAL, else 60)")
    renew.set_defaults(func=cmd_renewals)
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
    sub.add_parser("plans", help="list the plan catalog").set_defaults(func=cmd_plans)
    sub.add_parser("status", help="the pipeline at a glance: broker address, positions, lags, heartbeats, leases"
                   ).set_defaults(func=cmd_status)
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
    tokens = sub.add_parser("tokens", help="issue, list, rotate and revoke access tokens")
    actions = tokens.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="issue a token; its secret is printed once")
    create.add_argument("--role", required=True, choices=["admin", "agent", "auditor", "customer"])
    create.add_argument("--contract", action="append", default=[], help="a customer token's contract (repeatable)")
    create.add_argument("--name", default=None)
    create.add_argument("--expires-at", default=None, help="ISO-8601 instant with offset; default: never")
    actions.add_parser("list", help="every token, never a secret")
    for action, text in (("rotate", "a new secret for the same token; the old one dies at once"),
                         ("revoke", "revoke a token at once")):
        one = actions.add_parser(action, help=text)
        one.add_argument("token_id")
    tokens.set_defaults(func=cmd_tokens)
    from infra.process import dead_letters

    dead_letters.add_parser(sub)
    sub.add_parser("setup", help="create the schemas and tables (idempotent)").set_defaults(func=cmd_setup)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logs.configure(settings.json_logs)
    if args.func is not cmd_run:
        settings = _beside_the_running(settings)
    return int(args.func(settings, args))


def _beside_the_running(settings: Settings) -> Settings:
    """An operator's command (rebuild, dead-letters, tokens, export, status...) run next to
    `ticketing run` on the same TICKETING_DATA_DIR works on that backend's PostgreSQL and
    broker, which it names in `run.json`; DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS, when set,
    come first. Without either, a command that needs the database starts the embedded one."""
    import json

    running = settings.data_dir / "run.json"
    if (settings.database_url and settings.kafka_bootstrap) or not running.exists():
        return settings
    try:
        seen = json.loads(running.read_text())
    except (OSError, ValueError):
        return settings
    url = settings.database_url or seen.get("database_url") or ""
    broker = settings.kafka_bootstrap or seen.get("kafka_bootstrap") or ""
    if url and not settings.database_url:
        import psycopg

        try:  # a run.json left by a backend whose PostgreSQL is gone names nothing
            psycopg.connect(url, connect_timeout=3).close()
        except psycopg.Error:
            return settings
    return settings.with_servers(url, broker) if url else settings


if __name__ == "__main__":
    sys.exit(main())
