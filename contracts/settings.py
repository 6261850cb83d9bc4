"""Serving settings shared by the gateway and the workers (env prefix POKEWATCH_)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POKEWATCH_", extra="ignore")

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "POKEWATCH_REDIS_URL")
    )
    # Approximate MAXLEN of each stream, applied by its publishers.
    stream_maxlen: int = Field(default=100_000, ge=100)
    signals_maxlen: int = Field(default=100_000, ge=100)
    dead_letter_maxlen: int = Field(default=10_000, ge=100)

    request_timeout_s: float = Field(default=10.0, gt=0, le=120, description="deadline of a REST request")
    heartbeat_s: float = Field(default=2.0, gt=0)
    replica_ttl_s: float = Field(default=10.0, gt=0, description="a worker unseen this long is not live")

    batch_size: int = Field(default=64, ge=1, le=1000, description="entries read per XREADGROUP")
    poll_ms: int = Field(default=100, ge=1)
    claim_idle_ms: int = Field(default=3000, ge=100, description="pending this long -> another replica claims it")
    max_deliveries: int = Field(default=3, ge=1, description="deliveries before an entry is dead-lettered")
    champion_poll_s: float = Field(default=60.0, gt=0, description="model replicas re-check the champion alias")
    graceful_timeout_s: float = Field(default=10.0, gt=0)

    # The edge (gateway.security): keys, rates, sizes, browsers.
    auth_required: bool = Field(default=False, description="every path but /health and the docs needs an API key")
    rate_limit_per_s: float = Field(default=20.0, gt=0, description="default rate of one API key")
    rate_limit_burst: int = Field(default=40, ge=1, description="requests a key may send at once")
    anonymous_rate_limit_per_s: float = Field(
        default=0.0, ge=0, description="with auth off, rate per client address (0: unlimited)"
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    cors_origins: list[str] = Field(default_factory=list, description='JSON list, e.g. ["https://app.example"]')

    # Workers' HTTP probes (/livez, /readyz) for Kubernetes; 0 = off.
    health_port: int = Field(default=0, ge=0, le=65535)
    health_host: str = "0.0.0.0"  # noqa: S104 (a probe port inside a pod)

    gateway_fast_path: bool = Field(default=True, description="serve the pricing routes from a pure-ASGI fast path")

    buy_threshold: float = Field(default=0.10, gt=0, lt=1)
    sell_threshold: float = Field(default=0.15, gt=0)


def redacted(url: str) -> str:
    """A Redis URL safe to log: the password replaced by `***`."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
