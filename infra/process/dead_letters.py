"""`ticketing dead-letters`: list the messages the projection runners parked, retry them
through the projection's rules, or discard them (kept, with who and why), on DATABASE_URL or the
embedded PostgreSQL of TICKETING_DATA_DIR. The work is infra/postgres/dead_letters.py's; the
semantics are in docs/operations.md, Dead letters."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from infra.registry import PROJECTIONS
from infra.settings import Settings

if TYPE_CHECKING:  # imported where used, as in cli.py: every `ticketing` command builds this parser
    from infra.postgres import dead_letters


def add_parser(sub: Any) -> None:
    """`ticketing dead-letters list|retry|discard`."""
    letters = sub.add_parser("dead-letters", help="list, retry or discard the messages the runners parked")
    actions = letters.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="parked messages per projection, with the reason and the event")
    listing.add_argument("--all", action="store_true", help="the settled ones too (applied, discarded)")
    listing.add_argument("--json", action="store_true", help="full records, with the event (decoded, or base64)")
    retry = actions.add_parser("retry", help="apply parked events again through the projection's rules, in order")
    retry.add_argument("--all", action="store_true", help="every parked event of --projection")
    discard = actions.add_parser("discard", help="settle parked events without applying them (kept, with who and why)")
    discard.add_argument("--reason", required=True, help="why (recorded)")
    for action in (retry, discard):
        action.add_argument("ids", nargs="*" if action is retry else "+", metavar="ID",
                            help="PROJECTION:ID as `list` shows it, or ID with --projection")
        action.add_argument("--by", default=None, help="who (recorded; default: the OS user)")
    for action in (listing, retry, discard):
        action.add_argument("--projection", choices=sorted(PROJECTIONS), default=None)
        action.add_argument("--schema", default=None, help="the projection's tables in another schema (a scratch copy)")
    letters.set_defaults(func=command)


def _dead_letter_ids(args: argparse.Namespace) -> dict[str, list[int]]:
    """The dead letters named on the command line, per projection: `PROJECTION:ID` (as `list`
    shows them), or a bare ID of the projection given with --projection."""
    named: dict[str, list[int]] = {}
    for ref in args.ids:
        name, _, number = ref.rpartition(":")
        name = name or args.projection
        if name not in PROJECTIONS or not number.isdigit():
            raise ValueError(f"{ref!r}: name a dead letter as PROJECTION:ID, or give --projection")
        named.setdefault(name, []).append(int(number))
    return named


def command(settings: Settings, args: argparse.Namespace) -> int:
    """List the messages the runners parked, retry them through the projection's rules, or
    discard them (kept, with who and why), on DATABASE_URL or the embedded PostgreSQL of
    TICKETING_DATA_DIR."""
    import getpass

    from infra.postgres import dead_letters
    from infra.process import embedded

    if args.schema and not args.projection:
        print("ticketing dead-letters: --schema needs --projection", file=sys.stderr)
        return 2
    url = settings.database_url or embedded.start_postgres(settings.data_dir)
    settings = settings.with_servers(url, settings.kafka_bootstrap or "")

    def target(name: str) -> dead_letters.Letters:
        return dead_letters.Letters.of(PROJECTIONS[name], args.schema if name == args.projection else None)

    if args.action == "list":
        return _list_dead_letters(url, [target(n) for n in ([args.projection] if args.projection
                                                             else sorted(PROJECTIONS))], args)
    by = args.by or getpass.getuser()
    try:
        named = _dead_letter_ids(args)
    except ValueError as wrong:
        print(f"ticketing dead-letters {args.action}: {wrong}", file=sys.stderr)
        return 2
    if args.action == "discard":
        failed = 0
        for name, ids in named.items():
            for i, refused in dead_letters.discard(url, target(name), ids, by, args.reason).items():
                failed += refused is not None
                print(f"{name}:{i}  " + (f"not discarded: {refused}" if refused else f"discarded by {by}"))
        return 1 if failed else 0
    return _retry_dead_letters(settings, named, target, by, args)


def _list_dead_letters(url: str, targets: list[dead_letters.Letters], args: argparse.Namespace) -> int:
    import json

    import psycopg
    from rich.console import Console
    from rich.table import Table

    from infra.kafka.avro import Codec
    from infra.postgres import dead_letters

    decode = Codec().decode
    try:
        letters = [d for t in targets for d in dead_letters.listing(url, t, settled=args.all)]
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as missing:
        print(f"ticketing dead-letters list: {missing} (`ticketing setup` makes the tables)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([d.as_json(decode) for d in letters], indent=2))
        return 0
    table = Table("id", "projection", "position", "partition/offset", "event", "contract / ticket", "parked at",
                  "attempts", "status", "reason")
    for d in letters:
        env = d.decoded(decode)
        what = (env.type, f"{env.contract_id} / {env.aggregate_id}") if env else ("undecodable", "")
        status = d.status if d.status == "parked" else f"{d.status} by {d.settled_by} at {d.settled_at:%Y-%m-%d %H:%M}"
        table.add_row(d.ref, d.projection, str(d.position if d.position is not None else "-"),
                      f"{d.partition}/{d.kafka_offset}", *what, f"{d.parked_at:%Y-%m-%d %H:%M:%S}",
                      str(d.attempts), status, d.reason)
    Console(emoji=False, width=200).print(table)
    return 0


def _retry_dead_letters(settings: Settings, named: dict[str, list[int]], target: Any, by: str,
                        args: argparse.Namespace) -> int:
    import psycopg

    from infra.kafka.avro import Codec
    from infra.postgres import dead_letters
    from infra.process import wiring

    if args.all:
        if not args.projection or named:
            print("ticketing dead-letters retry: give IDs, or --projection P --all", file=sys.stderr)
            return 2
        named = {args.projection: []}
    elif not named:
        print("ticketing dead-letters retry: give IDs, or --projection P --all", file=sys.stderr)
        return 2
    store = wiring.event_store(settings)
    failed = 0
    try:  # a database fault ends the command; the dead letter in hand is left as it was
        for name, ids in named.items():
            retry = dead_letters.Retry(settings.database_url or "", target(name),
                                       dead_letters.StoreEvents(store), Codec().decode, by)
            for outcome in retry.run(ids or retry.parked_ids()):
                failed += not outcome.ok
                kept = "" if outcome.ok or outcome.result in ("unknown", "settled") else " (still parked)"
                print(f"{name}:{outcome.id}  position {outcome.position}  {outcome.result}{kept}: {outcome.detail}")
    except psycopg.Error as fault:
        print(f"ticketing dead-letters retry: the database failed, nothing more was retried: {fault!r}",
              file=sys.stderr)
        return 1
    finally:
        store.close()
    return 1 if failed else 0
