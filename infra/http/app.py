"""The HTTP interface of docs/design.md: thin routes that parse, build a command
(domain/commands.py), run it through the host (which serialises, retries and keeps idempotent
answers), and answer with the position of what was recorded; queries read the read models."""

from __future__ import annotations

import hmac
import ipaddress
import json
import random
import re
import time
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

import structlog
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain import commands, values
from domain.actors import Actor, Caller
from domain.application import Recorded
from infra.http import access, errors, health, metrics, models
from infra.http.errors import Declared
from infra.http.models import problems
from infra.http.queries import ReadModels, Watermarks
from infra.postgres.idempotency import Keys, request_digest
from infra.postgres.recorder import Claim
from infra.postgres.store import ApplicationHost
from infra.postgres.tokens import TokenStore
from infra.settings import Settings

log = structlog.get_logger("http")
MAX_BODY = 1024 * 1024  # 1 MiB; a larger body answers 413
# FastAPI's own OpenTelemetry hooks, off: the API's numbers are its Prometheus metrics
# (GET /metrics), and left on, the hooks ask for the global providers on every request.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
ContractId = Annotated[UUID, Path(description="a contract id (UUID); any other text answers 404")]
TicketId = Annotated[UUID, Path(description="a ticket id (UUID); any other text answers 404")]


class Backend:
    """What the routes need: settings, the event store, the read models, the idempotency keys."""

    def __init__(self, settings: Settings, store: ApplicationHost, reads: ReadModels, projections: list[str],
                 keys: Keys, waits: Watermarks, tokens: TokenStore) -> None:
        self.settings, self.store, self.reads = settings, store, reads
        self.projections, self.keys, self.waits, self.tokens = projections, keys, waits, tokens
        self.app = store.app
        self.clock = store.app.clock

    def execute(self, build: Callable[[], commands.Command], claim: Claim | None) -> Recorded:
        """Build the command and run it (once per idempotency key, if it has one: a command
        refused as it is built is then judged against the key's kept answer, as any refusal)."""
        if claim is None:
            return self.store.handle(build())
        return self.keys.run(claim, lambda: self.store.handle(build(), claim))


# What a command on an existing aggregate may answer besides the edge's statuses.
COMMAND = problems(404, 409, 422)


def answer(recorded: Recorded, key: str | None = None, status: int = 200, extra: dict[str, Any] | None = None) -> Response:
    """The answer as a ready response: FastAPI then skips checking it against the route's
    response model (declared for the OpenAPI schema), which this shape always meets."""
    body = {key: recorded.aggregate_id, "position": recorded.position} if key else {"position": recorded.position}
    body |= extra or {}
    return Response(json.dumps(body, separators=(",", ":")).encode(), status_code=status,
                    media_type="application/json")


async def current(request: Request) -> Caller:
    """The request's caller, as the access middleware settled it (a route that runs has one:
    only /health answers a caller without a token, and it does not ask)."""
    caller: Caller = request.state.caller
    return caller


Calling = Annotated[Caller, Depends(current)]


def scope_of(caller: Caller) -> str:
    """Whose idempotency keys these are: the caller's token's, else the bootstrap admin's or the open API's."""
    return caller.actor.token_id or caller.actor.kind


def idempotent(answer_key: str | None = None) -> Any:
    """A dependency claiming the request's `Idempotency-Key`, if it has one."""

    @errors.answers(409, 422)  # still running; the same key with another request
    async def claim(request: Request, idempotency_key: Annotated[str | None, Header(
            min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
            description="1-255 visible ASCII characters; a repeat answers the kept answer")] = None,
                    ) -> Claim | None:
        if idempotency_key is None:
            return None
        b: Backend = request.app.state.backend
        raw = await request.body()
        parsed = await request.json() if raw.strip() else None
        digest = request_digest(request.method, request.url.path.lower(), parsed)
        status = request.scope["route"].status_code or 200
        return b.keys.claim(scope_of(request.state.caller), idempotency_key, digest, status, answer_key)

    return Depends(claim)


Keyed = Annotated[Claim | None, idempotent()]
NewContract = Annotated[Claim | None, idempotent("contract_id")]
NewTicket = Annotated[Claim | None, idempotent("ticket_id")]


