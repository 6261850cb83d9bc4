"""Model worker: PredictRequest in, PriceQuotes out (consumer group `model`).

Any number of replicas share the predict stream through the group. Each loads
the MLflow `champion` with its serving state (see workers.serving.state)
before it starts reading, and stamps every quote with that model version and
its replica id.

Hot reload. Every replica also follows `pokewatch:model-events` as a
broadcast (XREAD, no group). On a `ModelPublished` event for a newer version
(or any version when the event is a rollback) it loads that version in a
background thread while it keeps serving the old one, prices a card as a smoke
test, then swaps the state in one assignment: a batch is priced entirely by
one version. If loading fails it keeps the old version, logs, records the
error in its heartbeat and appends a `ModelLoadFailed` event. A replica that
missed events catches up on start-up (it loads the champion) and by checking
the champion alias every `POKEWATCH_CHAMPION_POLL_S` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from faststream.redis import RedisBroker, StreamSub
from pydantic import ValidationError
from redis.asyncio.client import Pipeline

from contracts import keys
from contracts.messages import ModelLoadFailed, ModelPublished, PredictItem, PredictRequest, PriceQuotes, Quote
from contracts.settings import ServingSettings
from workers.config import PipelineSettings
from workers.serving.events import EVENTS, EVENTS_MAXLEN, is_newer
from workers.serving.loader import (
    NoChampionError,
    VersionRef,
    champion_ref,
    load_state,
    release_memory,
    version_ref,
)
from workers.serving.runtime import Entry, StreamWorker, decode_entries, keep_raw_entries, reason_of
from workers.serving.state import ServingState

logger = logging.getLogger(__name__)


class ModelWorker(StreamWorker[PredictRequest]):
    role = "model"
    stream = keys.PREDICT_STREAM
    group = keys.MODEL_GROUP
    message_type = PredictRequest

    def __init__(
        self,
        settings: ServingSettings,
        pipeline_settings: PipelineSettings | None = None,
        replica_id: str | None = None,
        wait_for_champion_s: float = 0.0,
    ) -> None:
        super().__init__(settings, replica_id)
        self.pipeline_settings = pipeline_settings or PipelineSettings()
        self.wait_for_champion_s = wait_for_champion_s
        self.state: ServingState | None = None
        self._wanted: tuple[VersionRef | None, ModelPublished | None] | None = None
        self._reloader: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._events_from = "$"

    def model_version(self) -> str | None:
        return self.state.version if self.state else None

    async def prepare(self) -> None:
        if self.state is not None:
            # Restarted after its consumer group vanished (the server may have
            # lost everything): keep the model, publish the catalog again.
            await self.publish_catalog(self.state)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_for_champion_s
        while True:
            try:
                ref = await asyncio.to_thread(champion_ref, self.pipeline_settings)
                break
            except NoChampionError:
                if loop.time() >= deadline:
                    raise
                logger.warning("no champion model yet; waiting")
                await asyncio.sleep(5)
        started = time.perf_counter()
        self.state = await asyncio.to_thread(load_state, self.pipeline_settings, ref)
        self.last_load_s = round(time.perf_counter() - started, 3)
        await self.publish_catalog(self.state)

    # ------------------------------------------------------------ hot reload
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

    async def started(self) -> None:
        self._poller = asyncio.create_task(self._poll_champion())

    async def on_model_events(self, entries: list[Entry]) -> None:
        for entry_id, fields in entries:
            raw = fields.get(keys.PAYLOAD_FIELD.encode())
            try:
                event = EVENTS.validate_json(raw if raw is not None else b"")
            except ValidationError as exc:
                reason = reason_of(exc) if raw is not None else f"missing field {keys.PAYLOAD_FIELD!r}"
                await self.dead_letter(self._dead(entry_id, fields, reason, 1, stream=keys.MODEL_EVENTS_STREAM))
                continue
            if isinstance(event, ModelPublished):
                self.on_published(event)

    def on_published(self, event: ModelPublished) -> None:
        """Schedule a background load of the event's version if it is wanted."""
        if event.model_name != self.pipeline_settings.model_name:
            return
        current = self.model_version()
        if event.version == current or not (event.rollback or is_newer(event.version, current)):
            logger.info("ignoring model event for version %s (serving %s)", event.version, current)
            return
        self._want(None, event)

    def _want(self, ref: VersionRef | None, event: ModelPublished | None) -> None:
        self._wanted = (ref, event)
        if self._reloader is None or self._reloader.done():
            self._reloader = asyncio.create_task(self._reload_loop())

    async def _reload_loop(self) -> None:
        # Events that arrive during a load are folded: only the latest is loaded next.
        while self._wanted is not None:
            ref, event = self._wanted
            self._wanted = None
            await self.reload(ref, event)

    async def reload(self, ref: VersionRef | None, event: ModelPublished | None) -> bool:
        """Load, smoke-test and swap in a version; on failure keep serving the current one."""
        version = ref.version if ref else event.version if event else "?"
        old = self.model_version()
        started = time.perf_counter()
        try:
            if ref is None:
                ref = await asyncio.to_thread(version_ref, self.pipeline_settings, version)
            state = await asyncio.to_thread(load_state, self.pipeline_settings, ref)
            smoke_test(state)
        except Exception as exc:
            error = f"loading version {version} failed: {type(exc).__name__}: {exc}"
            logger.exception("%s; still serving version %s", error, old)
            self.last_error = error[:500]
            failed = ModelLoadFailed(
                model_name=self.pipeline_settings.model_name,
                version=version,
                replica_id=self.replica_id,
                serving_version=old,
                error=error[:2000],
            )
            # Heartbeat first: whoever reacts to the event finds the error in /health.
            await self.beat()
            await self.redis.xadd(
                keys.MODEL_EVENTS_STREAM,
                {keys.PAYLOAD_FIELD: failed.model_dump_json()},
                maxlen=EVENTS_MAXLEN,
                approximate=True,
            )
            return False
        self.state = state  # the swap: one reference assignment, between two batches
        seconds = time.perf_counter() - started
        self.last_load_s = round(seconds, 3)
        self.last_error = None
        logger.info("now serving version %s (was %s); loaded in %.2f s", version, old, seconds)
        await self.beat()
        await self.publish_catalog(state)
        return True

    async def _poll_champion(self) -> None:
        """Catch up with a champion change whose event this replica missed."""
        while True:
            await asyncio.sleep(self.settings.champion_poll_s)
            try:
                ref = await asyncio.to_thread(champion_ref, self.pipeline_settings)
            except Exception as exc:  # the registry may be briefly unreachable
                logger.warning("champion check failed: %s", exc)
                continue
            idle = self._wanted is None and (self._reloader is None or self._reloader.done())
            if ref.version != self.model_version() and idle:
                logger.info("champion is version %s, serving %s: reloading", ref.version, self.model_version())
                self._want(ref, None)

    async def _shutdown(self) -> None:
        for task in (self._poller, self._reloader):
            if task:
                task.cancel()
        await super()._shutdown()

    async def publish_catalog(self, state: ServingState) -> None:
        """Refresh the gateway's card catalog if it describes another version.

        Built under temporary keys and swapped in with RENAME: readers see the
        old catalog or the new one, never a mix.
        """
        current = await self.redis.get(keys.CATALOG_VERSION_KEY)
        if current is not None and (current.decode() if isinstance(current, bytes) else current) == state.version:
            return
        summary, history = await asyncio.to_thread(state.catalog)
        tmp_catalog = f"{keys.CATALOG_HASH}:tmp:{self.replica_id}"
        tmp_history = f"{keys.HISTORY_HASH}:tmp:{self.replica_id}"
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(tmp_catalog, tmp_history)
        items = list(summary.items())
        for start in range(0, len(items), 1000):
            pipe.hset(tmp_catalog, mapping=dict(items[start : start + 1000]))
        hist = list(history.items())
        for start in range(0, len(hist), 1000):
            pipe.hset(tmp_history, mapping=dict(hist[start : start + 1000]))
        await pipe.execute()
        swap = self.redis.pipeline(transaction=True)
        swap.rename(tmp_catalog, keys.CATALOG_HASH)
        swap.rename(tmp_history, keys.HISTORY_HASH)
        swap.set(keys.CATALOG_VERSION_KEY, state.version)
        await swap.execute()
        logger.info("catalog of version %s published: %d cards", state.version, len(summary))
        del summary, history, items, hist
        release_memory()

    def process(self, messages: Sequence[PredictRequest], pipe: Pipeline) -> None:
        state = self.state  # one version for the whole batch, even if a reload swaps meanwhile
        if state is None:
            raise RuntimeError("no model loaded")
        for request in messages:
            quotes = PriceQuotes(
                request_id=request.request_id,
                reply_to=request.reply_to,
                deadline=request.deadline,
                results=state.quote(request.items, self.replica_id),
            )
            pipe.xadd(
                keys.QUOTES_STREAM,
                {keys.PAYLOAD_FIELD: quotes.model_dump_json()},
                maxlen=self.settings.stream_maxlen,
                approximate=True,
            )


def smoke_test(state: ServingState) -> None:
    """Price one card with a freshly loaded state; raise if the answer is not a sane quote."""
    if not state.cards:
        raise ValueError("serving state has no cards")
    card = next(iter(state.cards))
    (quote,) = state.quote([PredictItem(card_id=card)], "smoke-test")
    if not isinstance(quote, Quote):
        raise ValueError(f"smoke test on {card!r} returned {quote}")
    prices = (quote.market_price, quote.fair_price, quote.fair_price_low, quote.fair_price_high)
    if not all(math.isfinite(p) and p > 0 for p in prices):
        raise ValueError(f"smoke test on {card!r} gave non-positive or non-finite prices {prices}")
