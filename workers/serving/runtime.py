"""What every stream worker shares: reading, claiming, dead letters, acks, heartbeats.

A worker is a FastStream app with two subscribers on each stream it reads
(its routes: one by default, the notifier has two), in that stream's
consumer group, under its replica name:

- the reader takes new entries in batches (XREADGROUP >, up to `batch_size`);
- the claimer takes entries another replica left pending for more than
  `claim_idle_ms` (XAUTOCLAIM), e.g. because it was killed mid-batch.

Both hand raw entries to `handle`, which for each entry:

1. dead-letters it (and acks it) if it was already delivered
   `max_deliveries` times, if it has no `payload` field, or if the payload is
   not a valid message of the expected schema version: the reason is the
   validation error;
2. acks and skips it if its deadline has passed (nobody waits for it);
3. otherwise processes the valid entries of the batch together, and in one
   MULTI/EXEC transaction writes every output (next stream, reply, signals)
   and XACKs the entries. An entry is acked only with its outputs: a crash
   before EXEC leaves it pending for the claimer, never half-answered.

If processing raises, nothing is acked; the entries are retried by the
claimer (one at a time) until `max_deliveries`, then dead-lettered.

If the app stops without a signal (FastStream does so on NOGROUP: the stream
was deleted or the server lost its data), `run` starts it again, which
recreates the consumer groups.

Each worker heartbeats a `Heartbeat` into the `pokewatch:replicas` hash. On
SIGTERM FastStream stops reading and waits for in-flight handlers (up to
`graceful_timeout_s`); then the worker removes its heartbeat and, if it holds
no pending entries, its consumer from the group.

Why one module of ~350 lines: it is the one protocol every worker follows,
and start-up, reading, acking and shutdown read top to bottom in order here;
its separable parts are their own modules (entries, probes, shutdown, and
workers.dead_letters).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from faststream import AckPolicy, FastStream
from faststream.redis import RedisBroker, StreamSub
from pydantic import BaseModel
from redis.asyncio.client import Pipeline

from contracts import keys
from contracts.connection import RECONNECT, redis_client, retry_options
from contracts.messages import DeadLetter, Heartbeat
from workers import dead_letters
from workers.config import WorkerSettings
from workers.serving import probes
from workers.serving.entries import Entry, decode_entries, keep_raw_entries, sort_entries
from workers.serving.metrics import WorkerMetrics, middleware
from workers.serving.shutdown import release_consumers

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
MAX_RESTARTS = 5
ClaimedHandler = Callable[[list[Entry], bool], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    """One stream a worker reads in one group, and what a batch of its valid messages turns into.

    A worker has one route by default (its class's stream, group and `process`);
    the notifier reads two streams, so it has two.
    """

    stream: str
    group: str
    message_type: type[BaseModel]
    process: Callable[[Sequence[Any], Pipeline], None]
    title: str


def replica_name(role: str) -> str:
    """A default replica id: role-host-pid, plus a random suffix when the worker
    is a container's pid 1 (containers sharing the host's network share its
    hostname too; in Kubernetes the hostname is the pod's name)."""
    name = f"{role}-{socket.gethostname()}-{os.getpid()}"
    return f"{name}-{secrets.token_hex(3)}" if os.getpid() == 1 else name


class StreamWorker(ABC, Generic[M]):
    """Consume one stream in one group; subclasses say what a batch turns into."""

    role: str
    stream: str
    group: str
    message_type: type[M]
    # Whether rejected entries are written to the dead-letter stream (a second group reading the
    # same stream, like the challenger's, leaves that to the first).
    writes_dead_letters = True
    # Where the worker's groups start when it creates them: "0" delivers what was accepted before
    # any worker ran; a shadow group starts at "$" (old requests were answered already).
    group_start_id = "0"

    def __init__(self, settings: WorkerSettings, replica_id: str | None = None) -> None:
        self.settings = settings
        self.replica_id = replica_id or replica_name(self.role)
        self.redis = redis_client(settings.redis_url)
        self.started_at = time.time()
        self.processed = 0
        self.expired = 0
        self.dead_lettered = 0
        self.reload_failures = 0
        self.last_error: str | None = None
        self.last_load_s: float | None = None
        self._signalled = False
        # Set by a worker that stops its app on purpose to rebuild it (not counted as a failure).
        self.restart_reason: str | None = None
        self._app: FastStream | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._health_server: asyncio.Server | None = None
        self.last_beat_ok: float | None = None
        self.metrics = WorkerMetrics(self) if settings.metrics else None
        if self.metrics is not None:
            self.metrics.prepare([r.stream for r in self.routes()])

    # ------------------------------------------------------------ subclass API
    @abstractmethod
    def process(self, messages: Sequence[M], pipe: Pipeline) -> None:
        """Queue the outputs of valid, unexpired messages on the transaction `pipe`."""

    def routes(self) -> list[Route]:
        """What the worker reads: by default its stream in its group, into `process`."""
        return [Route(self.stream, self.group, self.message_type, self.process, self.role)]

    async def before_batch(self) -> None:
        """Called before each batch is sorted (e.g. refresh what the batch is matched against)."""

    def model_version(self) -> str | None:
        return None

    async def prepare(self) -> None:
        """Called once before the subscribers start (e.g. load the model)."""

    async def before_build(self) -> None:
        """Called before the app is (re)built, with the Redis client connected."""

    def add_subscribers(self, broker: RedisBroker) -> None:
        """Extra subscribers of a role (the model replicas' broadcast of model events)."""

    async def started(self) -> None:
        """Called once the subscribers run."""

    # ------------------------------------------------------------ app wiring
    def build_app(self) -> FastStream:
        s = self.settings
        # FastStream builds the pool its subscribers read on (a blocked read holds
        # a connection); the worker's own pool (self.redis) carries the
        # transactions and heartbeats and outlives the broker for the shutdown
        # cleanup. Both connect and retry as contracts.connection says.
        broker = RedisBroker(
            s.redis_url,
            graceful_timeout=s.graceful_timeout_s,
            max_connections=32,
            # FastStream's own lines (received / processed, at DEBUG) go through
            # the process's one log handler (contracts.logs), in its format.
            logger=logging.getLogger("faststream.redis"),
            log_level=logging.DEBUG,
            middlewares=[middleware(self.metrics, self.role)] if self.metrics else [],
            # After a broker restart pooled sockets are dead: reads reconnect as
            # every other client does (contracts.connection), on the first
            # attempt instead of after a failed one and FastStream's 5 s back-off.
            **RECONNECT,
            **retry_options(),
        )
        for route in self.routes():
            self._subscribe(broker, route)
        self.add_subscribers(broker)
        app = FastStream(broker, logger=logger)
        self._app = app
        app.on_startup(self._startup)
        app.after_startup(self._after_startup)
        app.on_shutdown(self._shutdown)
        # Consumers are deleted only once the subscribers have stopped: a read
        # still blocked in XREADGROUP would create the consumer again.
        app.after_shutdown(self._cleanup)
        return app

    def _subscribe(self, broker: RedisBroker, route: Route) -> None:
        self.subscribe_pair(broker, route, partial(self.handle, route=route))

    def subscribe_pair(
        self, broker: RedisBroker, route: Route, handler: ClaimedHandler, max_records: int | None = None
    ) -> None:
        """The reader (new entries, in batches) and the claimer (entries idle too long) of one route,
        both handing raw entries to `handler(entries, claimed)`."""
        s = self.settings
        reader = StreamSub(
            route.stream,
            group=route.group,
            consumer=self.replica_id,
            batch=True,
            max_records=max_records or s.batch_size,
            polling_interval=s.poll_ms,
        )
        claimer = StreamSub(
            route.stream,
            group=route.group,
            consumer=f"{self.replica_id}:claimer",
            batch=True,
            min_idle_time=s.claim_idle_ms,
            polling_interval=max(s.claim_idle_ms // 3, 100),
        )
        options: dict[str, Any] = {
            "ack_policy": AckPolicy.MANUAL,
            "no_reply": True,
            "parser": keep_raw_entries,
            "decoder": decode_entries,
        }

        async def on_new(entries: Any) -> None:
            await handler(entries, False)

        async def on_claimed(entries: Any) -> None:
            await handler(entries, True)

        broker.subscriber(stream=reader, title=f"{route.title}-reader", **options)(on_new)
        broker.subscriber(stream=claimer, title=f"{route.title}-claimer", **options)(on_claimed)

    async def _startup(self) -> None:
        self._watch_signals()
        groups = {r.stream: r.group for r in self.routes()}
        await keys.ensure_groups(self.redis, groups=groups, start_id=self.group_start_id)
        await self.prepare()

    async def _after_startup(self) -> None:
        if self.settings.health_port and self._health_server is None:
            self._health_server = await probes.serve(self.probe, self.settings.health_host, self.settings.health_port)
        await self.beat()
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())
        await self.started()
        for route in self.routes():
            logger.info("%s %s consuming %s as group %s", self.role, self.replica_id, route.stream, route.group)

    async def _shutdown(self) -> None:
        if self._heartbeat_task:
            self._heartbeat_task.cancel()

    async def _cleanup(self) -> None:
        try:
            if self.restart_reason is None:
                # Leaving: the heartbeat goes. A rebuild on purpose keeps it, so the replica never
                # vanishes from /health while its app starts again (a kill then reads as "down").
                await self.redis.hdel(keys.REPLICAS_HASH, self.replica_id)
            for route in self.routes():
                await release_consumers(
                    self.redis,
                    route.stream,
                    route.group,
                    mine={self.replica_id, f"{self.replica_id}:claimer"},
                    block_s=2 * self.settings.poll_ms / 1000 + 0.05,
                    batch=self.settings.batch_size,
                    handle=partial(self.handle, route=route),
                )
        except aioredis.RedisError as exc:  # the broker may be gone already
            logger.warning("cleanup on shutdown failed: %s", exc)
        await self.redis.aclose()

    async def run(self) -> None:
        """Run the app; if it stopped by itself (no signal), run it again.

        FastStream stops the app on a terminal read error, above all NOGROUP:
        the stream was deleted or the server lost its data. Unless a signal
        asked us to stop, the app is rebuilt: start-up recreates the groups
        from id 0 (requests accepted meanwhile are still served) and the
        replica resumes without anyone restarting it. More than
        `MAX_RESTARTS` such stops within a minute is not a lost group but a
        broken setup: the worker then exits with an error.
        """
        self._signalled = False
        try:
            await self._run_until_signalled()
        finally:
            if self._health_server is not None:
                self._health_server.close()

    async def _run_until_signalled(self) -> None:
        stops: list[float] = []
        while True:
            await self.before_build()
            await self.build_app().run()
            if self._signalled:
                return
            if self.restart_reason is not None:
                logger.info("%s: rebuilding the app (%s)", self.replica_id, self.restart_reason)
                self.restart_reason = None
                self.redis = redis_client(self.settings.redis_url)  # the old one was closed on shutdown
                continue
            now = time.monotonic()
            stops = [t for t in stops if now - t < 60] + [now]
            if len(stops) > MAX_RESTARTS:
                raise RuntimeError(f"{self.replica_id}: the app stopped {len(stops)} times within a minute")
            logger.warning(
                "%s: the app stopped without a signal (lost consumer group?); starting it again", self.replica_id
            )
            self.redis = redis_client(self.settings.redis_url)  # the old one was closed on shutdown
            await asyncio.sleep(0.2)

    def _watch_signals(self) -> None:
        """Replace FastStream's SIGINT/SIGTERM handlers with ones that also record the signal."""

        def stop(sig: int) -> None:
            self._signalled = True
            if self._app is not None:
                self._app.exit()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop, sig)

    # ------------------------------------------------------------ heartbeat
    def heartbeat(self) -> Heartbeat:
        return Heartbeat(
            replica_id=self.replica_id,
            role=self.role,  # type: ignore[arg-type]
            model_version=self.model_version(),
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self.started_at,
            last_seen=time.time(),
            processed=self.processed,
            expired=self.expired,
            dead_lettered=self.dead_lettered,
            last_error=self.last_error,
            last_load_s=self.last_load_s,
        )

    async def beat(self) -> None:
        await self.redis.hset(keys.REPLICAS_HASH, self.replica_id, self.heartbeat().model_dump_json())
        self.last_beat_ok = time.monotonic()

    def probe(self, path: str) -> tuple[int, dict[str, Any] | bytes]:
        """This replica's answer to a Kubernetes probe (see workers.serving.probes)."""
        if path == "/metrics" and self.metrics is not None:
            return 200, self.metrics.render()
        age = time.monotonic() - self.last_beat_ok if self.last_beat_ok else None
        body = {"replica_id": self.replica_id, "role": self.role, "model_version": self.model_version()}
        return probes.answer(age, self.settings.heartbeat_s, body, path)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            try:
                await self.beat()
            except aioredis.RedisError as exc:
                logger.warning("heartbeat failed: %s", exc)

    # ------------------------------------------------------------ the handler
    async def handle(self, entries: list[Entry], claimed: bool, route: Route | None = None) -> None:
        if not entries:
            return
        route = route or self.routes()[0]
        started = time.perf_counter()
        await self.before_batch()
        deliveries = await self.deliveries(route, [i for i, _ in entries]) if claimed else {}
        batch = sort_entries(entries, route.message_type, deliveries, self.settings.max_deliveries, time.time())
        valid, valid_ids = batch.valid, batch.valid_ids
        self.expired += len(batch.expired_ids)
        done_ids = list(batch.expired_ids)
        dead = [self._dead(i, fields, reason, count, route) for i, fields, reason, count in batch.rejected]
        if not self.writes_dead_letters:
            done_ids += [letter.entry_id.encode() for letter in dead]
            dead = []

        pipe = self.redis.pipeline(transaction=True)
        if valid:
            try:
                route.process(valid, pipe)
            except Exception as exc:
                # Leave them pending: the claimer retries each one alone until
                # max_deliveries, so one poison entry cannot sink the others.
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("processing %d entries failed; left pending for retry", len(valid))
                pipe = self.redis.pipeline(transaction=True)
                valid_ids = []
        for letter in dead:
            dead_letters.write(pipe, letter, self.settings.dead_letter_maxlen)
            done_ids.append(letter.entry_id.encode())
        ack = valid_ids + done_ids
        if ack:
            pipe.xack(route.stream, route.group, *ack)
        if len(pipe):
            await pipe.execute()
        self.processed += len(valid_ids)
        self.dead_lettered += len(dead)
        if self.metrics is not None:
            seconds = time.perf_counter() - started
            failed = len(valid) - len(valid_ids)
            self.metrics.batch(
                route.stream, len(entries), seconds, len(valid_ids), len(batch.expired_ids), failed, claimed
            )
            for letter in dead:
                self.metrics.dead_lettered(route.stream, letter.reason)

    async def deliveries(self, route: Route, ids: list[bytes]) -> dict[bytes, int]:
        """Delivery counts of claimed entries (XAUTOCLAIM has already counted this one)."""
        out: dict[bytes, int] = {}
        for entry_id in ids:
            rows = await self.redis.xpending_range(route.stream, route.group, entry_id, entry_id, 1)
            if rows:
                out[entry_id] = int(rows[0]["times_delivered"])
        return out

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Append one dead letter outside a batch (e.g. a malformed model event)."""
        await dead_letters.write(self.redis, letter, self.settings.dead_letter_maxlen)
        self.dead_lettered += 1
        if self.metrics is not None:
            self.metrics.dead_lettered(letter.source_stream, letter.reason)

    def _dead(
        self,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        reason: str,
        deliveries: int,
        route: Route | None = None,
        stream: str | None = None,
    ) -> DeadLetter:
        """A dead letter of an entry read in `route` (default: the first), or read outside a group from `stream`."""
        route = route or self.routes()[0]
        return dead_letters.letter(
            stream or route.stream,
            entry_id,
            fields,
            reason,
            consumer=self.replica_id,
            group=None if stream else route.group,
            deliveries=deliveries,
        )