def contract_routes(b: Backend) -> APIRouter:
    r = APIRouter(tags=["commands"], route_class=Declared)

    @r.post("/contracts", status_code=201, response_model=models.NewContract)
    def sign(body: models.SignContract, claim: NewContract, caller: Calling) -> Response:
        rec = b.execute(lambda: commands.Sign(
            customer=body.customer, plan=body.plan, starts_on=body.starts_on, time_zone=body.time_zone,
            holidays=tuple(body.holidays), at=body.at, actor=caller.actor), claim)
        return answer(rec, "contract_id", 201)

    @r.post("/contracts/{contract_id}/credits", response_model=models.Position, responses=COMMAND)
    def credits(contract_id: ContractId, body: models.AddCredits, claim: Keyed, caller: Calling) -> Response:
        return answer(b.execute(lambda: commands.BuyCredits(
            contract_id, credits=body.credits, at=body.at, actor=caller.actor), claim))

    @r.post("/contracts/{contract_id}/renew", response_model=models.Position, responses=COMMAND)
    def renew(contract_id: ContractId, claim: Keyed, caller: Calling, body: models.Because | None = None) -> Response:
        given = body or models.Because()
        return answer(b.execute(lambda: commands.RenewContract(
            contract_id, reason=given.reason, at=given.at, actor=caller.actor), claim))

    @r.post("/contracts/{contract_id}/cancel", response_model=models.Cancelled, responses=COMMAND)
    def cancel_contract(contract_id: ContractId, claim: Keyed, caller: Calling,
                        body: models.Because | None = None) -> Response:
        given = body or models.Because()
        recorded = b.execute(lambda: commands.CancelContract(
            contract_id, reason=given.reason, at=given.at, actor=caller.actor), claim)
        # The export the plan promises on leaving (datacrm: the database as a MySQL dump).
        promised = b.app.terms_of(b.app.contract(contract_id)).exit_export
        offer = {"export": {"format": promised, "href": f"/contracts/{contract_id}/export?format={promised}"}}
        return answer(recorded, extra=offer if promised else None)

    @r.post("/contracts/{contract_id}/erase", response_model=models.Position, responses=COMMAND,
            description="Erase a cancelled contract's personal data (crypto-shredding: its key is destroyed, so its"
                        " customer, titles, reporters, engineers and reasons read as null from now on; every figure"
                        " stays). Admin only. The `reason` stays readable: it must not name the person.")
    def erase(contract_id: ContractId, claim: Keyed, caller: Calling, body: models.Erasure | None = None) -> Response:
        given = body or models.Erasure()
        return answer(b.execute(lambda: commands.EraseContract(contract_id, reason=given.reason, actor=caller.actor),
                                claim))

    @r.post("/contracts/{contract_id}/maintenance", response_model=models.Position, responses=COMMAND)
    def maintenance(contract_id: ContractId, body: models.Maintenance, claim: Keyed, caller: Calling) -> Response:
        return answer(b.execute(lambda: commands.ScheduleMaintenance(
            contract_id, starts_at=body.starts_at, ends_at=body.ends_at, reason=body.reason, at=body.at,
            actor=caller.actor), claim))

    return r


def ticket_routes(b: Backend) -> APIRouter:
    r = APIRouter(tags=["commands"], route_class=Declared)

    @r.post("/tickets", status_code=201, response_model=models.NewTicket, responses=COMMAND)
    def open_ticket(body: models.OpenTicket, claim: NewTicket, caller: Calling) -> Response:
        rec = b.execute(lambda: commands.Open(
            contract_id=commands.as_id(body.contract_id), title=body.title, reporter=body.reporter, channel=body.channel,
            priority=body.priority, category=body.category, down_since=body.down_since, at=body.at,
            actor=caller.actor), claim)
        return answer(rec, "ticket_id", 201)

    @r.post("/tickets/{ticket_id}/classify", response_model=models.Position, responses=COMMAND)
    def classify(ticket_id: TicketId, body: models.Classify, claim: Keyed, caller: Calling) -> Response:
        return answer(b.execute(lambda: commands.ClassifyTicket(
            ticket_id, priority=body.priority, category=body.category, at=body.at, actor=caller.actor), claim))

    @r.post("/tickets/{ticket_id}/time", response_model=models.Position, responses=COMMAND)
    def time_entry(ticket_id: TicketId, body: models.TimeEntry, claim: Keyed, caller: Calling) -> Response:
        return answer(b.execute(lambda: commands.RecordTime(
            ticket_id, minutes=body.minutes, kind=body.kind, engineer=body.engineer, at=body.at,
            actor=caller.actor), claim))

    simple: dict[str, Callable[[UUID, models.Because, Actor], commands.Command]] = {
        "respond": lambda t, g, a: commands.Respond(t, at=g.at, actor=a),
        "resume": lambda t, g, a: commands.Resume(t, at=g.at, actor=a),
        "restore": lambda t, g, a: commands.Restore(t, at=g.at, actor=a),
        "pause": lambda t, g, a: commands.Pause(t, reason=g.reason, at=g.at, actor=a),
        "resolve": lambda t, g, a: commands.Resolve(t, reason=g.reason, at=g.at, actor=a),
        "reopen": lambda t, g, a: commands.Reopen(t, reason=g.reason, at=g.at, actor=a),
        "cancel": lambda t, g, a: commands.CancelTicket(t, reason=g.reason, at=g.at, actor=a),
    }
    for verb, build in simple.items():
        r.add_api_route(f"/tickets/{{ticket_id}}/{verb}", _simple(b, build), methods=["POST"], name=verb,
                        response_model=models.Position, responses=COMMAND)
    return r


