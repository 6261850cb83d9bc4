"""The gateway's side of the request path: publish a request, await its reply.

One `RequestBroker` per gateway process. It owns one pub/sub subscription to
`pokewatch:reply:<gateway id>` and routes each incoming `Reply` to the future
waiting under its request id, so a request costs one XADD and no
subscription of its own. If the subscription drops (broker restart), the
listener reconnects and resubscribes by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

import redis.asyncio as aioredis
from pydantic import ValidationError

from contracts import keys
from contracts.connection import redis_client
from contracts.logs import request_context
from contracts.messages import Heartbeat, PredictItem, PredictRequest, Reply
from gateway.config import GatewaySettings

logger = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """Redis cannot be reached (HTTP 503)."""


class NoLiveWorkers(RuntimeError):
    """No model replica has heartbeated recently (HTTP 503)."""


class DeadlineExceeded(TimeoutError):
    """No reply before the request's deadline (HTTP 504)."""


class RequestBroker:
    def __init__(self, settings: GatewaySettings, gateway_id: str | None = None) -> None:
        self.settings = settings
        self.gateway_id = gateway_id or uuid.uuid4().hex[:12]
        self.channel = keys.reply_channel(self.gateway_id)
        self.redis = redis_client(settings.redis_url, max_connections=256, wait_s=2, socket_timeout=5)
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._live_cache: tuple[float, list[Heartbeat]] = (0.0, [])
        # Read by the metrics (gateway.metrics) when scraped.
        self.reconnects = 0
        self.replies: dict[str, int] = {"answered": 0, "timeout": 0}

    @property
    def waiting(self) -> int:
        """Requests waiting for their reply now."""
        return len(self._pending)

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="reply-listener")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout=5)
        with contextlib.suppress(aioredis.RedisError, OSError):
            await keys.ensure_groups(self.redis, (keys.PREDICT_STREAM,))

    async def stop(self) -> None:
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        for fut in self._pending.values():
            fut.cancel()
        await self.redis.aclose()

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                logger.info("listening for replies on %s", self.channel)
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is not None:
                        self._deliver(msg["data"])
            except asyncio.CancelledError:
                await pubsub.aclose()
                raise
            except (aioredis.RedisError, OSError) as exc:
                self._subscribed.clear()
                self.reconnects += 1
                logger.warning("reply subscription lost (%s); reconnecting", exc)
                self._fail_pending(exc)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(0.5)

    def _fail_pending(self, exc: BaseException) -> None:
        """Answer every waiting request 503 now rather than 504 later.

        A reply published while the subscription is down is lost (pub/sub
        keeps nothing), and the broker may stay away for long: the client
        learns at once and retries. Pricing is a read, so a request that is
        still processed later does no harm.
        """
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(
                    BrokerUnavailable(f"connection to the broker lost while waiting for the reply ({exc}); retry")
                )

    def _deliver(self, data: bytes) -> None:
        try:
            reply = Reply.model_validate_json(data)
        except ValidationError:
            logger.warning("ignoring a malformed reply on %s", self.channel)
            return
        fut = self._pending.get(reply.request_id)
        if fut is not None and not fut.done():
            fut.set_result(reply)

    # ---------------------------------------------------------------- health
    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (aioredis.RedisError, OSError):
            return False

    async def replicas(self) -> list[Heartbeat]:
        """Every heartbeat in the replicas hash (live or not)."""
        try:
            raw = await self.redis.hgetall(keys.REPLICAS_HASH)
        except (aioredis.RedisError, OSError) as exc:
            raise BrokerUnavailable(f"broker unreachable: {exc}") from exc
        out = []
        for value in raw.values():
            with contextlib.suppress(ValidationError):
                out.append(Heartbeat.model_validate_json(value))
        return out

    async def group_lag(self, stream: str, group: str) -> int | None:
        """Entries of `stream` that `group` has not read yet (None if unknown)."""
        try:
            groups = await self.redis.xinfo_groups(stream)
        except (aioredis.RedisError, OSError):
            return None
        for g in groups:
            name = g.get("name")
            if (name.decode() if isinstance(name, bytes) else name) == group:
                lag = g.get("lag")
                return int(lag) if lag is not None else None
        return None

    def is_live(self, beat: Heartbeat, now: float | None = None) -> bool:
        return ((now or time.time()) - beat.last_seen) <= self.settings.replica_ttl_s

    async def live_model_replicas(self) -> list[Heartbeat]:
        """Live model replicas, cached for one second."""
        now = time.monotonic()
        stamp, cached = self._live_cache
        if now - stamp < 1.0:
            return cached
        beats = [b for b in await self.replicas() if b.role == "model" and self.is_live(b)]
        self._live_cache = (now, beats)
        return beats

    # ---------------------------------------------------------------- requests
    async def ask(self, items: list[PredictItem], timeout: float | None = None) -> Reply:
        """Publish one PredictRequest for the items and wait for its Reply."""
        if not self._subscribed.is_set():
            raise BrokerUnavailable("broker unreachable: reply channel not subscribed")
        if not await self.live_model_replicas():
            raise NoLiveWorkers("no live model worker: start one with `pokewatch worker model`")
        timeout = self.settings.request_timeout_s if timeout is None else timeout
        request_id = uuid.uuid4().hex
        request = PredictRequest(
            request_id=request_id, reply_to=self.channel, deadline=time.time() + timeout, items=items
        )
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        with request_context(request_id):
            try:
                try:
                    await self.redis.xadd(
                        keys.PREDICT_STREAM,
                        {keys.PAYLOAD_FIELD: request.model_dump_json()},
                        maxlen=self.settings.stream_maxlen,
                        approximate=True,
                    )
                except (aioredis.RedisError, OSError) as exc:
                    raise BrokerUnavailable(f"broker unreachable: {exc}") from exc
                logger.debug("published %d items on %s", len(items), keys.PREDICT_STREAM)
                try:
                    reply = await asyncio.wait_for(fut, timeout)
                except TimeoutError as exc:
                    self.replies["timeout"] += 1
                    logger.warning("no answer within %g s", timeout)
                    raise DeadlineExceeded(f"no answer within {timeout:g} s (request {request_id})") from exc
                self.replies["answered"] += 1
                logger.debug("answered: %d results", len(reply.results))
                return reply
            finally:
                self._pending.pop(request_id, None)
