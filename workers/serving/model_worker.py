"""Model worker: PredictRequest in, PriceQuotes out (consumer group `model`).

Any number of replicas share the predict stream through the group. Each loads
the MLflow `champion` with its serving state (see workers.serving.state)
before it starts reading, and stamps every quote with that model version and
its replica id. It swaps to newer versions as they are published
(workers.serving.reload), publishes the catalog of the version it serves
(workers.serving.catalog) and, when the version changes, one replica of the
set scans the market (workers.serving.scan).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from faststream.redis import RedisBroker, StreamSub
from pydantic import ValidationError
from redis.asyncio.client import Pipeline

from contracts import keys
from contracts.logs import request_context
from contracts.messages import ModelDecision, ModelPublished, PredictRequest, PriceQuotes
from workers import model_events
from workers.config import WorkerSettings
from workers.serving.catalog import publish_catalog
from workers.serving.entries import Entry, decode_entries, keep_raw_entries, reason_of
from workers.serving.reload import HotReloader
from workers.serving.runtime import StreamWorker
from workers.serving.scan import run_scan
from workers.serving.state import ServingState

logger = logging.getLogger(__name__)


class ModelWorker(StreamWorker[PredictRequest]):
    role = "model"
    stream = keys.PREDICT_STREAM
    group = keys.MODEL_GROUP
    message_type = PredictRequest

    def __init__(
        self, settings: WorkerSettings, replica_id: str | None = None, wait_for_champion_s: float = 0.0
    ) -> None:
        super().__init__(settings, replica_id)
        self.wait_for_champion_s = wait_for_champion_s
        self.reloader = HotReloader(self)
        self._events_from = "$"
        self._first_load: ServingState | None = None
        self._scans: set[asyncio.Task[None]] = set()

    def model_version(self) -> str | None:
        return self.reloader.version

    async def prepare(self) -> None:
        state = self.reloader.state
        if state is None:
            state = await self.reloader.load_champion(self.wait_for_champion_s)
            self._first_load = state
        # Restarted after its consumer group vanished (the server may have lost
        # everything), the replica keeps its model and publishes the catalog again.
        await self.publish_catalog(state)

    async def started(self) -> None:
        self.reloader.start_polling()
        if self._first_load is not None:
            # Heartbeats now show the version, so the scan's wait for the other replicas can see it.
            await self.beat()
            self.scan_market(None, self._first_load)
            self._first_load = None

    def scan_market(self, served: str | None, state: ServingState) -> None:
        """Start the market scan of a swap to `state` (run by the one replica that claims it)."""
        if not self.settings.scan:
            return

        async def scan() -> None:
            try:
                await run_scan(self.redis, self.settings, served, state.version, list(state.cards), self.replica_id)
            except Exception:
                logger.exception("market scan of version %s failed", state.version)

        self._scans = {t for t in self._scans if not t.done()} | {asyncio.create_task(scan())}

    async def publish_catalog(self, state: ServingState) -> None:
        await publish_catalog(self.redis, state, self.replica_id)

    # ------------------------------------------------------------ model events
    async def before_build(self) -> None:
        # Model events are a broadcast read with XREAD, not a group. Reading
        # from "$" would miss every event added while no read is blocked (the
        # replica busy between two reads, or still loading its model): start
        # instead after the stream's last entry as it is now, so each event
        # added from here on is read exactly once.
        last = await self.redis.xrevrange(keys.MODEL_EVENTS_STREAM, count=1)
        entry_id = last[0][0] if last else None
        self._events_from = entry_id.decode() if isinstance(entry_id, bytes) else entry_id or "0-0"

    def add_subscribers(self, broker: RedisBroker) -> None:
        events = StreamSub(keys.MODEL_EVENTS_STREAM, batch=True, polling_interval=500, last_id=self._events_from)

        async def on_events(entries: Any) -> None:
            await self.on_model_events(entries)

        broker.subscriber(
            stream=events, title="model-events", no_reply=True, parser=keep_raw_entries, decoder=decode_entries
        )(on_events)

    async def on_model_events(self, entries: list[Entry]) -> None:
        for entry_id, fields in entries:
            raw = fields.get(keys.PAYLOAD_FIELD.encode())
            try:
                event = model_events.parse(raw if raw is not None else b"")
            except ValidationError as exc:
                reason = reason_of(exc) if raw is not None else f"missing field {keys.PAYLOAD_FIELD!r}"
                await self.dead_letter(self._dead(entry_id, fields, reason, 1, stream=keys.MODEL_EVENTS_STREAM))
                continue
            if isinstance(event, ModelPublished):
                self.reloader.on_published(event)
            elif isinstance(event, ModelDecision):
                self.on_decision(event)

    def on_decision(self, decision: ModelDecision) -> None:
        """A lifecycle decision: model replicas follow the champion through its ModelPublished event."""

    async def _shutdown(self) -> None:
        self.reloader.cancel()
        for task in self._scans:
            task.cancel()
        await super()._shutdown()

    # ------------------------------------------------------------ pricing
    def process(self, messages: Sequence[PredictRequest], pipe: Pipeline) -> None:
        state = self.reloader.state  # one version for the whole batch, even if a reload swaps meanwhile
        if state is None:
            raise RuntimeError("no model loaded")
        for request in messages:
            with request_context(request.request_id):
                quotes = PriceQuotes(
                    request_id=request.request_id,
                    reply_to=request.reply_to,
                    deadline=request.deadline,
                    basis=state.basis,
                    results=state.quote(request.items, self.replica_id),
                )
                pipe.xadd(
                    keys.QUOTES_STREAM,
                    {keys.PAYLOAD_FIELD: quotes.model_dump_json()},
                    maxlen=self.settings.stream_maxlen,
                    approximate=True,
                )
                logger.debug("priced %d items with version %s", len(request.items), state.version)
