"""API keys, per-key rate limits and request-size limits at the gateway's edge.

Keys look like `pw_<key id>_<secret>`. Redis keeps, per key id, the key's
name, its SHA-256 hash and its rate (never the key itself), in the
`pokewatch:api-keys` hash, so every gateway replica sees the same keys and a
revocation reaches all of them. A random 192-bit secret needs no slow hash: a
leaked hash cannot be brute-forced back into a key.

`EdgeGuard` is a pure ASGI middleware in front of everything:

- bodies larger than `max_body_bytes` get 413 (by Content-Length at once,
  or while streaming);
- with auth on, every path except `/health` and the docs needs
  `X-API-Key: <key>` or `Authorization: Bearer <key>`: 401 otherwise;
- each key (or, with auth off, each client address when an anonymous rate is
  set) is rate limited by a GCRA in one Lua script on Redis, shared by all
  gateway replicas: 429 with `Retry-After` (whole seconds) past the limit.

Validated keys are cached for `key_cache_s` seconds per process: a revoked
key stops working everywhere within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from contracts import keys
from gateway.pricing import ApiError

logger = logging.getLogger(__name__)

KEY_PREFIX = "pw"
PUBLIC_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})

# GCRA (generic cell rate algorithm): one timestamp per key, the "theoretical
# arrival time". A request is allowed if it does not arrive more than `burst`
# emission intervals early; the server's clock is used so replicas agree.
# Returns {allowed, retry_after_ms}.
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then return {0, allow_at - now} end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return {1, 0}
"""


class ApiKeyRecord(BaseModel):
    """What Redis keeps about one key (the secret only as a hash)."""

    key_id: str
    name: str
    sha256: str
    created_at: float
    revoked_at: float | None = None
    rate_per_s: float | None = Field(default=None, gt=0, description="overrides the default rate")

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """`pw_<id>_<secret>` -> (id, secret), or None if it is not shaped like a key."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class ApiKeyStore:
    """Create, list, revoke and verify keys in the `pokewatch:api-keys` hash."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def create(self, name: str, rate_per_s: float | None = None) -> tuple[str, ApiKeyRecord]:
        """A new key: returns the key (shown once, never stored) and its record."""
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(24)
        record = ApiKeyRecord(
            key_id=key_id, name=name, sha256=_hash(secret), created_at=time.time(), rate_per_s=rate_per_s
        )
        if not await self.redis.hsetnx(keys.API_KEYS_HASH, key_id, record.model_dump_json()):
            return await self.create(name, rate_per_s)  # a 32-bit id collided: draw again
        return f"{KEY_PREFIX}_{key_id}_{secret}", record

    async def list(self) -> list[ApiKeyRecord]:
        raw = await self.redis.hgetall(keys.API_KEYS_HASH)
        return sorted((ApiKeyRecord.model_validate_json(v) for v in raw.values()), key=lambda r: r.created_at)

    async def revoke(self, key_id: str) -> ApiKeyRecord | None:
        raw = await self.redis.hget(keys.API_KEYS_HASH, key_id)
        if raw is None:
            return None
        record = ApiKeyRecord.model_validate_json(raw)
        if record.active:
            record.revoked_at = time.time()
            await self.redis.hset(keys.API_KEYS_HASH, key_id, record.model_dump_json())
        return record

    async def verify(self, key: str) -> ApiKeyRecord | None:
        """The active record of a presented key, or None."""
        parts = split_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        raw = await self.redis.hget(keys.API_KEYS_HASH, key_id)
        if raw is None:
            return None
        record = ApiKeyRecord.model_validate_json(raw)
        if not hmac.compare_digest(record.sha256, _hash(secret)) or not record.active:
            return None
        return record


@dataclass(frozen=True)
class EdgePolicy:
    auth_required: bool
    rate_per_s: float
    burst: int
    anonymous_rate_per_s: float
    max_body_bytes: int
    key_cache_s: float = 5.0


class EdgeGuard:
    """Pure ASGI middleware: body size, API key, rate limit (see the module docstring)."""

    def __init__(self, app: Any, policy: EdgePolicy) -> None:
        self.app = app
        self.policy = policy
        self._cache: dict[str, tuple[float, ApiKeyRecord | None]] = {}
        self._gcra: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            receive = self._limit_body(scope, receive)
            if scope["path"] not in PUBLIC_PATHS and scope["method"] != "OPTIONS":
                await self._admit(scope)
        except ApiError as err:
            await send_error(send, err)
            return
        started = False

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except ApiError as err:  # an oversized body found while streaming it
            if started:
                raise
            await send_error(send, err)

    # ------------------------------------------------------------ body size
    def _limit_body(self, scope: dict[str, Any], receive: Any) -> Any:
        limit = self.policy.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise ApiError(413, f"request body over {limit} bytes")
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise ApiError(413, f"request body over {limit} bytes")
            return message

        return counted

    # ------------------------------------------------------------ key and rate
    async def _admit(self, scope: dict[str, Any]) -> None:
        policy = self.policy
        broker = scope["app"].state.broker
        presented = _presented_key(scope)
        if policy.auth_required:
            if presented is None:
                raise ApiError(401, "an API key is required: send it as `X-API-Key: <key>` (see `pokewatch keys`)")
            record = await self._verify(broker.redis, presented)
            if record is None:
                raise ApiError(401, "invalid or revoked API key")
            await self._rate_limit(broker.redis, f"key:{record.key_id}", record.rate_per_s or policy.rate_per_s)
        elif policy.anonymous_rate_per_s > 0:
            client = (scope.get("client") or ("unknown", 0))[0]
            await self._rate_limit(broker.redis, f"addr:{client}", policy.anonymous_rate_per_s)

    async def _verify(self, redis: aioredis.Redis, presented: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        hit = self._cache.get(presented)
        if hit is not None and now - hit[0] < self.policy.key_cache_s:
            return hit[1]
        try:
            record = await ApiKeyStore(redis).verify(presented)
        except (aioredis.RedisError, OSError) as exc:
            raise ApiError(503, f"broker unreachable: cannot check the API key ({exc})") from None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[presented] = (now, record)
        return record

    async def _rate_limit(self, redis: aioredis.Redis, who: str, rate_per_s: float) -> None:
        if self._gcra is None:
            self._gcra = redis.register_script(GCRA_LUA)
        interval_ms = 1000.0 / rate_per_s
        tolerance_ms = interval_ms * max(self.policy.burst - 1, 0)
        try:
            allowed, retry_ms = await self._gcra(keys=[keys.rate_limit_key(who)], args=[interval_ms, tolerance_ms])
        except (aioredis.RedisError, OSError) as exc:
            raise ApiError(503, f"broker unreachable: cannot apply the rate limit ({exc})") from None
        if not allowed:
            retry_s = max(1, math.ceil(int(retry_ms) / 1000))
            raise ApiError(
                429,
                f"rate limit of {rate_per_s:g} requests/s exceeded; retry in {retry_s} s",
                headers=[(b"retry-after", str(retry_s).encode())],
            )


def _presented_key(scope: dict[str, Any]) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return str(value.decode("latin-1").strip())
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return str(value[7:].decode("latin-1").strip())
    return None


async def send_error(send: Any, err: ApiError) -> None:
    body = orjson.dumps(err.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *err.headers]
    if err.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="pokewatch"'))
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
