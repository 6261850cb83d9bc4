"""The gateway's edge: request-size limits, the API-key check and per-key rate limits.

Keys are stored hashed in Redis (contracts.api_keys, written by
`pokewatch keys`). `EdgeGuard` is a pure ASGI middleware in front of everything:

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

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from contracts import keys
from contracts.api_keys import ApiKeyRecord, ApiKeyStore
from gateway.errors import ApiError, send_error

logger = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset(
    {
        "/health",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
        "/asyncapi",
        "/asyncapi.json",
        "/ui/login",
        "/ui/logout",
    }
)
# Static assets of the pages (no data in them) are public too.
PUBLIC_PREFIXES = ("/static/", "/vendor/")
# The pages keep the key in a session cookie (gateway.pages.routes); it is read for reads only,
# so another site cannot make a browser change anything with it (and it is SameSite=Strict).
KEY_COOKIE = b"pokewatch_key"
SAFE_METHODS = frozenset({"GET", "HEAD"})

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
            path = scope["path"]
            if path not in PUBLIC_PATHS and not path.startswith(PUBLIC_PREFIXES) and scope["method"] != "OPTIONS":
                await self._admit(scope)
        except ApiError as err:
            if err.status == 401 and scope["path"].startswith("/ui") and scope["method"] in SAFE_METHODS:
                await _to_login(send, scope)  # a page: ask for the key in a form, not with a JSON error
                return
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
            # Who is asking, for the routes that keep things per key (watchlists).
            scope.setdefault("state", {})["key_id"] = record.key_id
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
    cookie = None
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return str(value.decode("latin-1").strip())
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return str(value[7:].decode("latin-1").strip())
        if name == b"cookie" and scope["method"] in SAFE_METHODS:
            for part in value.split(b";"):
                key, _, found = part.strip().partition(b"=")
                if key == KEY_COOKIE and found:
                    cookie = found.decode("latin-1")
    return cookie


async def _to_login(send: Any, scope: dict[str, Any]) -> None:
    """303 to the sign-in page, back to this page afterwards."""
    from urllib.parse import quote

    target = "/ui/login?next=" + quote(scope["path"], safe="/")
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", target.encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
