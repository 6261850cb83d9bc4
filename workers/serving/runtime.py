"""What every stream worker shares: reading, claiming, dead letters, acks, heartbeats.

A worker is a FastStream app with two subscribers on its stream, in its
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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from faststream import AckPolicy, FastStream
from faststream.redis import RedisBroker, StreamSub
from pydantic import BaseModel, ValidationError
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from contracts import keys
from contracts.messages import DeadLetter, Heartbeat
from contracts.settings import ServingSettings

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Entry = tuple[bytes, dict[bytes, bytes]]
MAX_DEAD_PAYLOAD = 64 * 1024
MAX_RESTARTS = 5


def replica_name(role: str) -> str:
    """A default replica id: role-host-pid, plus a random suffix when the worker
    is a container's pid 1 (containers sharing the host's network share its
    hostname too; in Kubernetes the hostname is the pod's name)."""
    name = f"{role}-{socket.gethostname()}-{os.getpid()}"
    return f"{name}-{secrets.token_hex(3)}" if os.getpid() == 1 else name


def redis_client(url: str, max_connections: int = 64) -> aioredis.Redis:
    """A client whose pool waits for a free connection instead of failing under load."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, health_check_interval=1, socket_connect_timeout=2
    )
    # One immediate retry on a dropped connection, as in the gateway (after a broker restart).
    return aioredis.Redis(
        connection_pool=pool, retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError, RedisTimeoutError]
    )


def reason_of(exc: ValidationError) -> str:
    """A short, readable validation error: `field: message` per problem."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "payload"
        parts.append(f"{loc}: {err.get('msg')}")
    return "invalid message: " + "; ".join(parts)


