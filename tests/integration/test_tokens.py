"""The token store on the real PostgreSQL: issue, rotate, revoke, expire; the named-user
limit of a contract's plan; every change recorded as an event naming who made it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from domain.actors import BOOTSTRAP, SYSTEM, Actor
from domain.errors import Conflict, InvalidInput, NotFound
from domain.wallclock import ShiftedClock
from infra.postgres.store import ApplicationHost
from infra.postgres.token_cache import TokenCache
from infra.postgres.tokens import TokenStore
from infra.settings import Settings


@pytest.fixture(scope="module")
def tokens(servers: Settings, store: ApplicationHost) -> Iterator[TokenStore]:
    def named_users(contract_id: uuid.UUID) -> int | None:
        return store.app.terms_of(store.app.contract(contract_id)).named_users

    assert servers.database_url
    made = TokenStore(servers.database_url, named_users, cache=TokenCache(servers.database_url).start())  # as the API's
    yield made
    made.close()


def _contract(store: ApplicationHost, plan: str) -> uuid.UUID:
    return uuid.UUID(store.app.sign_contract("Acme", plan, "2026-01-01").aggregate_id)


def test_an_issued_token_names_its_caller_until_it_is_rotated_or_revoked(tokens: TokenStore) -> None:
    issued = tokens.create(BOOTSTRAP, "agent", [], name="night shift")
    caller = tokens.caller(issued.token)
    assert caller is not None
    assert caller.role == "agent"
    assert caller.actor == Actor("token", issued.state["token_id"], "agent")

    rotated = tokens.rotate(BOOTSTRAP, uuid.UUID(issued.state["token_id"]))
    assert rotated.state["token_id"] == issued.state["token_id"]
    assert tokens.caller(issued.token) is None  # the old secret is dead at once
    assert tokens.caller(rotated.token) is not None

    tokens.revoke(SYSTEM, uuid.UUID(issued.state["token_id"]))
    assert tokens.caller(rotated.token) is None
    with pytest.raises(Conflict):
        tokens.rotate(BOOTSTRAP, uuid.UUID(issued.state["token_id"]))


def test_a_wrong_secret_or_a_malformed_token_names_nobody(tokens: TokenStore) -> None:
    issued = tokens.create(BOOTSTRAP, "auditor", [])
    _, token_id, secret = issued.token.split("_", 2)  # tk_<id>_<secret>: the secret may hold "_" too
    prefix = f"tk_{token_id}"
    assert tokens.caller(f"{prefix}_{'x' * len(secret)}") is None
    assert tokens.caller("not a token") is None
    assert tokens.caller(f"tk_{uuid.uuid4().hex}_{secret}") is None


def test_an_expired_token_names_nobody(servers: Settings, store: ApplicationHost, tokens: TokenStore) -> None:
    issued = tokens.create(BOOTSTRAP, "agent", [], expires_at=tokens.clock.now() + timedelta(hours=1))
    assert tokens.caller(issued.token) is not None
    later = TokenStore(servers.database_url or "", tokens.named_users, ShiftedClock(timedelta(hours=2)))
    try:
        assert later.caller(issued.token) is None
        shown = {t["token_id"]: t for t in later.list()}[issued.state["token_id"]]
        assert shown["status"] == "expired"
    finally:
        later.close()


def test_the_list_never_shows_a_secret(tokens: TokenStore) -> None:
    issued = tokens.create(BOOTSTRAP, "agent", [])
    listed = tokens.list()
    assert issued.state["token_id"] in {t["token_id"] for t in listed}
    assert all("secret" not in key and "hash" not in key for t in listed for key in t)
    assert not any(issued.token.split("_", 2)[2] in str(t) for t in listed)


def test_each_change_is_an_event_naming_who_made_it(tokens: TokenStore) -> None:
    issued = tokens.create(BOOTSTRAP, "agent", [])
    token_id = uuid.UUID(issued.state["token_id"])
    tokens.rotate(Actor("token", str(uuid.uuid4()), "admin"), token_id)
    tokens.revoke(SYSTEM, token_id)
    events = tokens.get(token_id)["events"]
    assert [e["type"] for e in events] == ["Token.Created", "Token.Rotated", "Token.Revoked"]
    assert [e["actor"]["kind"] for e in events] == ["bootstrap", "token", "system"]
    assert all("secret" not in str(e) for e in events)


def test_a_customer_token_takes_one_of_its_plans_named_users(store: ApplicationHost, tokens: TokenStore) -> None:
    silver = _contract(store, "crm-experts/silver")  # one named user
    first = tokens.create(BOOTSTRAP, "customer", [silver])
    with pytest.raises(Conflict) as refused:
        tokens.create(BOOTSTRAP, "customer", [silver])
    assert refused.value.detail["named_users"] == 1
    tokens.rotate(BOOTSTRAP, uuid.UUID(first.state["token_id"]))  # a rotation does not count twice
    tokens.revoke(BOOTSTRAP, uuid.UUID(first.state["token_id"]))
    tokens.create(BOOTSTRAP, "customer", [silver])  # the revoked one no longer counts


def test_two_concurrent_creations_cannot_both_take_the_last_named_user(store: ApplicationHost,
                                                                        tokens: TokenStore) -> None:
    silver = _contract(store, "crm-experts/silver")

    def create(_: int) -> str:
        try:
            tokens.create(BOOTSTRAP, "customer", [silver])
            return "created"
        except Conflict:
            return "refused"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(create, range(4)))
    assert outcomes == ["created", "refused", "refused", "refused"]
    assert [t["status"] for t in tokens.list() if str(silver) in t["contracts"]] == ["active"]


def test_a_token_is_bound_to_existing_contracts_and_only_a_customer_token_is(store: ApplicationHost,
                                                                            tokens: TokenStore) -> None:
    with pytest.raises(InvalidInput):
        tokens.create(BOOTSTRAP, "customer", [uuid.uuid4()])
    with pytest.raises(InvalidInput):
        tokens.create(BOOTSTRAP, "customer", [])
    with pytest.raises(InvalidInput):
        tokens.create(BOOTSTRAP, "agent", [_contract(store, "crm-experts/gold")])
    with pytest.raises(InvalidInput):
        tokens.create(BOOTSTRAP, "root", [])
    with pytest.raises(NotFound):
        tokens.revoke(BOOTSTRAP, uuid.uuid4())


def test_an_idempotency_key_of_a_token_change_is_refused_when_repeated(tokens: TokenStore) -> None:
    tokens.create(BOOTSTRAP, "agent", [], key="once")
    before = len(tokens.list())
    with pytest.raises(Conflict):
        tokens.create(BOOTSTRAP, "agent", [], key="once")
    assert len(tokens.list()) == before  # nothing recorded
    tokens.create(BOOTSTRAP, "agent", [], key="another")
