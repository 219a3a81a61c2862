"""Builds the API process's app from settings: the store, the pools, the routes."""

from __future__ import annotations

from fastapi import FastAPI

from infra import postgres
from infra.http.app import Backend, create_app
from infra.http.queries import ReadModels, Watermarks
from infra.http.routes import ROUTES
from infra.postgres.idempotency import Keys
from infra.postgres.store import ApplicationHost
from infra.postgres.token_cache import TokenCache
from infra.postgres.tokens import TokenStore
from infra.process.catalog import load_catalog
from infra.registry import PROJECTIONS
from infra.settings import Settings


def build_app(settings: Settings) -> FastAPI:
    assert settings.database_url
    url = settings.database_url
    store_pool, aux_pool, reads_pool = settings.api_pools()
    store = ApplicationHost(url, load_catalog(), settings.clock, pool_size=store_pool, aux_pool=aux_pool)
    reads = ReadModels(postgres.make_pool(url, max_size=reads_pool, name="reads"), settings.events_topic)
    projections = sorted(PROJECTIONS)
    keys = Keys(store.pool, store.schema)
    waits = Watermarks(url, settings.events_topic, projections, store.table)
    tokens = TokenStore(url, store.named_users, settings.clock, store.keys, TokenCache(url).start())
    backend = Backend(settings, store, reads, projections, keys, waits, tokens)
    return create_app(backend, [routes(backend) for routes in ROUTES])


def app_from_env() -> FastAPI:
    """The factory uvicorn calls in each worker process."""
    from infra.process import lifeline
    from infra.process import logging as logs

    lifeline.supervised()
    settings = Settings.from_env()
    logs.configure(settings.json_logs)
    return build_app(settings)
