"""A worker's Prometheus metrics, served at `/metrics` on its health port (POKEWATCH_HEALTH_PORT).

Each worker process has its own registry:

| metric | type | labels | what |
|---|---|---|---|
| `pokewatch_worker_messages_total` | counter | stream, outcome | processed, expired, dead_lettered, failed |
| `pokewatch_worker_batch_duration_seconds` | histogram | stream | one batch: validation, processing, the transaction |
| `pokewatch_worker_batch_messages` | histogram | stream | entries per batch |
| `pokewatch_worker_claimed_messages_total` | counter | stream | entries claimed from another (dead or slow) replica |
| `pokewatch_worker_dead_letters_total` | counter | stream, reason | by kind of reason (dead_letters.category) |
| `pokewatch_worker_info` | gauge (1) | role, replica, version | who this is and which model version it serves |
| `pokewatch_worker_model_version` | gauge | | the served version as a number (model replicas) |
| `pokewatch_worker_model_load_seconds` | gauge | | how long the last model load took |
| `pokewatch_worker_model_reload_failures_total` | counter | | published versions this replica failed to load |
| `pokewatch_worker_heartbeat_age_seconds` | gauge | | since its last heartbeat reached Redis |

plus FastStream's own (`faststream_received_messages_total`, ...) from its
Prometheus middleware. Values that the worker keeps anyway (version, load
time, failures) are read when scraped, not pushed on every change. No card id
is ever a label value: labels are bounded (streams, outcomes, reason kinds).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from workers.dead_letters import CATEGORIES, category

OUTCOMES = ("processed", "expired", "dead_lettered", "failed")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Observed(Protocol):
    role: str
    replica_id: str
    last_load_s: float | None
    reload_failures: int
    last_beat_ok: float | None

    def model_version(self) -> str | None: ...


class _State(Collector):
    """What the worker already knows, read at scrape time."""

    def __init__(self, worker: Observed) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        w = self.worker
        version = w.model_version()
        info = GaugeMetricFamily(
            "pokewatch_worker_info",
            "this replica: role, id and served model version",
            labels=["role", "replica", "version"],
        )
        info.add_metric([w.role, w.replica_id, version or ""], 1)
        yield info
        if version is not None and version.isdigit():
            yield GaugeMetricFamily("pokewatch_worker_model_version", "served model version", value=int(version))
        if w.last_load_s is not None:
            yield GaugeMetricFamily("pokewatch_worker_model_load_seconds", "last model load", value=w.last_load_s)
        yield CounterMetricFamily(
            "pokewatch_worker_model_reload_failures", "published versions that failed to load", value=w.reload_failures
        )
        if w.last_beat_ok is not None:
            age = time.monotonic() - w.last_beat_ok
            yield GaugeMetricFamily("pokewatch_worker_heartbeat_age_seconds", "since the last heartbeat", value=age)


class WorkerMetrics:
    """The registry of one worker process and the instruments its loop updates."""

    def __init__(self, worker: Observed) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("pokewatch_worker_messages", "entries by outcome", ["stream", "outcome"], registry=r)
        self.batch_seconds = Histogram(
            "pokewatch_worker_batch_duration_seconds", "one batch", ["stream"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_size = Histogram(
            "pokewatch_worker_batch_messages", "entries per batch", ["stream"], buckets=BATCH_BUCKETS, registry=r
        )
        self.claimed = Counter("pokewatch_worker_claimed_messages", "entries claimed", ["stream"], registry=r)
        self.dead_letters = Counter(
            "pokewatch_worker_dead_letters", "dead letters by kind of reason", ["stream", "reason"], registry=r
        )
        r.register(_State(worker))

    def prepare(self, streams: list[str]) -> None:
        """Every series at zero from the start, so a first increment shows as an increase."""
        for stream in streams:
            for outcome in OUTCOMES:
                self.messages.labels(stream, outcome)
            for reason in {kind for _, kind in CATEGORIES} | {"other"}:
                self.dead_letters.labels(stream, reason)
            self.claimed.labels(stream)

    def batch(
        self, stream: str, size: int, seconds: float, processed: int, expired: int, failed: int, claimed: bool
    ) -> None:
        self.batch_size.labels(stream).observe(size)
        self.batch_seconds.labels(stream).observe(seconds)
        for outcome, n in (("processed", processed), ("expired", expired), ("failed", failed)):
            if n:
                self.messages.labels(stream, outcome).inc(n)
        if claimed:
            self.claimed.labels(stream).inc(size)

    def dead_lettered(self, stream: str, reason: str) -> None:
        self.messages.labels(stream, "dead_lettered").inc()
        self.dead_letters.labels(stream, category(reason)).inc()

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


def middleware(metrics: WorkerMetrics, app_name: str) -> Any:
    """FastStream's Prometheus middleware on the worker's registry."""
    from faststream.redis.prometheus import RedisPrometheusMiddleware

    return RedisPrometheusMiddleware(registry=metrics.registry, app_name=app_name)
