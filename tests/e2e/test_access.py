"""Access over HTTP, on an API guarded by an admin token: every route x every role, with the
expected status derived from the one access table (infra/http/access.py RULES), and what a
user of tokens notices: rotation and revocation take effect on the next request in every API
process, expiry, the named-user limits of the plans, the Host check and the safe defaults."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from infra.http import access
from infra.http.errors import Declared
from infra.process import embedded
from tests.e2e.conftest import ADMIN_TOKEN
from tests.factories import contract, post, ticket
from tests.processes import Processes

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CALLERS = ("admin", "agent", "auditor", "customer", "other customer", "no token")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    """Two customers' contracts and tickets on the guarded API, and a token of each role."""

    url: str
    mine: str
    my_ticket: str
    theirs: str
    their_ticket: str
    tokens: dict[str, str]
    position: int  # the reads wait for the read models to reach it

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "no token":
            return {}
        return ADMIN if caller == "admin" else bearer(self.tokens[caller])


def issue(url: str, expect: int = 201, **body: Any) -> dict[str, Any]:
    made = httpx.post(f"{url}/tokens", json=body, headers=ADMIN)
    assert made.status_code == expect, made.text
    return dict(made.json())


@pytest.fixture(scope="module")
def world(guarded_api: str) -> World:
    with httpx.Client(base_url=guarded_api, headers=ADMIN) as admin:
        mine, theirs = contract(admin), contract(admin)
        my_ticket, their_ticket = ticket(admin, mine), ticket(admin, theirs)
        position = post(admin, f"/tickets/{my_ticket}/resolve", reason="fixed")["position"]  # it has a statement
    tokens = {role: issue(guarded_api, role=role)["token"] for role in ("agent", "auditor")}
    tokens["customer"] = issue(guarded_api, role="customer", contracts=[mine])["token"]
    tokens["other customer"] = issue(guarded_api, role="customer", contracts=[theirs])["token"]
    return World(guarded_api, mine, my_ticket, theirs, their_ticket, tokens, position)


def expected(rule: access.Rule, caller: str) -> int | None:
    """The status the access table promises this caller on this route; None: let through."""
    if caller == "no token":
        return None if rule.public else 401
    role = "customer" if caller.endswith("customer") else caller
    if caller == "other customer" and rule.owns != "none":
        return 404  # the object is another customer's: as unknown as an unknown id
    return None if role in rule.roles else 403


def request(world: World, method: str, path: str, caller: str) -> httpx.Response:
    """Call a route on the customer's own objects, with a body each command refuses (422) when
    it is let through, so nothing is recorded; token routes act on a throwaway token."""
    filled = path.replace("{plan_id:path}", "crm-experts/gold").replace("{contract_id}", world.mine)
    filled = filled.replace("{ticket_id}", world.my_ticket)
    if "{token_id}" in filled:
        filled = filled.replace("{token_id}", issue(world.url, role="agent")["token_id"])
    body: dict[str, Any] | None = None
    if method == "POST" and path == "/tickets":
        body = {"contract_id": world.mine, "title": "t", "reporter": "r", "at": "not an instant"}
    elif method == "POST" and path == "/tokens":
        body = {"role": "nobody"}
    elif method == "POST" and not path.endswith("/rotate"):
        body = {"at": "not an instant"}
    params = {"wait_for": world.position} if method == "GET" else None
    return httpx.request(method, f"{world.url}{filled}", json=body, params=params, headers=world.headers(caller),
                         timeout=30)


