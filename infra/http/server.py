"""Builds the API process's app from settings: the store, the pools, the routes."""

from __future__ import annotations

from fastapi import FastAPI

from infra import postgres, wiring
from infra.catalog import load_catalog
from infra.http.app import Backend, create_app
from infra.http.readmodels import ReadModels, Watermarks
from infra.idempotency import Keys
from infra.settings import Settings
from infra.store import EventStore


def build_app(settings: Settings) -> FastAPI:
    assert settings.database_url
    url = settings.database_url
    store_pool, aux_pool, reads_pool = settings.api_pools()
    store = EventStore(url, load_catalog(), settings.clock, pool_size=store_pool, aux_pool=aux_pool)
    reads = ReadModels(postgres.make_pool(url, max_size=reads_pool, name="reads"), settings.events_topic)
    projections = sorted(wiring.PROJECTIONS)
    keys = Keys(store.pool, store.schema)
    waits = Watermarks(url, settings.events_topic, projections, store.table)
    backend = Backend(settings, store, reads, projections, keys, waits)
    return create_app(backend, wiring.extra_routers(backend))


def app_from_env() -> FastAPI:
    """The factory uvicorn calls in each worker process."""
    from infra import lifeline
    from infra import logging as logs

    lifeline.supervised()
    settings = Settings.from_env()
    logs.configure(settings.json_logs)
    return build_app(settings)
