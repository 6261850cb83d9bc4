"""The gateway's Prometheus metrics, at `GET /metrics` (behind the edge like every route:
with auth on, Prometheus sends `Authorization: Bearer <key>`).

| metric | type | labels | what |
|---|---|---|---|
| `pokewatch_gateway_requests_total` | counter | route, method, status | answered (`route`: path template) |
| `pokewatch_gateway_request_duration_seconds` | histogram | route, method | first byte in to last byte out |
| `pokewatch_gateway_requests_in_flight` | gauge | | requests being answered now |
| `pokewatch_gateway_rejected_total` | counter | status | refused at the edge: 401, 413, 429 |
| `pokewatch_gateway_replies_total` | counter | outcome | pricing replies: answered, timeout |
| `pokewatch_gateway_replies_waiting` | gauge | | pricing requests waiting for their reply now |
| `pokewatch_gateway_reply_reconnects_total` | counter | | reply-channel subscriptions lost and made again |

`MetricsMiddleware` is the outermost ASGI middleware, so it sees every
request, those the edge refuses and those the pricing fast path answers
without FastAPI's routing. The route label is the matched route's template
(`/cards/{card_id}`), never a raw path, so a card id never becomes a label
value; a path that matches no route is `unmatched`.

One registry per process: with `--workers N` each uvicorn worker has its own
and a scrape reaches one of them (run one worker per pod, as the images do).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match

from gateway.broker import RequestBroker

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
EDGE_STATUSES = frozenset({401, 413, 429})
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Broker(Collector):
    """The reply path's figures, read from the request broker when scraped."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        broker: RequestBroker | None = getattr(self.app.state, "broker", None)
        if broker is None:
            return
        replies = CounterMetricFamily("pokewatch_gateway_replies", "pricing replies by outcome", labels=["outcome"])
        for outcome, n in broker.replies.items():
            replies.add_metric([outcome], n)
        yield replies
        yield GaugeMetricFamily(
            "pokewatch_gateway_replies_waiting", "requests waiting for a reply", value=broker.waiting
        )
        yield CounterMetricFamily(
            "pokewatch_gateway_reply_reconnects", "reply subscriptions made again", value=broker.reconnects
        )


class _Requests(Collector):
    """Request counts and latency buckets, kept as plain numbers by the event loop.

    prometheus_client's instruments take a lock and look their labels up on
    every update; on the request path that cost 10-15% of the gateway's
    throughput. The gateway updates these from its one event-loop thread, so
    plain dicts are safe, and they are turned into metric families only when
    scraped.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}
        # (route, method) -> [count per bucket (last: +Inf)], sum of seconds
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = {}
        self.in_flight = 0
        self.rejected: dict[str, int] = {}

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, str(status))
        self.counts[key] = self.counts.get(key, 0) + 1
        where = (route, method)
        counts = self.buckets.get(where)
        if counts is None:
            counts = self.buckets[where] = [0] * (len(LATENCY_BUCKETS) + 1)
            self.sums[where] = 0.0
        counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sums[where] += seconds
        if status in EDGE_STATUSES:
            self.rejected[str(status)] = self.rejected.get(str(status), 0) + 1

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "pokewatch_gateway_requests", "answered requests", labels=["route", "method", "status"]
        )
        for (route, method, status), n in sorted(self.counts.items()):
            requests.add_metric([route, method, status], n)
        yield requests
        duration = HistogramMetricFamily(
            "pokewatch_gateway_request_duration_seconds", "request latency", labels=["route", "method"]
        )
        for (route, method), counts in sorted(self.buckets.items()):
            cumulative, running = [], 0
            for bound, n in zip([*map(str, LATENCY_BUCKETS), "+Inf"], counts, strict=True):
                running += n
                cumulative.append((bound, running))
            duration.add_metric([route, method], cumulative, self.sums[(route, method)])
        yield duration
        yield GaugeMetricFamily("pokewatch_gateway_requests_in_flight", "requests being answered", value=self.in_flight)
        rejected = CounterMetricFamily("pokewatch_gateway_rejected", "refused at the edge", labels=["status"])
        for status, n in sorted(self.rejected.items()):
            rejected.add_metric([status], n)
        yield rejected


class GatewayMetrics:
    def __init__(self, app: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = _Requests()
        self.registry.register(self.requests)
        self.registry.register(_Broker(app))

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


class MetricsMiddleware:
    """Pure ASGI: count and time every HTTP request by route template and status."""

    def __init__(self, app: Any, metrics: GatewayMetrics, routes: Any) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # the FastAPI app's routes, to name requests answered before routing
        self._templates: dict[tuple[str, str], str] = {}

    def _route(self, scope: dict[str, Any]) -> str:
        route = scope.get("route")
        if route is not None:
            return str(route.path)
        key = (scope["method"], scope["path"])
        if key in self._templates:
            return self._templates[key]
        name = "unmatched"
        for candidate in self.routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                name = str(candidate.path)
                break
        if name != "unmatched" and "{" not in name:
            self._templates[key] = name  # only fixed paths: never one entry per card id
        return name

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        recorder = self.metrics.requests
        status = 500
        started = time.perf_counter()

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        recorder.in_flight += 1
        try:
            await self.app(scope, receive, sending)
        finally:
            recorder.in_flight -= 1
            recorder.record(self._route(scope), scope["method"], status, time.perf_counter() - started)
