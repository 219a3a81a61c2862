"""GET /metrics: Prometheus text format (infra/http/metrics.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from infra.http import metrics
from infra.http.errors import Declared


def routes(backend: Any) -> APIRouter:
    r = APIRouter(route_class=Declared, tags=["operations"])

    @r.get("/metrics", response_class=Response,
           responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                            "description": "the metrics, in the Prometheus text format"}})
    def scrape() -> Response:
        return Response(metrics.exposition(backend), media_type=CONTENT_TYPE_LATEST)

    return r
