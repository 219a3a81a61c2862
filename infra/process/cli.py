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
    sub.add_parser("plans", help="list the plan catalog").set_defaults(func=cmd_plans)
    from infra.process import access, audit, dead_letters, operations

    for commands in (operations, audit, access, dead_letters):
        commands.add_parser(sub)
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
