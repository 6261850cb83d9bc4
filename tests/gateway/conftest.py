"""The gateway in-process (FastAPI's TestClient runs its lifespan) on a real Redis database, no workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from gateway.config import GatewaySettings
from gateway.main import create_app

DB = 7


@pytest.fixture
def broker_url(redis_server) -> Iterator[str]:
    url = redis_server.url.rsplit("/", 1)[0] + f"/{DB}"
    r = redis.Redis.from_url(url)
    r.flushdb()
    yield url
    r.flushdb()
    r.close()


@pytest.fixture
def gateway(broker_url: str) -> Iterator[Callable[..., TestClient]]:
    """`gateway(**settings)`: a started gateway with those settings, closed after the test."""
    opened: list[TestClient] = []

    def start(**overrides: object) -> TestClient:
        client = TestClient(create_app(GatewaySettings(redis_url=broker_url, **overrides)))  # type: ignore[arg-type]
        client.__enter__()
        opened.append(client)
        return client

    yield start
    for client in opened:
        client.__exit__(None, None, None)
