"""One table from error class to HTTP status, and the JSON body every error answers with."""

from __future__ import annotations

from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from domain.errors import ConcurrentChange, Conflict, DomainError, InvalidInput, NotFound
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


def body(error: str, detail: Any = None) -> dict[str, Any]:
    return {"error": error, "detail": detail}


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
        detail = [{"field": _field(e["loc"]), "problem": e["msg"]} for e in errors]
        return JSONResponse(body("invalid input", detail), status_code=422)

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
