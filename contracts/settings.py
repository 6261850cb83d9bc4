"""Broker settings every process shares (env prefix POKEWATCH_).

Each service extends them with its own: `gateway.config.GatewaySettings`,
`workers.config.WorkerSettings`, `workers.config.PipelineSettings`.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BrokerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POKEWATCH_", extra="ignore")

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "POKEWATCH_REDIS_URL"),
        description="the broker; `pokewatch up` starts an embedded one when unset; `rediss://` for TLS",
    )
    stream_maxlen: int = Field(
        default=100_000, ge=100, description="approximate cap of the request path's streams, applied by publishers"
    )


def redacted(url: str) -> str:
    """A Redis URL safe to log: the password replaced by `***`."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
