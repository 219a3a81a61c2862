"""`ticketing tokens create|list|rotate|revoke`: access tokens issued by an operator on this
machine, acting as the system (docs/design.md, Access).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infra.settings import Settings


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


def add_parser(sub: Any) -> None:
    """`ticketing tokens`."""
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
