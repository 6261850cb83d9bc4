"""`pokewatch exporter`: what no single replica can report, as Prometheus metrics, from one process.

Every replica could read the streams' lengths and lags, but then every
replica would report them and each series would be counted N times. One
exporter (one replica in Kubernetes; `pokewatch up` runs one) reads them on
each scrape, on its own read-only Redis user (`monitor`):

| metric | labels | what |
|---|---|---|
| `pokewatch_stream_length_entries` | stream | entries kept (streams are capped) |
| `pokewatch_stream_group_lag_entries` | stream, group | entries not yet delivered to the group |
| `pokewatch_stream_group_pending_entries` | stream, group | delivered, not yet acked |
| `pokewatch_stream_group_oldest_pending_age_seconds` | stream, group | age of the oldest pending entry |
| `pokewatch_stream_group_consumers` | stream, group | consumers in the group |
| `pokewatch_replica_info` | replica, role, version | 1 per live worker replica, with its served version |
| `pokewatch_replica_heartbeat_age_seconds` | replica, role | since each replica's last heartbeat |
| `pokewatch_replica_model_load_seconds` | replica | a model replica's last load |
| `pokewatch_pipeline_last_success_timestamp_seconds` | source | when the newest recorded run finished |
| `pokewatch_pipeline_step_duration_seconds` | source, step | each step of that run |
| `pokewatch_pipeline_step_rows` | source, step | rows it handled (where counted) |
| `pokewatch_pipeline_model_metric` | source, metric | the candidate's evaluation (MAPE %, signal rate, ...) |
| `pokewatch_pipeline_promoted` | source | 1 if the gate promoted that run's version |
| `pokewatch_pipeline_model_version` | source | the version that run registered |
| `pokewatch_realized_metric` | version, role, metric | live versions on realized prices (MAPE %, coverage, ...) |
| `pokewatch_lifecycle_comparison` | pair, bound | MAPE improvement (%): challenger vs champion, champion vs previous |
| `pokewatch_lifecycle_needed_dates` | | the dates the promotion rule needs |
| `pokewatch_lifecycle_challenger_version` | | the challenger after the newest judge run (absent: none) |
| `pokewatch_lifecycle_decision_timestamp_seconds` | action, applied | when the rule last decided each action |
| `pokewatch_exporter_redis_up` | | 1 if the last scrape reached Redis |

Pipeline figures come from the run records on `pokewatch:pipeline-runs`
(workers.pipeline.runs); the lifecycle's from `pokewatch:lifecycle` and the
decisions on `pokewatch:model-events` (workers.pipeline.lifecycle).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import ValidationError

from contracts import keys
from contracts.messages import Heartbeat, ModelDecision, PipelineRun
from workers import model_events

logger = logging.getLogger(__name__)

RUNS_READ = 200


def entry_ms(entry_id: bytes | str) -> int:
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(raw.split("-")[0])


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class StreamCollector(Collector):
    """Reads Redis when scraped (a few commands per stream, one round trip per pipeline)."""

    def __init__(self, client: redis.Redis, replica_ttl_s: float = 10.0) -> None:
        self.redis = client
        self.replica_ttl_s = replica_ttl_s

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("pokewatch_exporter_redis_up", "1 if the last scrape reached Redis")
        try:
            metrics = [*self._streams(), *self._replicas(), *self._pipeline(), *self._lifecycle()]
        except (redis.RedisError, OSError) as exc:
            logger.warning("scrape failed: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _streams(self) -> list[Metric]:
        length = _gauge("pokewatch_stream_length_entries", "entries kept", ["stream"])
        lag = _gauge(
            "pokewatch_stream_group_lag_entries", "entries not yet delivered to the group", ["stream", "group"]
        )
        pending = _gauge("pokewatch_stream_group_pending_entries", "delivered, not yet acked", ["stream", "group"])
        oldest = _gauge(
            "pokewatch_stream_group_oldest_pending_age_seconds", "age of the oldest pending entry", ["stream", "group"]
        )
        consumers = _gauge("pokewatch_stream_group_consumers", "consumers in the group", ["stream", "group"])
        pipe = self.redis.pipeline(transaction=False)
        for stream in keys.STREAMS:
            pipe.exists(stream)
        present = [s for s, there in zip(keys.STREAMS, pipe.execute(), strict=True) if there]
        now_ms = time.time() * 1000
        for stream in present:
            length.add_metric([stream], self.redis.xlen(stream))
            for group in self.redis.xinfo_groups(stream):
                name = group["name"].decode() if isinstance(group["name"], bytes) else str(group["name"])
                labels = [stream, name]
                if group.get("lag") is not None:
                    lag.add_metric(labels, group["lag"])
                pending.add_metric(labels, group["pending"])
                consumers.add_metric(labels, group["consumers"])
                age = 0.0
                if group["pending"]:
                    summary = self.redis.xpending(stream, name)
                    if summary.get("min"):
                        age = max(0.0, (now_ms - entry_ms(summary["min"])) / 1000)
                oldest.add_metric(labels, age)
        return [length, lag, pending, oldest, consumers]

    def _replicas(self) -> list[Metric]:
        info = _gauge(
            "pokewatch_replica_info", "a live worker replica and its served version", ["replica", "role", "version"]
        )
        age = _gauge(
            "pokewatch_replica_heartbeat_age_seconds", "since the replica's last heartbeat", ["replica", "role"]
        )
        load = _gauge("pokewatch_replica_model_load_seconds", "a model replica's last load", ["replica"])
        now = time.time()
        for raw in self.redis.hgetall(keys.REPLICAS_HASH).values():
            try:
                beat = Heartbeat.model_validate_json(raw)
            except ValidationError:
                continue
            seconds = max(0.0, now - beat.last_seen)
            age.add_metric([beat.replica_id, beat.role], seconds)
            if seconds <= self.replica_ttl_s:
                info.add_metric([beat.replica_id, beat.role, beat.model_version or ""], 1)
            if beat.last_load_s is not None:
                load.add_metric([beat.replica_id], beat.last_load_s)
        return [info, age, load]

    def _pipeline(self) -> list[Metric]:
        finished = _gauge(
            "pokewatch_pipeline_last_success_timestamp_seconds", "when the newest run finished", ["source"]
        )
        steps = _gauge("pokewatch_pipeline_step_duration_seconds", "each step of the newest run", ["source", "step"])
        rows = _gauge("pokewatch_pipeline_step_rows", "rows a step handled", ["source", "step"])
        scores = _gauge("pokewatch_pipeline_model_metric", "the candidate's evaluation", ["source", "metric"])
        promoted = _gauge("pokewatch_pipeline_promoted", "1 if the gate promoted the run's version", ["source"])
        version = _gauge("pokewatch_pipeline_model_version", "the version the run registered", ["source"])
        newest: dict[str, PipelineRun] = {}
        entries: Any = self.redis.xrevrange(keys.PIPELINE_RUNS_STREAM, count=RUNS_READ)
        for _, fields in entries:
            try:
                run = PipelineRun.model_validate_json(fields[keys.PAYLOAD_FIELD.encode()])
            except (ValidationError, KeyError):
                continue
            newest.setdefault(run.source, run)
        for source, run in newest.items():
            finished.add_metric([source], run.finished_at)
            for step, figures in run.steps.items():
                if figures.seconds is not None:
                    steps.add_metric([source, step], figures.seconds)
                if figures.rows is not None:
                    rows.add_metric([source, step], figures.rows)
            for metric, value in run.metrics.items():
                scores.add_metric([source, metric], value)
            promoted.add_metric([source], 1 if run.promoted else 0)
            if run.model_version and run.model_version.isdigit():
                version.add_metric([source], int(run.model_version))
        return [finished, steps, rows, scores, promoted, version]

    def _lifecycle(self) -> list[Metric]:
        realized = _gauge(
            "pokewatch_realized_metric",
            "a live version scored on the prices that followed",
            ["version", "role", "metric"],
        )
        pairs = _gauge("pokewatch_lifecycle_comparison", "relative MAPE improvement (%) and dates", ["pair", "bound"])
        needed = GaugeMetricFamily("pokewatch_lifecycle_needed_dates", "dates the promotion rule needs")
        challenger = GaugeMetricFamily("pokewatch_lifecycle_challenger_version", "the challenger version")
        decided = _gauge(
            "pokewatch_lifecycle_decision_timestamp_seconds", "when the rule last decided", ["action", "applied"]
        )
        out: list[Metric] = [realized, pairs, needed, challenger, decided]
        raw = self.redis.get(keys.LIFECYCLE_KEY)
        if raw:
            record = json.loads(raw)
            for version, scores in (record.get("versions") or {}).items():
                for metric in ("mape", "coverage", "hit_rate", "dates", "n"):
                    if isinstance(scores.get(metric), int | float):
                        realized.add_metric([version, scores.get("role", ""), metric], scores[metric])
            for pair, key in (("challenger", "vs_champion"), ("champion", "vs_previous")):
                c = record.get(key) or {}
                for bound, field in (("point", "improvement"), ("low", "low"), ("high", "high"), ("dates", "dates")):
                    if isinstance(c.get(field), int | float):
                        pairs.add_metric([pair, bound], c[field])
            needed.add_metric([], record.get("needed_dates") or 0)
            if str(record.get("challenger") or "").isdigit():
                challenger.add_metric([], int(record["challenger"]))
        seen: set[tuple[str, str]] = set()
        for event in model_events.recent(self.redis, ModelDecision, RUNS_READ):
            labels = (event.action, str(event.applied).lower())
            if labels not in seen:
                seen.add(labels)
                decided.add_metric(list(labels), event.decided_at)
        return out


def serve(redis_url: str, port: int, host: str = "0.0.0.0", replica_ttl_s: float = 10.0) -> Any:  # noqa: S104
    """Start the HTTP server (a thread) with the collector; returns the server."""
    registry = CollectorRegistry()
    registry.register(StreamCollector(redis.Redis.from_url(redis_url), replica_ttl_s))
    server, _ = start_http_server(port, addr=host, registry=registry)
    logger.info("exporter serving /metrics on %s:%d", host, port)
    return server
