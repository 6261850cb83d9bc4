"""The notifier (`pokewatch worker notifier`): watchlist alerts from signal changes and price updates.

Two stages, each at least once, in consumer group `notifier`:

1. **Matching.** It reads `pokewatch:signal-changes` and `pokewatch:price-updates`
   like every stream worker (workers.serving.runtime: batches, claiming, dead
   letters) and matches each event against every watchlist (workers.notify.rules).
   The alerts go to `pokewatch:alerts` in the same MULTI/EXEC that acks the
   event, so an event makes its alerts once, or is retried.
2. **Delivery.** It reads `pokewatch:alerts` and POSTs each alert whose watchlist
   has a webhook (workers.notify.webhooks), up to `webhook_concurrency` at once,
   so a receiver that answers 500 forever holds one slot per alert while the
   others are served. An alert is acked once delivered, or dead-lettered with
   the reason (and acked) once it will not be. While an alert is being
   delivered (retries and their waits included) its entry's idle time is reset
   every `claim_idle_ms / 3`, so no other replica claims it; a notifier killed
   mid-delivery leaves it pending, and the next one claims and sends it again
   with the same `webhook-id`.

The watchlists are read from Redis when `pokewatch:watchlist-version` moves
(the gateway bumps it on every change), checked before each batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from faststream.redis import RedisBroker
from pydantic import ValidationError
from redis.asyncio.client import Pipeline

from contracts import keys
from contracts.messages import PriceUpdated, SignalChanged
from contracts.watchlists import Alert, StoredWatchlist
from workers import dead_letters
from workers.config import NotifierSettings
from workers.notify.rules import WatchIndex, change_alerts, update_alerts
from workers.notify.webhooks import Undeliverable, WebhookSender
from workers.serving.entries import PAYLOAD, Entry, reason_of
from workers.serving.runtime import Route, StreamWorker

logger = logging.getLogger(__name__)

ALERTS = Route(keys.ALERTS_STREAM, keys.NOTIFIER_GROUP, Alert, lambda _m, _p: None, "alerts")


class NotifierWorker(StreamWorker[SignalChanged]):
    role = "notifier"
    stream = keys.SIGNAL_CHANGES_STREAM
    group = keys.NOTIFIER_GROUP
    message_type = SignalChanged

    def __init__(self, settings: NotifierSettings, replica_id: str | None = None) -> None:
        super().__init__(settings, replica_id)
        self.notify = settings
        self.index = WatchIndex()
        self._index_version: bytes | None = None
        self.sender = WebhookSender(settings)
        self.delivered = 0
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._inflight: set[bytes] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._keepalive: asyncio.Task[None] | None = None
        if self.metrics is not None:
            self.metrics.prepare([ALERTS.stream])

    # ------------------------------------------------------------ matching
    def routes(self) -> list[Route]:
        return [
            Route(keys.SIGNAL_CHANGES_STREAM, keys.NOTIFIER_GROUP, SignalChanged, self.process, "changes"),
            Route(keys.PRICE_UPDATES_STREAM, keys.NOTIFIER_GROUP, PriceUpdated, self.process_updates, "prices"),
        ]

    async def prepare(self) -> None:
        await keys.ensure_groups(self.redis, groups=keys.NOTIFY_GROUPS)

    async def before_batch(self) -> None:
        """Reload the watchlists if the gateway changed any since the last batch."""
        version = await self.redis.get(keys.WATCHLIST_VERSION)
        if version == self._index_version and self._index_version is not None:
            return
        owners = sorted(await self.redis.smembers(keys.WATCHLIST_OWNERS))
        lists: list[StoredWatchlist] = []
        for owner in owners:
            for raw in (await self.redis.hgetall(keys.watchlists_key(owner.decode()))).values():
                try:
                    lists.append(StoredWatchlist.model_validate_json(raw))
                except ValidationError as exc:
                    logger.error("skipping an unreadable watchlist of %s: %s", owner.decode(), reason_of(exc))
        self.index = WatchIndex.of(lists)
        self._index_version = version or b"0"
        logger.info("watching %d items of %d watchlists", len(self.index), len(lists))

    def process(self, messages: Sequence[SignalChanged], pipe: Pipeline) -> None:
        self._emit(
            [a for m in messages for a in change_alerts(m, self.index, _source(m, keys.SIGNAL_CHANGES_STREAM))], pipe
        )

    def process_updates(self, messages: Sequence[PriceUpdated], pipe: Pipeline) -> None:
        self._emit(
            [a for m in messages for a in update_alerts(m, self.index, _source(m, keys.PRICE_UPDATES_STREAM))], pipe
        )

    def _emit(self, alerts: list[Alert], pipe: Pipeline) -> None:
        for alert in alerts:
            pipe.xadd(
                keys.ALERTS_STREAM,
                {keys.PAYLOAD_FIELD: alert.model_dump_json()},
                maxlen=self.notify.alerts_maxlen,
                approximate=True,
            )
        if alerts:
            logger.info("%d alerts: %s", len(alerts), ", ".join(f"{a.card_id} {a.trigger}" for a in alerts[:5]))

    # ------------------------------------------------------------ delivery
    def add_subscribers(self, broker: RedisBroker) -> None:
        batch = min(self.settings.batch_size, self.notify.webhook_concurrency)
        self.subscribe_pair(broker, ALERTS, self.deliver_entries, max_records=batch)

    async def started(self) -> None:
        self._keepalive = asyncio.create_task(self._keep_claims())

    async def deliver_entries(self, entries: list[Entry], claimed: bool) -> None:
        """Start a delivery per alert (waiting for a free slot); bad entries are dead-lettered."""
        fresh = [(i, f) for i, f in entries if i not in self._inflight]  # the claimer may see our own
        self._inflight.update(i for i, _ in fresh)  # kept claimed from now on, even while waiting for a slot
        counts = await self.deliveries(ALERTS, [i for i, _ in fresh]) if claimed else {}
        for entry_id, fields in fresh:
            count = counts.get(entry_id, 1)
            try:
                alert = Alert.model_validate_json(fields.get(PAYLOAD, b""))
            except ValidationError as exc:
                reason = reason_of(exc) if PAYLOAD in fields else f"missing field {keys.PAYLOAD_FIELD!r}"
                await self._finish(entry_id, self._dead(entry_id, fields, reason, count, ALERTS))
                continue
            if count > self.settings.max_deliveries:
                reason = f"the notifier stopped during {count - 1} deliveries"
                await self._finish(entry_id, self._dead(entry_id, fields, reason, count, ALERTS))
                continue
            await self._slots.acquire()
            task = asyncio.create_task(self._deliver(entry_id, fields, alert, count))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _deliver(self, entry_id: bytes, fields: dict[bytes, bytes], alert: Alert, count: int) -> None:
        try:
            raw = await self.redis.hget(keys.watchlists_key(alert.owner), alert.watchlist_id)
            watchlist = StoredWatchlist.model_validate_json(raw) if raw else None
            if watchlist is None or not watchlist.webhook_url or not watchlist.webhook_secret:
                # Deleted since, or followed on the stream and SSE only: nothing to send.
                await self._finish(entry_id)
                return
            body = alert.model_dump_json()
            try:
                attempts = await self.sender.deliver(
                    watchlist.webhook_url, watchlist.webhook_secret, alert.alert_id, body
                )
            except Undeliverable as exc:
                reason = f"webhook of watchlist {alert.watchlist_id}: {exc}"
                await self._finish(entry_id, self._dead(entry_id, fields, reason, count, ALERTS))
                return
            self.delivered += 1
            logger.info("delivered %s to watchlist %s (%d attempts)", alert.alert_id, alert.watchlist_id, attempts)
            await self._finish(entry_id)
        except asyncio.CancelledError:
            raise  # stopping: the entry stays pending for the next notifier
        except Exception as exc:  # Redis away, a bug: left pending, claimed and tried again
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.exception("delivering %s failed; left pending", alert.alert_id)
        finally:
            self._inflight.discard(entry_id)

    async def _finish(self, entry_id: bytes, letter: Any = None) -> None:
        """Ack an alert's entry, with its dead letter if it has one, in one transaction."""
        pipe = self.redis.pipeline(transaction=True)
        if letter is not None:
            dead_letters.write(pipe, letter, self.settings.dead_letter_maxlen)
            self.dead_lettered += 1
            if self.metrics is not None:
                self.metrics.dead_lettered(ALERTS.stream, letter.reason)
        elif self.metrics is not None:
            self.metrics.messages.labels(ALERTS.stream, "processed").inc()
        pipe.xack(ALERTS.stream, ALERTS.group, entry_id)
        await pipe.execute()
        self._inflight.discard(entry_id)
        self.processed += 1

    async def _keep_claims(self) -> None:
        """Reset the idle time of the alerts being delivered, so no replica claims them meanwhile."""
        while True:
            await asyncio.sleep(self.settings.claim_idle_ms / 3000)
            ids = list(self._inflight)
            if not ids:
                continue
            try:
                await self.redis.xclaim(ALERTS.stream, ALERTS.group, self.replica_id, 0, ids, justid=True)
            except Exception as exc:  # the next round tries again
                logger.warning("keeping %d alerts claimed failed: %s", len(ids), exc)

    # ------------------------------------------------------------ shutdown
    async def _shutdown(self) -> None:
        if self._tasks:
            logger.info("waiting for %d deliveries", len(self._tasks))
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.settings.graceful_timeout_s)
            for task in pending:
                task.cancel()  # left pending in the group: the next notifier delivers them
        if self._keepalive:
            self._keepalive.cancel()
        await super()._shutdown()

    async def _cleanup(self) -> None:
        with contextlib.suppress(Exception):
            mine = {self.replica_id, f"{self.replica_id}:claimer"}
            for consumer in mine:
                if not await self.redis.xpending_range(ALERTS.stream, ALERTS.group, "-", "+", 1, consumername=consumer):
                    await self.redis.xgroup_delconsumer(ALERTS.stream, ALERTS.group, consumer)
        await self.sender.aclose()
        await super()._cleanup()


def _source(message: SignalChanged | PriceUpdated, stream: str) -> str:
    """What an alert came from, stable across redeliveries of the same event."""
    d = message.decision
    return f"{stream} {message.card_id} {d.date} {d.model_version} {d.request_id} {d.decided_at}"
