"""One table from error class to HTTP status, the JSON body every error answers with (the
`Problem` model), and the route class that declares in the OpenAPI schema every status a
route can answer: its own (`responses=`), those of its shared dependencies (each dependency
names its statuses once, as `statuses`), and those of the edge (the access middleware's 401
and 413, path-validation's 404, request validation's 422, an unreachable store's 503)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from domain.errors import ConcurrentChange, Conflict, DomainError, InvalidInput, NotFound
from infra.http import access
from infra.http.models import NO_NUL, problems
from infra.postgres.group_commit import StoreUnavailable
from infra.postgres.idempotency import Replayed

STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    ConcurrentChange: 409,
    Conflict: 409,
    InvalidInput: 422,
}
# The store or the read models cannot be reached: the client may try again later.
UNAVAILABLE = (StoreUnavailable, OperationalError, InterfaceError, psycopg.OperationalError,
               psycopg.InterfaceError)


class WaitTimeout(Exception):
    """A read model did not reach the asked position in time."""

    def __init__(self, projection: str, wanted: int, reached: int) -> None:
        super().__init__(f"projection {projection} reached {reached}, not {wanted}")
        self.detail = {"projection": projection, "wait_for": wanted, "reached": reached}


# Clearer words than the parser's for the refusals a client most often meets.
PROBLEMS = {
    "timezone_aware": "an instant needs a UTC offset (such as Z or +02:00): without one it names no instant",
    "datetime_from_date_parsing": "not an ISO-8601 instant",
    "datetime_parsing": "not an ISO-8601 instant",
}
_ID = re.compile(r"\{\w+_id\}")


def body(error: str, detail: Any = None) -> dict[str, Any]:
    """The JSON of every error answer (`models.Problem`)."""
    return {"error": error, "detail": detail}


def answers(*codes: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a shared dependency with the statuses it may answer, for `Declared` to publish."""

    def mark(dependency: Callable[..., Any]) -> Callable[..., Any]:
        dependency.statuses = codes  # type: ignore[attr-defined]  # read back by Declared routes
        return dependency

    return mark


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def edge_statuses(path: str, endpoint: Callable[..., Any], rules: list[access.Rule]) -> set[int]:
    """What a route may answer besides its own statuses: the edge's and its dependencies'."""
    codes = {401, 413}  # a token presented is always checked; the access middleware bounds every body
    if not all(r.public for r in rules):
        codes |= {422, 503}  # the parameters; the store and the read models
    if any(r.roles != access.ANYONE for r in rules):
        codes.add(403)  # a role the access table does not name for it
    if _ID.search(path):
        codes.add(404)  # an id that is no UUID (see `install`)
    dependant = get_dependant(path=path, call=endpoint)
    if dependant.body_params:
        codes.add(400)  # a body that cannot even be decoded
    for call in _calls(dependant):
        codes.update(getattr(call, "statuses", ()))
    return codes


class Declared(APIRoute):
    """A route that says who may call it and what it may answer: its rule comes from the access
    table (`access.RULES`; a route it does not name cannot be built), is applied before the
    route runs, and its OpenAPI operation lists every status it can answer, each with its body."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *,
                 responses: dict[int | str, dict[str, Any]] | None = None, **options: Any) -> None:
        methods = [m.upper() for m in options.get("methods") or ["GET"]]
        self.rules = {m: access.rule_of(m, path) for m in methods}
        declared = problems(*sorted(edge_statuses(path, endpoint, list(self.rules.values())))) | (responses or {})
        super().__init__(path, endpoint, responses=declared, **options)

    def get_route_handler(self) -> Callable[[Request], Any]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                await self._authorize(request)
            except access.Refused as refused:
                return JSONResponse(body(refused.message, refused.detail), status_code=refused.status)
            response: Response = await handle(request)
            return response

        return guarded

    async def _authorize(self, request: Request) -> None:
        caller = getattr(request.state, "caller", None)
        rule = self.rules[request.method]
        if caller is None or caller.role != "customer" or rule.owns == "none":
            access.authorize(rule, caller, request.method, self.path, lambda: (None, ""))
            return
        if rule.owns == "body":
            found = (access.body_contract(await request.body()), "contract")
        elif rule.owns == "contract":
            found = (_canonical(request.path_params.get("contract_id")), "contract")
        else:
            ticket = _canonical(request.path_params.get("ticket_id"))
            backend = request.app.state.backend
            contract = None if ticket is None else await run_in_threadpool(backend.store.contract_of_ticket, ticket)
            found = (contract, "ticket")
        access.authorize(rule, caller, request.method, self.path, lambda: found)


def _canonical(value: Any) -> str | None:
    try:
        return str(UUID(str(value)))
    except ValueError:
        return None


def _problem(error: Any) -> str:
    if error["type"] == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == NO_NUL:
        return "must not contain the NUL character"
    return str(PROBLEMS.get(error["type"], error["msg"]))


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc[1:])


def install(app: FastAPI) -> None:
    @app.exception_handler(Replayed)
    async def replayed(_: Request, exc: Replayed) -> JSONResponse:
        return JSONResponse(exc.answer, status_code=exc.status, headers={"Idempotent-Replayed": "true"})

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
        return JSONResponse(body(exc.message, exc.detail), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        ids = [e for e in errors if e["loc"][0] == "path" and str(e["loc"][-1]).endswith("_id")]
        if ids:  # an id that is no UUID names nothing: as unknown as an unknown one
            return JSONResponse(body(f"no such {_field(ids[0]['loc'])}"), status_code=404)
        detail = [{"field": _field(e["loc"]), "problem": _problem(e)} for e in errors]
        first = detail[0]
        return JSONResponse(body(f"invalid input: {first['field']}: {first['problem']}", detail), status_code=422)

    @app.exception_handler(WaitTimeout)
    async def timeout(_: Request, exc: WaitTimeout) -> JSONResponse:
        return JSONResponse(body("the read model did not reach that position in time", exc.detail), 504)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    for cls in UNAVAILABLE:
        @app.exception_handler(cls)
        async def unavailable(_: Request, exc: Exception) -> JSONResponse:
            return JSONResponse(body("the store is unavailable; try again (with the same Idempotency-Key)"),
                                status_code=503, headers={"Retry-After": "1"})
