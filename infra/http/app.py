"""The HTTP interface of DESIGN section 5: thin routes that parse, call the application, and
answer with the position of what was recorded; queries read the read models."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import JSONResponse
from kafka import KafkaConsumer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain import values
from domain.application import Recorded
from infra.http import errors, models
from infra.http.readmodels import ReadModels
from infra.settings import Settings
from infra.store import EventStore

log = structlog.get_logger("http")
HEARTBEAT_FRESH = 10  # seconds


class Backend:
    """What the routes need: settings, the event store, the read models."""

    def __init__(self, settings: Settings, store: EventStore, reads: ReadModels,
                 projections: list[str]) -> None:
        self.settings, self.store, self.reads = settings, store, reads
        self.projections = projections
        self.app = store.app
        self.clock = store.app.clock


def answer(recorded: Recorded, key: str | None = None) -> dict[str, Any]:
    return {key: recorded.aggregate_id, "position": recorded.position} if key else {"position": recorded.position}


def command_routes(b: Backend) -> APIRouter:
    r = APIRouter(tags=["commands"])
    app = b.app

    @r.post("/contracts", status_code=201)
    def sign(body: models.SignContract) -> dict[str, Any]:
        rec = app.sign_contract(body.customer, body.plan, body.starts_on, body.time_zone,
                                [d.isoformat() for d in body.holidays], body.at)
        return answer(rec, "contract_id")

    @r.post("/contracts/{contract_id}/credits")
    def credits(contract_id: str, body: models.AddCredits) -> dict[str, Any]:
        return answer(app.add_credits(contract_id, body.credits, body.at))

    @r.post("/contracts/{contract_id}/renew")
    def renew(contract_id: str, body: models.Reason | None = None) -> dict[str, Any]:
        body = body or models.Reason()
        return answer(app.renew_contract(contract_id, body.reason, body.at))

    @r.post("/contracts/{contract_id}/cancel")
    def cancel_contract(contract_id: str, body: models.Reason | None = None) -> dict[str, Any]:
        body = body or models.Reason()
        return answer(app.cancel_contract(contract_id, body.reason, body.at))

    @r.post("/contracts/{contract_id}/maintenance")
    def maintenance(contract_id: str, body: models.Maintenance) -> dict[str, Any]:
        return answer(app.schedule_maintenance(contract_id, body.starts_at, body.ends_at, body.reason, body.at))

    @r.post("/tickets", status_code=201)
    def open_ticket(body: models.OpenTicket) -> dict[str, Any]:
        rec = app.open_ticket(body.contract_id, body.title, body.reporter, body.channel,
                              body.priority, body.category, body.down_since, body.at)
        return answer(rec, "ticket_id")

    @r.post("/tickets/{ticket_id}/classify")
    def classify(ticket_id: str, body: models.Classify) -> dict[str, Any]:
        return answer(app.classify(ticket_id, body.priority, body.category, body.at))

    @r.post("/tickets/{ticket_id}/time")
    def time_entry(ticket_id: str, body: models.TimeEntry) -> dict[str, Any]:
        return answer(app.record_time(ticket_id, body.minutes, body.kind, body.engineer, body.at))

    simple: dict[str, Callable[..., Recorded]] = {
        "respond": lambda t, b: app.respond(t, b.at),
        "resume": lambda t, b: app.resume(t, b.at),
        "restore": lambda t, b: app.restore(t, b.at),
        "pause": lambda t, b: app.pause(t, b.reason, b.at),
        "resolve": lambda t, b: app.resolve(t, b.reason, b.at),
        "reopen": lambda t, b: app.reopen(t, b.reason, b.at),
        "cancel": lambda t, b: app.cancel_ticket(t, b.reason, b.at),
    }
    for verb, call in simple.items():
        def route(ticket_id: str, body: models.Reason | None = None, _call: Any = call) -> dict[str, Any]:
            return answer(_call(ticket_id, body or models.Reason()))

        r.add_api_route(f"/tickets/{{ticket_id}}/{verb}", route, methods=["POST"], name=verb)
    return r


def query_routes(b: Backend) -> APIRouter:
    r = APIRouter(tags=["queries"])

    @r.get("/contracts/{contract_id}/history")
    def history(contract_id: str, as_of: str | None = Query(None, description="ISO-8601 instant")) -> dict[str, Any]:
        when = values.instant(as_of) if as_of else b.clock.now()
        return b.store.history(contract_id, when)

    @r.get("/health")
    def health() -> JSONResponse:
        checks = health_checks(b)
        ok = all(c == "ok" for c in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    return r


def health_checks(b: Backend) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        b.reads.one("SELECT 1")
        checks["store"] = "ok"
    except psycopg.Error as exc:
        checks["store"] = f"down: {exc}"
    try:
        consumer = KafkaConsumer(bootstrap_servers=b.settings.kafka_bootstrap, request_timeout_ms=3000)
        consumer.topics()
        consumer.close()
        checks["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means the broker is not usable
        checks["broker"] = f"down: {exc}"
    row = b.reads.one("SELECT extract(epoch FROM now() - beat_at) AS age FROM relay.heartbeat WHERE topic = %s",
                      (b.settings.events_topic,))
    checks["relay"] = "ok" if row and float(row["age"]) < HEARTBEAT_FRESH else "no recent heartbeat"
    for name in b.projections:
        try:
            row = b.reads.one(f"SELECT extract(epoch FROM now() - beat_at) AS age FROM proj_{name}.heartbeat")
        except psycopg.Error:
            row = None
        fresh = row is not None and row["age"] is not None and float(row["age"]) < HEARTBEAT_FRESH
        checks[f"projection:{name}"] = "ok" if fresh else "no recent heartbeat"
    return checks


def create_app(backend: Backend, extra_routers: list[APIRouter] | None = None) -> FastAPI:
    app = FastAPI(title="ticketing", version="1", description="Event-sourced support contracts: SLA, ledger, availability.")
    errors.install(app)
    app.include_router(command_routes(backend))
    app.include_router(query_routes(backend))
    for router in extra_routers or []:
        app.include_router(router)
    app.add_middleware(AccessMiddleware, token=backend.settings.admin_token)
    return app


OPEN_PATHS = ("/health", "/docs", "/openapi.json")


class AccessMiddleware:
    """Bearer-token check and one log line per request, as plain ASGI (no extra task per call)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token
        self.expected = f"Bearer {token}".encode() if token else None

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
        if self.expected and path not in OPEN_PATHS and dict(scope["headers"]).get(b"authorization") != self.expected:
            await JSONResponse(errors.body("missing or wrong bearer token"), status_code=401)(scope, receive, sending)
        else:
            await self.app(scope, receive, sending)
        log.info("request", method=scope["method"], path=path, status=status["code"],
                 ms=round((time.perf_counter() - started) * 1000, 2), request_id=uuid.uuid4().hex[:12])