class StreamWorker(ABC, Generic[M]):
    """Consume one stream in one group; subclasses say what a batch turns into."""

    role: str
    stream: str
    group: str
    message_type: type[M]

    def __init__(self, settings: ServingSettings, replica_id: str | None = None) -> None:
        self.settings = settings
        self.replica_id = replica_id or replica_name(self.role)
        self.redis = redis_client(settings.redis_url)
        self.started_at = time.time()
        self.processed = 0
        self.expired = 0
        self.dead_lettered = 0
        self.last_error: str | None = None
        self.last_load_s: float | None = None
        self._signalled = False
        self._app: FastStream | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._health_server: asyncio.Server | None = None
        self.last_beat_ok: float | None = None

    # ------------------------------------------------------------ subclass API
    @abstractmethod
    def process(self, messages: Sequence[M], pipe: Pipeline) -> None:
        """Queue the outputs of valid, unexpired messages on the transaction `pipe`."""

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
        broker = RedisBroker(
            s.redis_url,
            graceful_timeout=s.graceful_timeout_s,
            max_connections=32,
            log_level=logging.DEBUG,
            # After a broker restart pooled sockets are dead: check a connection
            # idle for a second before use and retry a dropped one once, so
            # reads resume on the first attempt instead of after a failed one
            # and FastStream's 5 s back-off.
            health_check_interval=1,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        reader = StreamSub(
            self.stream,
            group=self.group,
            consumer=self.replica_id,
            batch=True,
            max_records=s.batch_size,
            polling_interval=s.poll_ms,
        )
        claimer = StreamSub(
            self.stream,
            group=self.group,
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
            await self.handle(entries, claimed=False)

        async def on_claimed(entries: Any) -> None:
            await self.handle(entries, claimed=True)

        broker.subscriber(stream=reader, title=f"{self.role}-reader", **options)(on_new)
        broker.subscriber(stream=claimer, title=f"{self.role}-claimer", **options)(on_claimed)
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

    async def _startup(self) -> None:
        self._watch_signals()
        await keys.ensure_groups(self.redis)
        await self.prepare()

    async def _after_startup(self) -> None:
        if self.settings.health_port and self._health_server is None:
            self._health_server = await asyncio.start_server(
                self._answer_probe, self.settings.health_host, self.settings.health_port
            )
        await self.beat()
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())
        await self.started()
        logger.info("%s %s consuming %s as group %s", self.role, self.replica_id, self.stream, self.group)

    async def _shutdown(self) -> None:
        if self._heartbeat_task:
            self._heartbeat_task.cancel()

    async def _cleanup(self) -> None:
        try:
            await self.redis.hdel(keys.REPLICAS_HASH, self.replica_id)
            mine = {self.replica_id, f"{self.replica_id}:claimer"}
            block_s = 2 * self.settings.poll_ms / 1000 + 0.05
            # A read the server was still serving when the subscribers stopped
            # (a blocked XREADGROUP) can deliver entries to this replica, or
            # create its consumer again after its deletion. So: let one block
            # period pass, answer whatever was delivered to us, delete the
            # consumers, check; up to three times.
            for _ in range(3):
                await asyncio.sleep(block_s)
                drained = await self._drain_own_pending(mine & await self._consumers())
                if drained:
                    logger.info("%s: answered %d entries delivered while stopping", self.replica_id, drained)
                for consumer in mine:
                    info = await self.redis.xpending_range(self.stream, self.group, "-", "+", 1, consumername=consumer)
                    if not info:
                        await self.redis.xgroup_delconsumer(self.stream, self.group, consumer)
                await asyncio.sleep(block_s)
                if not (mine & await self._consumers()):
                    break
        except aioredis.RedisError as exc:  # the broker may be gone already
            logger.warning("cleanup on shutdown failed: %s", exc)
        await self.redis.aclose()

    async def _consumers(self) -> set[str]:
        return {c["name"].decode() for c in await self.redis.xinfo_consumers(self.stream, self.group)}

    async def _drain_own_pending(self, consumers: set[str]) -> int:
        """Handle the entries pending for these existing consumers of this
        replica (read, never answered). Reading as a consumer that does not
        exist would create it, so callers pass only existing ones."""
        handled = 0
        for consumer in sorted(consumers):
            seen: set[bytes] = set()
            while True:
                reply: list[tuple[bytes, list[Entry]]] = await self.redis.xreadgroup(  # type: ignore[assignment]
                    self.group, consumer, {self.stream: "0"}, count=self.settings.batch_size
                )
                items = [(i, f) for _, entries in reply for i, f in entries if i not in seen]
                if not items:
                    break
                seen.update(i for i, _ in items)
                gone = [i for i, f in items if not f]  # trimmed from the stream meanwhile
                if gone:
                    await self.redis.xack(self.stream, self.group, *gone)
                await self.handle([(i, f) for i, f in items if f], claimed=True)
                handled += len(items)
        return handled

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

    # ------------------------------------------------------------ probes
    def probe(self, path: str) -> tuple[int, dict[str, Any]]:
        """Kubernetes probes: `/livez` while the event loop runs; `/readyz` while
        the worker's last heartbeat reached the broker within 3 periods."""
        age = time.monotonic() - self.last_beat_ok if self.last_beat_ok else None
        body: dict[str, Any] = {
            "replica_id": self.replica_id,
            "role": self.role,
            "model_version": self.model_version(),
            "seconds_since_heartbeat": round(age, 2) if age is not None else None,
        }
        if path == "/livez":
            return 200, body
        if path == "/readyz":
            ready = age is not None and age <= 3 * self.settings.heartbeat_s
            return (200 if ready else 503), body
        return 404, {"error": "not_found", "message": "probes: /livez, /readyz"}

    async def _answer_probe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 2)
            parts = line.decode("latin-1").split()
            status, body = self.probe(parts[1] if len(parts) > 1 else "/")
            payload = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Ready'}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            try:
                await self.beat()
            except aioredis.RedisError as exc:
                logger.warning("heartbeat failed: %s", exc)

    # ------------------------------------------------------------ the handler
    async def handle(self, entries: list[Entry], claimed: bool) -> None:
        if not entries:
            return
        deliveries = await self._deliveries([i for i, _ in entries]) if claimed else {}
        valid: list[M] = []
        valid_ids: list[bytes] = []
        done_ids: list[bytes] = []
        dead: list[DeadLetter] = []
        now = time.time()
        for entry_id, fields in entries:
            count = deliveries.get(entry_id, 1)
            if count > self.settings.max_deliveries:
                dead.append(self._dead(entry_id, fields, f"failed {count - 1} deliveries", count))
                continue
            raw = fields.get(keys.PAYLOAD_FIELD.encode())
            if raw is None:
                dead.append(self._dead(entry_id, fields, f"missing field {keys.PAYLOAD_FIELD!r}", count))
                continue
            try:
                message = self.message_type.model_validate_json(raw)
            except ValidationError as exc:
                dead.append(self._dead(entry_id, fields, reason_of(exc), count))
                continue
            if getattr(message, "deadline", now + 1) < now:
                self.expired += 1
                done_ids.append(entry_id)
                continue
            valid.append(message)
            valid_ids.append(entry_id)

        pipe = self.redis.pipeline(transaction=True)
        if valid:
            try:
                self.process(valid, pipe)
            except Exception as exc:
                # Leave them pending: the claimer retries each one alone until
                # max_deliveries, so one poison entry cannot sink the others.
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("processing %d entries failed; left pending for retry", len(valid))
                pipe = self.redis.pipeline(transaction=True)
                valid_ids = []
        for letter in dead:
            pipe.xadd(
                keys.DEAD_LETTER_STREAM,
                {keys.PAYLOAD_FIELD: letter.model_dump_json()},
                maxlen=self.settings.dead_letter_maxlen,
                approximate=True,
            )
            done_ids.append(letter.entry_id.encode())
        ack = valid_ids + done_ids
        if ack:
            pipe.xack(self.stream, self.group, *ack)
        if len(pipe):
            await pipe.execute()
        self.processed += len(valid_ids)
        self.dead_lettered += len(dead)
        for letter in dead:
            logger.warning("dead-lettered %s %s: %s", self.stream, letter.entry_id, letter.reason)

    async def _deliveries(self, ids: list[bytes]) -> dict[bytes, int]:
        """Delivery counts of claimed entries (XAUTOCLAIM has already counted this one)."""
        out: dict[bytes, int] = {}
        for entry_id in ids:
            rows = await self.redis.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
            if rows:
                out[entry_id] = int(rows[0]["times_delivered"])
        return out

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Append one dead letter outside a batch (e.g. a malformed model event)."""
        await self.redis.xadd(
            keys.DEAD_LETTER_STREAM,
            {keys.PAYLOAD_FIELD: letter.model_dump_json()},
            maxlen=self.settings.dead_letter_maxlen,
            approximate=True,
        )
        self.dead_lettered += 1
        logger.warning("dead-lettered %s %s: %s", letter.source_stream, letter.entry_id, letter.reason)

    def _dead(
        self, entry_id: bytes, fields: dict[bytes, bytes], reason: str, deliveries: int, stream: str | None = None
    ) -> DeadLetter:
        shown = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
        text = repr(shown) if len(shown) != 1 or keys.PAYLOAD_FIELD not in shown else shown[keys.PAYLOAD_FIELD]
        return DeadLetter(
            source_stream=stream or self.stream,
            entry_id=entry_id.decode(),
            group=None if stream else self.group,
            consumer=self.replica_id,
            reason=reason,
            deliveries=deliveries,
            payload=text[:MAX_DEAD_PAYLOAD],
        )


async def keep_raw_entries(msg: Any, original: Any) -> Any:
    """Let FastStream build its message object but keep the stream entries untouched.

    PokeWatch entries are plain `payload` fields, not FastStream envelopes; the
    worker validates them itself so that bad ones reach the dead-letter stream
    with a precise reason.
    """
    parsed = await original({**msg, "data": []})
    parsed.raw_message = msg
    return parsed


async def decode_entries(msg: Any, original: Any) -> list[Entry]:
    raw = msg.raw_message
    return list(zip(raw["message_ids"], raw["data"], strict=True))
