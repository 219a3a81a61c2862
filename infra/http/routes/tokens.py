"""The token routes (docs/design.md, Access): issue, list, read, rotate and revoke access
tokens. The secret is in the answer of an issue or a rotation only, once; an Idempotency-Key
on these is used once and never replayed (a repeat is 409), so no secret is ever kept."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Path
from fastapi.responses import Response

from infra.http import models
from infra.http.app import Calling
from infra.http.errors import Declared
from infra.http.models import problems

TokenId = Annotated[UUID, Path(description="a token id (UUID); any other text answers 404")]
OnceKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="used once: a repeat answers 409 (a token's answer holds its secret, which is never kept)")]


def routes(backend: Any) -> APIRouter:
    r = APIRouter(route_class=Declared, tags=["tokens"])

    @r.post("/tokens", status_code=201, response_model=models.IssuedToken, responses=problems(409))
    def create(body: models.NewToken, caller: Calling, key: OnceKey = None) -> dict[str, Any]:
        issued = backend.tokens.create(caller.actor, body.role, list(body.contracts), body.name, body.expires_at, key)
        return {**_shown(issued.state), "token": issued.token}

    @r.get("/tokens", response_model=models.Tokens)
    def listed() -> dict[str, Any]:
        return {"tokens": backend.tokens.list()}

    @r.get("/tokens/{token_id}", response_model=models.TokenHistory)
    def one(token_id: TokenId) -> dict[str, Any]:
        return dict(backend.tokens.get(token_id))

    @r.post("/tokens/{token_id}/rotate", response_model=models.IssuedToken, responses=problems(409))
    def rotate(token_id: TokenId, caller: Calling, key: OnceKey = None) -> dict[str, Any]:
        issued = backend.tokens.rotate(caller.actor, token_id, key)
        return {**_shown(issued.state), "token": issued.token}

    @r.delete("/tokens/{token_id}", status_code=204, response_class=Response, responses=problems(409))
    def revoke(token_id: TokenId, caller: Calling) -> Response:
        backend.tokens.revoke(caller.actor, token_id)
        return Response(status_code=204)

    return r


def _shown(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "status": "active"}
