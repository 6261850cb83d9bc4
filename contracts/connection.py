"""The one place Redis clients are built, for the gateway, the workers and the CLI.

It lives in `contracts` because every process needs the same connection
behaviour and `gateway/` and `workers/` may not import each other:

- the pool waits for a free connection (`BlockingConnectionPool`) instead of
  failing under load;
- a connection idle for a second is PINGed before use, so after a broker
  restart the pool reconnects instead of failing one command per socket;
- a dropped connection is retried once at once (redis-py reconnects first),
  so the first command after a restart does not fail for a stale socket.

redis-py is imported when a client is built, not when this module is.
"""

from __future__ import annotations

from typing import Any

# Passed to FastStream's RedisBroker too, so its reads reconnect the same way.
RECONNECT: dict[str, Any] = {"health_check_interval": 1, "socket_connect_timeout": 2}


def retry_options() -> dict[str, Any]:
    """One immediate retry on a dropped or timed-out connection."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return {"retry": Retry(NoBackoff(), 1), "retry_on_error": [RedisConnectionError, RedisTimeoutError]}


def redis_client(url: str, max_connections: int = 64, wait_s: float = 5.0, socket_timeout: float | None = None) -> Any:
    """An asyncio client (`redis.asyncio.Redis`) with the behaviour above.

    Args:
        url: `redis://` or `rediss://` URL, with user and password if any.
        max_connections: pool size; callers beyond it wait up to `wait_s`.
        wait_s: how long a command waits for a free pooled connection.
        socket_timeout: seconds a command may take (None: no limit, for blocking reads).
    """
    import redis.asyncio as aioredis

    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=wait_s, socket_timeout=socket_timeout, **RECONNECT
    )
    return aioredis.Redis(connection_pool=pool, **retry_options())


def sync_client(url: str) -> Any:
    """A blocking client (`redis.Redis`) for one-off commands (the CLI)."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=3)
