"""`GET /metrics` in the Prometheus text format (prometheus-client), with the metric names of
docs/design.md: the pipeline's positions, lags and counts, read from PostgreSQL at each
scrape (infra/postgres/status.py; the rebuild gauges only while a rebuild is prepared),
and the command latency histogram, observed by the access middleware in every API process.
With several API processes (TICKETING_API_WORKERS > 1) the histogram is kept in
prometheus-client's multiprocess mode, so one scrape shows all of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from infra.postgres import status

COMMAND_SECONDS = Histogram("ticketing_command_seconds", "Time to answer a command, by route and status",
                            ["route", "status"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


class Pipeline(Collector):
    """The figures of `status.read`, as Prometheus metrics, read at each scrape."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def collect(self) -> Iterator[Any]:
        b = self.backend
        s = status.read(b.settings.database_url, b.settings.events_topic, b.projections, b.store.table,
                        b.settings.partitions)
        yield GaugeMetricFamily("ticketing_store_head_position", "The event store's last position", value=s.head)
        yield GaugeMetricFamily("ticketing_relay_position", "The last position the broker acknowledged",
                                value=s.relay_position)
        yield GaugeMetricFamily("ticketing_relay_lag_events", "Events stored but not yet published",
                                value=s.relay_lag_events)
        yield GaugeMetricFamily("ticketing_relay_lag_seconds", "Age of the oldest event not yet published",
                                value=s.relay_lag_seconds)
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "position": GaugeMetricFamily("ticketing_projection_position", "The position a read model consumed up to",
                                          labels=["projection"]),
            "lag_events": GaugeMetricFamily("ticketing_projection_lag_events", "Events a read model has not consumed",
                                            labels=["projection"]),
            "lag_seconds": GaugeMetricFamily("ticketing_projection_lag_seconds",
                                             "Age of the oldest event a read model has not consumed", labels=["projection"]),
            "applied": CounterMetricFamily("ticketing_projection_applied", "Events a read model applied",
                                           labels=["projection"]),
            "ignored": CounterMetricFamily("ticketing_projection_ignored", "Events a read model passed over",
                                           labels=["projection"]),
            "parked": CounterMetricFamily("ticketing_projection_parked",
                                          "Events a read model parked as dead letters, settled ones included",
                                          labels=["projection"]),
            "dead_letters": GaugeMetricFamily("ticketing_projection_dead_letters",
                                              "Dead letters of a read model still parked (neither retried nor discarded)",
                                              labels=["projection"]),
        }
        pending = GaugeMetricFamily("ticketing_notices_pending", "Notices decided but not yet published",
                                    labels=["topic"])
        rebuilds = (GaugeMetricFamily("ticketing_rebuild_position",
                                      "The store position a prepared rebuild's fill has applied up to",
                                      labels=["projection"]),
                    GaugeMetricFamily("ticketing_rebuild_target_position",
                                      "The store position a prepared rebuild's fill heads for", labels=["projection"]))
        for p in s.projections:
            for key, family in families.items():
                family.add_metric([p.name], getattr(p, key))
            for topic, count in p.notices_pending.items():
                pending.add_metric([topic], count)
            for family, value in zip(rebuilds, p.rebuild or (), strict=False):
                family.add_metric([p.name], value)
        yield from families.values()
        yield pending
        yield from rebuilds


def exposition(backend: Any) -> bytes:
    """The text a scrape gets: this process's (or, in multiprocess mode, every API process's)
    command histogram, and the pipeline's figures."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus-client leaves it unannotated
    else:
        registry.register(COMMAND_SECONDS)
    registry.register(Pipeline(backend))
    return generate_latest(registry)
