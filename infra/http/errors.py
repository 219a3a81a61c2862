"""One table from error class to HTTP status, and the JSON body every error answers with."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from domain.errors import ConcurrentChange, Conflict, DomainError, InvalidInput, NotFound

STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    ConcurrentChange: 409,
    Conflict: 409,
    InvalidInput: 422,
}


class WaitTimeout(Exception):
    """A read model did not reach the asked position in time."""

    def __init__(self, projection: str, wanted: int, reached: int) -> None:
        super().__init__(f"projection {projection} reached {reached}, not {wanted}")
        self.detail = {"projection": projection, "wait_for": wanted, "reached": reached}


def body(error: str, detail: Any = None) -> dict[str, Any]:
    return {"error": error, "detail": detail}


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
        return JSONResponse(body(exc.message, exc.detail), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {"field": ".".join(str(p) for p in e["loc"][1:]), "problem": e["msg"]}
            for e in exc.errors()
        ]
        return JSONResponse(body("invalid input", detail), status_code=422)

    @app.exception_handler(WaitTimeout)
    async def timeout(_: Request, exc: WaitTimeout) -> JSONResponse:
        return JSONResponse(body("the read model did not reach that position in time", exc.detail), 504)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)
