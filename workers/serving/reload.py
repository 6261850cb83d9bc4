"""Hot reload: which model version a replica serves, and the swap to another one.

Every model replica follows `pokewatch:model-events` as a broadcast (XREAD, no
group). On a `ModelPublished` event for a newer version (or any version when
the event is a rollback) it loads that version in a background thread while
it keeps serving the old one, prices a card as a smoke test, then swaps the
state in one assignment: a batch is priced entirely by one version. If
loading fails it keeps the old version, logs, records the error in its
heartbeat and appends a `ModelLoadFailed` event.

An event names the version's URI and run; the replica loads only what the
registry says that version is, and refuses an event whose URI or run does not
match (a forged or stale event cannot make it load another artifact).

A replica that missed events catches up on start-up (it loads the champion)
and by checking the champion alias every `POKEWATCH_CHAMPION_POLL_S` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Protocol

from contracts.messages import ModelLoadFailed, ModelPublished, PredictItem, Quote
from workers import model_events, registry
from workers.config import WorkerSettings
from workers.serving.loader import load_state
from workers.serving.state import ServingState

logger = logging.getLogger(__name__)


class Replica(Protocol):
    """What the reloader needs of the model worker it serves."""

    settings: WorkerSettings
    replica_id: str
    redis: Any
    last_error: str | None
    last_load_s: float | None
    reload_failures: int

    async def beat(self) -> None: ...

    async def publish_catalog(self, state: ServingState) -> None: ...

    def scan_market(self, served: str | None, state: ServingState) -> None: ...


class StaleEvent(ValueError):
    """A model event that does not describe the registered version it names."""


class HotReloader:
    """Holds the served `state` and replaces it, one version at a time."""

    def __init__(self, replica: Replica, alias: str = registry.CHAMPION, announce_failures: bool = True) -> None:
        self.replica = replica
        self.settings = replica.settings
        # Which alias the replica serves: model replicas the champion, challenger replicas the challenger.
        self.alias = alias
        # Model replicas announce a failed load (the lifecycle rule rolls a champion back on them);
        # challenger replicas only show it in their heartbeat.
        self.announce_failures = announce_failures
        self.state: ServingState | None = None
        self._wanted: tuple[registry.VersionRef | None, ModelPublished | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None

    @property
    def version(self) -> str | None:
        return self.state.version if self.state else None

    async def load_champion(self, wait_s: float = 0.0) -> ServingState:
        """Load the champion before serving, waiting up to `wait_s` for one to exist."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            try:
                ref = await asyncio.to_thread(registry.alias_ref, self.settings, self.alias)
                break
            except registry.NoChampionError:
                if loop.time() >= deadline:
                    raise
                logger.warning("no %s model yet; waiting", self.alias)
                await asyncio.sleep(5)
        started = time.perf_counter()
        self.state = await asyncio.to_thread(load_state, self.settings, ref)
        self.replica.last_load_s = round(time.perf_counter() - started, 3)
        return self.state

    def on_published(self, event: ModelPublished) -> None:
        """Schedule a background load of the event's version if it is wanted."""
        if event.model_name != self.settings.model_name or event.alias != self.alias:
            return
        current = self.version
        # A challenger may be any version; a champion only moves forward, unless rolled back.
        forward = event.rollback or self.alias != registry.CHAMPION or model_events.is_newer(event.version, current)
        if event.version == current or not forward:
            logger.info("ignoring model event for version %s (serving %s)", event.version, current)
            return
        self._want(None, event)

    def start_polling(self) -> None:
        self._poller = asyncio.create_task(self._poll_champion())

    def cancel(self) -> None:
        for task in (self._poller, self._task):
            if task:
                task.cancel()

    def _want(self, ref: registry.VersionRef | None, event: ModelPublished | None) -> None:
        self._wanted = (ref, event)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._reload_loop())

    async def _reload_loop(self) -> None:
        # Events that arrive during a load are folded: only the latest is loaded next.
        while self._wanted is not None:
            ref, event = self._wanted
            self._wanted = None
            await self.reload(ref, event)

    async def reload(self, ref: registry.VersionRef | None, event: ModelPublished | None) -> bool:
        """Load, smoke-test and swap in a version; on failure keep serving the current one."""
        version = ref.version if ref else event.version if event else "?"
        old = self.version
        started = time.perf_counter()
        try:
            if ref is None:
                ref = await asyncio.to_thread(registry.version_ref, self.settings, version)
            if event is not None:
                check_event(event, ref)
            state = await asyncio.to_thread(load_state, self.settings, ref)
            smoke_test(state)
        except Exception as exc:
            await self._failed(version, old, exc)
            return False
        self.state = state  # the swap: one reference assignment, between two batches
        seconds = time.perf_counter() - started
        self.replica.last_load_s = round(seconds, 3)
        self.replica.last_error = None
        headline = f"; evaluation {event.metrics}" if event is not None and event.metrics else ""
        logger.info("now serving version %s (was %s); loaded in %.2f s%s", version, old, seconds, headline)
        await self.replica.beat()
        await self.replica.publish_catalog(state)
        self.replica.scan_market(old, state)
        return True

    async def _failed(self, version: str, old: str | None, exc: Exception) -> None:
        self.replica.reload_failures += 1
        error = f"loading version {version} failed: {type(exc).__name__}: {exc}"
        logger.exception("%s; still serving version %s", error, old)
        self.replica.last_error = error[:500]
        failed = ModelLoadFailed(
            model_name=self.settings.model_name,
            version=version,
            replica_id=self.replica.replica_id,
            serving_version=old,
            error=error[:2000],
        )
        # Heartbeat first: whoever reacts to the event finds the error in /health.
        await self.replica.beat()
        if self.announce_failures:
            await model_events.publish_event(self.replica.redis, failed)

    def recheck(self) -> None:
        """Check the alias now (e.g. the lifecycle rule moved it), not at the next poll."""
        if self._poller is not None and not self._poller.done():
            self._poller.cancel()
        self._poller = asyncio.create_task(self._poll_champion(first_wait=0.0))

    async def _poll_champion(self, first_wait: float | None = None) -> None:
        """Catch up with an alias change whose event this replica missed."""
        wait = self.settings.champion_poll_s if first_wait is None else first_wait
        while True:
            await asyncio.sleep(wait)
            wait = self.settings.champion_poll_s
            try:
                ref = await asyncio.to_thread(registry.alias_ref, self.settings, self.alias)
            except registry.NoChampionError:
                if self.alias != registry.CHAMPION and self.state is not None:
                    logger.info("no %s any more (was version %s): idle", self.alias, self.version)
                    self.state = None
                    await self.replica.beat()
                continue
            except Exception as exc:  # the registry may be briefly unreachable
                logger.warning("champion check failed: %s", exc)
                continue
            idle = self._wanted is None and (self._task is None or self._task.done())
            if ref.version != self.version and idle:
                logger.info("%s is version %s, serving %s: reloading", self.alias, ref.version, self.version)
                self._want(ref, None)


def check_event(event: ModelPublished, ref: registry.VersionRef) -> None:
    """Refuse an event whose URI or run is not the registry's for its version."""
    if event.model_uri != ref.model_uri:
        raise StaleEvent(
            f"event names {event.model_uri!r}, the registry has {ref.model_uri!r} for version {ref.version}"
        )
    if event.run_id is not None and event.run_id != ref.run_id:
        raise StaleEvent(f"event names run {event.run_id!r}, version {ref.version} was logged by run {ref.run_id!r}")


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
