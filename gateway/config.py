"""The gateway's settings, from the environment (prefix POKEWATCH_); defaults run locally."""

from __future__ import annotations

from pydantic import Field

from contracts.settings import BrokerSettings


class GatewaySettings(BrokerSettings):
    request_timeout_s: float = Field(default=10.0, gt=0, le=120, description="deadline of a REST request")
    replica_ttl_s: float = Field(default=10.0, gt=0, description="a worker unseen this long is not live")

    # The edge (gateway.edge): keys, rates, sizes, browsers.
    auth_required: bool = Field(default=False, description="every path but /health and the docs needs an API key")
    rate_limit_per_s: float = Field(
        default=20.0,
        gt=0,
        description="default rate of one API key (a key may carry its own: `pokewatch keys create --rate`)",
    )
    rate_limit_burst: int = Field(default=40, ge=1, description="requests a key may send at once")
    anonymous_rate_limit_per_s: float = Field(
        default=0.0, ge=0, description="with auth off, rate per client address (0: unlimited)"
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="larger request bodies get 413")
    cors_origins: list[str] = Field(default_factory=list, description='JSON list, e.g. ["https://app.example"]')

    sse_max_clients: int = Field(default=100, ge=1, le=10_000, description="GET /signals/stream followers per process")
    webhook_allow: str = Field(
        default="", description="networks or hosts a webhook may point to although private (comma-separated)"
    )
    metrics: bool = Field(default=True, description="Prometheus metrics at GET /metrics")
    pages: bool = Field(default=True, description="the collector pages at /ui")
    gateway_fast_path: bool = Field(default=True, description="serve the pricing routes from a pure-ASGI fast path")