def _simple(b: Backend, build: Callable[[UUID, models.Because, Actor], commands.Command]) -> Callable[..., Response]:
    """A route for a ticket command that takes only an optional reason and `at`."""

    def route(ticket_id: TicketId, claim: Keyed, caller: Calling,
              body: models.Because | None = None) -> Response:
        given = body or models.Because()
        return answer(b.execute(lambda: build(ticket_id, given, caller.actor), claim))

    return route


def query_routes(b: Backend) -> APIRouter:
    r = APIRouter(tags=["queries"], route_class=Declared)

    @r.get("/contracts/{contract_id}/history", response_model=models.History)
    def history(contract_id: ContractId, as_of: Annotated[models.Instant | None, Query(
            description="business time: events that happened at or before it; ISO-8601 with offset; default: now")] = None,
                known_at: Annotated[models.Instant | None, Query(
            description="commit time: only events the store had committed at or before it; default: all")] = None,
                ) -> dict[str, Any]:
        when = values.instant(as_of) if as_of else b.clock.now()
        latest = b.clock.now() + values.FUTURE_SKEW
        return b.store.history(contract_id, when, values.instant(known_at, latest) if known_at else None)

    @r.get("/contracts/{contract_id}/proof", response_model=models.Proof)
    def proof(contract_id: ContractId) -> dict[str, Any]:
        return b.store.proof(contract_id)

    @r.get("/health", response_model=models.Health, responses={
        503: {"model": models.Health, "description": "a part of the backend is down"}})
    async def health_check(request: Request) -> JSONResponse:
        checks = await health.checks(b)
        ok = all(c == "ok" for c in checks.values())
        if getattr(request.state, "caller", None) is None:  # no token: no more than ok or unavailable per part
            checks = {part: "ok" if state == "ok" else "unavailable" for part, state in checks.items()}
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    return r


def create_app(backend: Backend, extra_routers: list[APIRouter] | None = None) -> FastAPI:
    app = FastAPI(title="ticketing", version="1", description="Event-sourced support contracts: SLA, ledger, availability.",
                  telemetry=NO_TELEMETRY)
    app.state.backend = backend
    errors.install(app)
    app.include_router(contract_routes(backend))
    app.include_router(ticket_routes(backend))
    app.include_router(query_routes(backend))
    for router in extra_routers or []:
        app.include_router(router)
    for route in app.routes:
        if isinstance(route, APIRoute) and not isinstance(route, Declared):
            raise access.Unknown(f"{route.path} is no Declared route: it would escape the access table")
    app.add_middleware(AccessMiddleware, backend=backend)
    catalog = backend.app.catalog
    publish(app, {"plans": sorted(catalog), "channels": sorted({c for t in catalog.values() for c in t.channels})})
    return app