@pytest.mark.parametrize("caller", CALLERS)
def test_every_route_answers_each_caller_as_the_access_table_says(world: World, caller: str) -> None:
    wrong = []
    for (method, path), rule in sorted(access.RULES.items()):
        answer = request(world, method, path, caller)
        want = expected(rule, caller)
        if want is None:
            ok = answer.status_code not in (401, 403, 404) and answer.status_code < 500
        else:
            ok = answer.status_code == want and "error" in answer.json()
        if not ok:
            wrong.append(f"{method} {path}: {answer.status_code} (expected {want or 'let through'}) {answer.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_the_access_table_names_every_route_and_no_route_is_missing(world: World) -> None:
    schema = httpx.get(f"{world.url}/openapi.json", headers=ADMIN).json()
    published = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    declared = {(m, re.sub(r":\w+}", "}", p)) for m, p in access.RULES}
    assert published == declared


def test_a_route_the_access_table_does_not_name_cannot_be_built() -> None:
    with pytest.raises(access.Unknown):
        Declared("/contracts/{contract_id}/secrets", lambda contract_id: None, methods=["GET"])


def test_a_customer_opens_cancels_and_reopens_its_tickets_and_nothing_else(world: World) -> None:
    me = world.headers("customer")
    opened = httpx.post(f"{world.url}/tickets", headers=me,
                        json={"contract_id": world.mine, "title": "Printer on fire", "reporter": "ana"})
    assert opened.status_code == 201, opened.text
    tid = opened.json()["ticket_id"]
    agent = world.headers("agent")
    assert httpx.post(f"{world.url}/tickets/{tid}/resolve", headers=agent, json={}).status_code == 200
    assert httpx.post(f"{world.url}/tickets/{tid}/reopen", headers=me, json={}).status_code == 200
    assert httpx.post(f"{world.url}/tickets/{tid}/cancel", headers=me, json={}).status_code == 200
    refused = httpx.post(f"{world.url}/tickets/{tid}/classify", headers=me, json={"priority": "P1"})
    assert refused.status_code == 403 and refused.json()["detail"]["role"] == "customer"
    # another customer's contract: the same 404 as an unknown contract, whatever the verb
    for method, path in (("GET", f"/contracts/{world.theirs}/ledger"), ("POST", f"/contracts/{world.theirs}/cancel"),
                         ("GET", f"/tickets/{world.their_ticket}/sla"), ("POST", f"/tickets/{world.their_ticket}/cancel")):
        assert httpx.request(method, f"{world.url}{path}", headers=me, json={}).status_code == 404, path
    other = httpx.post(f"{world.url}/tickets", headers=me,
                       json={"contract_id": world.theirs, "title": "t", "reporter": "r"})
    assert other.status_code == 404
    unknown = httpx.post(f"{world.url}/tickets", headers=me,
                         json={"contract_id": "00000000-0000-4000-8000-000000000000", "title": "t", "reporter": "r"})
    assert unknown.status_code == 404 and unknown.json()["error"] == other.json()["error"].replace(
        world.theirs, "00000000-0000-4000-8000-000000000000")


def test_a_token_change_takes_effect_on_the_next_request_in_every_api_process(world: World, backend: Processes) -> None:
    issued = issue(world.url, role="auditor")
    elsewhere = f"{backend.base_url}/contracts/{world.mine}/history"  # the session's other API process
    assert httpx.get(elsewhere, headers=bearer(issued["token"])).status_code == 200

    rotated = httpx.post(f"{world.url}/tokens/{issued['token_id']}/rotate", headers=ADMIN)
    assert rotated.status_code == 200 and rotated.json()["token_id"] == issued["token_id"]
    assert httpx.get(elsewhere, headers=bearer(issued["token"])).status_code == 401
    assert httpx.get(elsewhere, headers=bearer(rotated.json()["token"])).status_code == 200

    assert httpx.delete(f"{world.url}/tokens/{issued['token_id']}", headers=ADMIN).status_code == 204
    assert httpx.get(elsewhere, headers=bearer(rotated.json()["token"])).status_code == 401
    again = httpx.delete(f"{world.url}/tokens/{issued['token_id']}", headers=ADMIN)
    assert again.status_code == 409 and "already revoked" in again.json()["error"]


def test_an_expired_token_is_refused(world: World) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    issued = issue(world.url, role="agent", expires_at=soon)
    assert httpx.get(f"{world.url}/tickets/{world.my_ticket}", headers=bearer(issued["token"])).status_code == 200
    time.sleep(2.5)
    assert httpx.get(f"{world.url}/tickets/{world.my_ticket}", headers=bearer(issued["token"])).status_code == 401
    listed = {t["token_id"]: t for t in httpx.get(f"{world.url}/tokens", headers=ADMIN).json()["tokens"]}
    assert listed[issued["token_id"]]["status"] == "expired"


def test_the_token_list_shows_no_secret_and_an_issued_secret_is_shown_once(world: World) -> None:
    issued = issue(world.url, role="agent", name="night shift")
    listed = httpx.get(f"{world.url}/tokens", headers=ADMIN)
    assert listed.status_code == 200
    assert issued["token"].split("_", 2)[2] not in listed.text  # tk_<id>_<secret>
    shown = {t["token_id"]: t for t in listed.json()["tokens"]}[issued["token_id"]]
    assert shown["name"] == "night shift" and shown["status"] == "active" and "token" not in shown
    events = httpx.get(f"{world.url}/tokens/{issued['token_id']}", headers=bearer(world.tokens["auditor"]))
    assert [e["type"] for e in events.json()["events"]] == ["Token.Created"]
    assert events.json()["events"][0]["actor"] == {"kind": "bootstrap"}


def test_a_plans_named_users_limit_its_contracts_customer_tokens(world: World) -> None:
    with httpx.Client(base_url=world.url, headers=ADMIN) as admin:
        silver = contract(admin, "crm-experts/silver")  # "1 usuario soportado"
    first = issue(world.url, role="customer", contracts=[silver])
    refused = issue(world.url, 409, role="customer", contracts=[silver])
    assert refused["detail"]["named_users"] == 1 and refused["detail"]["contract_id"] == silver
    assert httpx.post(f"{world.url}/tokens/{first['token_id']}/rotate", headers=ADMIN).status_code == 200
    assert httpx.delete(f"{world.url}/tokens/{first['token_id']}", headers=ADMIN).status_code == 204
    issue(world.url, role="customer", contracts=[silver])  # the revoked one no longer counts


def test_a_token_idempotency_key_is_used_once_and_never_replayed(world: World) -> None:
    headers = {**ADMIN, "Idempotency-Key": "token-once"}
    first = httpx.post(f"{world.url}/tokens", json={"role": "agent"}, headers=headers)
    assert first.status_code == 201
    repeat = httpx.post(f"{world.url}/tokens", json={"role": "agent"}, headers=headers)
    assert repeat.status_code == 409 and first.json()["token"] not in repeat.text


def test_idempotency_keys_are_the_callers_own(world: World) -> None:
    body = {"contract_id": world.mine, "title": "Same key, two callers", "reporter": "r"}
    answers = [httpx.post(f"{world.url}/tickets", json=body, headers={**world.headers(c), "Idempotency-Key": "k-1"})
               for c in ("agent", "customer", "agent")]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert answers[0].json() == answers[2].json() and answers[2].headers.get("Idempotent-Replayed") == "true"
    assert answers[1].json()["ticket_id"] != answers[0].json()["ticket_id"]


def test_a_host_that_is_neither_loopback_nor_allowed_is_refused(world: World, backend: Processes) -> None:
    refused = httpx.get(f"{world.url}/health", headers={"Host": "rebound.example"})
    assert refused.status_code == 400 and "Host" in refused.json()["error"]
    port = embedded.free_port()
    env = dict(backend.env, TICKETING_HTTP_PORT=str(port), TICKETING_ADMIN_TOKEN=ADMIN_TOKEN,
               TICKETING_ALLOWED_HOSTS="api.example, tickets.example")
    proc = subprocess.Popen([sys.executable, "-m", "infra.process.cli", "api"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        Processes(backend.settings.__class__(http_port=port)).wait_healthy(60)
        allowed = httpx.get(f"http://127.0.0.1:{port}/tickets/{world.my_ticket}", headers={**ADMIN, "Host": "api.example"})
        assert allowed.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/health", headers={"Host": "evil.example"}).status_code == 400
    finally:
        proc.terminate()
        proc.wait(10)


def test_an_api_beyond_loopback_without_an_admin_token_refuses_to_start(backend: Processes) -> None:
    env = {k: v for k, v in backend.env.items() if k != "TICKETING_ADMIN_TOKEN"}
    for command in ("api", "run"):
        started = subprocess.run([sys.executable, "-m", "infra.process.cli", command], capture_output=True, text=True,
                                 env=dict(env, TICKETING_HTTP_HOST="0.0.0.0", TICKETING_HTTP_PORT=str(embedded.free_port())),
                                 timeout=60)
        assert started.returncode != 0 and "TICKETING_ADMIN_TOKEN" in started.stderr, (command, started.stderr)


def test_every_event_names_the_caller_whose_command_recorded_it(world: World, backend: Processes) -> None:
    admin, agent = world.headers("admin"), world.headers("agent")
    signed = httpx.post(f"{world.url}/contracts", headers=admin,
                        json={"customer": "Acme", "plan": "crm-experts/gold", "starts_on": "2026-01-01"}).json()
    cid = signed["contract_id"]
    customer = issue(world.url, role="customer", contracts=[cid])
    tid = httpx.post(f"{world.url}/tickets", headers=bearer(customer["token"]),
                     json={"contract_id": cid, "title": "t", "reporter": "r"}).json()["ticket_id"]
    assert httpx.post(f"{world.url}/tickets/{tid}/classify", headers=agent, json={"priority": "P2"}).status_code == 200
    open_api = httpx.post(f"{backend.base_url}/tickets/{tid}/respond", json={})  # the session's open API
    assert open_api.status_code == 200
    events = httpx.get(f"{world.url}/contracts/{cid}/history", headers=admin).json()["events"]
    agent_id = next(t["token_id"] for t in httpx.get(f"{world.url}/tokens", headers=admin).json()["tokens"]
                    if t["role"] == "agent" and world.tokens["agent"].startswith(f"tk_{t['token_id'].replace('-', '')}"))
    assert [(e["type"], e["actor"]) for e in events] == [
        ("Contract.Signed", {"kind": "bootstrap"}),
        ("Ticket.Opened", {"kind": "token", "token_id": customer["token_id"], "role": "customer"}),
        ("Ticket.Classified", {"kind": "token", "token_id": agent_id, "role": "agent"}),
        ("Ticket.Responded", {"kind": "open"}),
    ]


def test_the_tokens_command_issues_lists_rotates_and_revokes(world: World, backend: Processes) -> None:
    def tokens(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "infra.process.cli", "tokens", *args], env=backend.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    issued = json.loads(tokens("create", "--role", "customer", "--contract", world.mine, "--name", "from the shell"))
    mine = f"{world.url}/contracts/{world.mine}"
    assert httpx.get(mine, headers=bearer(issued["token"])).status_code == 200
    assert issued["token_id"] in tokens("list") and issued["token"] not in tokens("list")
    rotated = json.loads(tokens("rotate", issued["token_id"]))
    assert httpx.get(mine, headers=bearer(issued["token"])).status_code == 401
    assert httpx.get(mine, headers=bearer(rotated["token"])).status_code == 200
    tokens("revoke", issued["token_id"])
    assert httpx.get(mine, headers=bearer(rotated["token"])).status_code == 401
    events = httpx.get(f"{world.url}/tokens/{issued['token_id']}", headers=ADMIN).json()["events"]
    assert [e["actor"] for e in events] == [{"kind": "system"}] * 3
    refused = subprocess.run([sys.executable, "-m", "infra.process.cli", "tokens", "create", "--role", "customer"],
                             env=backend.env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "contracts" in refused.stderr
