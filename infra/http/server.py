"""Builds the API process's app from settings: the store, the read-model pool, the routes."""

from __future__ import annotations

from fastapi import FastAPI

from infra import postgres, wiring
from infra.http.app import Backend, create_app
from infra.http.readmodels import ReadModels
from infra.settings import Settings


def build_app(settings: Settings) -> FastAPI:
    assert settings.database_url
    store = wiring.event_store(settings)
    reads = ReadModels(postgres.make_pool(settings.database_url, max_size=16, name="reads"),
                       settings.events_topic)
    backend = Backend(settings, store, reads, sorted(wiring.PROJECTIONS))
    return create_app(backend, wiring.extra_routers(backend))


def app_from_env() -> FastAPI:
    """The factory uvicorn calls in each worker process."""
    from infra import logging as logs

    settings = Settings.from_env()
    logs.configure(settings.json_logs)
    return build_app(settings)