def publish(app: FastAPI, values_of: dict[str, list[str]]) -> None:
    """The OpenAPI schema, completed with what FastAPI cannot see: the catalog's plan ids and
    channels as the enums of the schemas marked with `models.CATALOG_MARK` (they are data, not
    code), and the bearer token that `AccessMiddleware` asks for on every path but the open ones
    (optional: without TICKETING_ADMIN_TOKEN the API is open)."""

    def schema() -> dict[str, Any]:
        if not app.openapi_schema:
            made = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _enum(made, values_of)
            by_path = {(m, re.sub(r":\w+}", "}", p)): r for (m, p), r in access.RULES.items()}
            made["components"]["securitySchemes"] = {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "an issued token (POST /tokens) or TICKETING_ADMIN_TOKEN; without any admin token"
                               " configured, a request without a token acts as admin (loopback only)"}}
            for path, operations in made["paths"].items():
                for method, operation in operations.items():
                    rule = by_path.get((method.upper(), path))
                    operation["security"] = [{"bearer": []}, {}] if rule is None or rule.public else [{"bearer": []}]
                    if rule is not None:
                        operation["x-roles"] = sorted(rule.roles)
            app.openapi_schema = made
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]  # FastAPI documents replacing openapi() this way


def _enum(node: Any, values_of: dict[str, list[str]]) -> None:
    """Replace every catalog mark in this JSON tree by the enum it names."""
    if isinstance(node, dict):
        if models.CATALOG_MARK in node:
            node["enum"] = values_of[node.pop(models.CATALOG_MARK)]
        for child in node.values():
            _enum(child, values_of)
    elif isinstance(node, list):
        for child in node:
            _enum(child, values_of)


def _loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class AccessMiddleware:
    """The edge of every request, as plain ASGI (no extra task per call): the Host check (only
    loopback names and TICKETING_ALLOWED_HOSTS: a DNS-rebinding page cannot reach the API), the
    caller (`access.settle`: a presented token is always checked), the body size limit, and one
    log line per request. The routes then apply their access rule (`errors.Declared`)."""

    def __init__(self, app: ASGIApp, backend: Backend) -> None:
        self.app, self.backend = app, backend
        self.admin_token = backend.settings.admin_token
        self.allowed = set(backend.settings.allowed_hosts)
        self.served: set[bytes] = set()  # Host headers that passed, as sent (at most 64)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        path = scope["path"]
        headers = dict(scope["headers"])
        try:
            self._check_host(headers.get(b"host"))
            caller = await self._caller(access.bearer(headers.get(b"authorization")))
            if caller is None and path != "/health":  # the schema and the docs too, once guarded
                raise access.Refused(401, "this API needs a bearer token (Authorization: Bearer ...)")
        except access.Refused as refused:
            refusal = JSONResponse(errors.body(refused.message, refused.detail), status_code=refused.status)
            await refusal(scope, receive, sending)
        else:
            scope.setdefault("state", {})["caller"] = caller
            await self._bounded(scope, receive, sending, headers)
        seconds = time.perf_counter() - started
        route = scope.get("route")
        if scope["method"] in ("POST", "DELETE") and route is not None:
            metrics.COMMAND_SECONDS.labels(getattr(route, "path", path), str(status["code"])).observe(seconds)
        log.info("request", method=scope["method"], path=path, status=status["code"],
                 ms=round(seconds * 1000, 2), request_id=f"{random.getrandbits(48):012x}")  # no syscall

    def _check_host(self, host: bytes | None) -> None:
        if host in self.served:  # a Host header already found to be ours
            return
        name = (host or b"").decode("latin-1").strip().lower()
        name = name[1:name.index("]")] if name.startswith("[") and "]" in name else name.rpartition(":")[0] or name
        if name in self.allowed or name == "localhost" or _loopback(name):
            if host is not None and len(self.served) < 64:
                self.served.add(host)
            return
        raise access.Refused(400, "the Host header names no host this API serves (set TICKETING_ALLOWED_HOSTS)",
                             {"host": name[:255]})

    async def _caller(self, presented: str | None) -> Caller | None:
        if presented and not (self.admin_token and hmac.compare_digest(presented.encode(), self.admin_token.encode())):
            kept, found = self.backend.tokens.kept_caller(presented)  # no thread hop for a kept token
            if not kept:
                found = await run_in_threadpool(self.backend.tokens.caller, presented)
            return access.settle(presented, self.admin_token, lambda _: found)
        return access.settle(presented, self.admin_token, lambda _: None)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        """Pass the request on with its body read up to the limit; beyond it, 413."""
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > MAX_BODY:
            await _too_large(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            size, more = size + len(chunks[-1]), message.get("more_body", False)
            if size > MAX_BODY:
                await _too_large(scope, receive, send)
                return
        await self.app(scope, _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}],
                                      receive), send)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(errors.body("the request body is larger than 1 MiB", {"limit": MAX_BODY}),
                            status_code=413)
    await response(scope, receive, send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
