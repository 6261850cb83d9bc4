"""Challenger replica: the same requests as the champion, priced by the challenger, never answered.

A challenger replica is a model replica that serves the MLflow `challenger`
alias instead of `champion` and reads `pokewatch:predict` in its own
consumer group (`shadow`), so it sees every request users send without
taking any from the champion's group. For each request it writes what the
challenger would have answered (the quotes and their signals) to
`pokewatch:shadow-quotes`, keyed by the request id, capped near
`POKEWATCH_SHADOW_MAXLEN`. It never replies, never writes quotes, signals,
alerts or changes, never publishes the catalog and never scans the market.

Costs to users: the requests are appended once, whoever reads them; the
champion's replicas do not wait for the shadow group. A challenger that
lags or dies leaves its group behind; the predict stream is capped by its
publisher whatever the groups have read, so Redis does not grow (entries a
dead challenger never read are trimmed; their scores are simply missing).

With no challenger set the replica idles: it does not read the requests at
all (its app runs only the model-events subscriber), and it starts reading as
soon as a challenger is announced (`ModelPublished` with alias `challenger`)
or found by its alias poll. Setting a challenger creates the `shadow` group
at the stream's end, clearing it destroys the group
(workers.pipeline.lifecycle), so with no challenger nothing lags and a lag
autoscaler keeps the challenger Deployment at zero replicas.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

from redis.asyncio.client import Pipeline

from contracts import keys
from contracts.messages import ModelDecision, PredictRequest, Quote, ShadowQuotes
from workers import registry
from workers.config import WorkerSettings
from workers.serving.decision_worker import signals_of
from workers.serving.model_worker import ModelWorker
from workers.serving.reload import HotReloader
from workers.serving.runtime import Route
from workers.serving.state import ServingState

logger = logging.getLogger(__name__)


class ChallengerWorker(ModelWorker):
    role = "challenger"
    group = keys.SHADOW_GROUP
    # The model group dead-letters a bad request once; the shadow group only skips it.
    writes_dead_letters = False
    group_start_id = "$"

    def __init__(self, settings: WorkerSettings, replica_id: str | None = None) -> None:
        super().__init__(settings, replica_id)
        self.reloader = HotReloader(self, alias=registry.CHALLENGER, announce_failures=False)
        self.shadowed = 0
        self._reading = False
        self._watch: asyncio.Task[None] | None = None

    def routes(self) -> list[Route]:
        """The shadow group's route while a challenger is loaded; none while idle."""
        reloader = getattr(self, "reloader", None)  # None while the base class is built
        return super().routes() if reloader is None or reloader.state is not None else []

    async def prepare(self) -> None:
        """The challenger is loaded before the app is built (`before_build`): its routes depend on it."""

    async def before_build(self) -> None:
        await super().before_build()
        if self.reloader.state is None:
            try:
                await self.reloader.load_champion(0.0)
            except registry.NoChampionError:
                logger.info("no challenger set: idle until one is announced")
            return
        # Withdrawn while reading (the group was destroyed with it): come back idle, and do not
        # create the group again.
        try:
            await asyncio.to_thread(registry.alias_ref, self.settings, registry.CHALLENGER)
        except registry.NoChampionError:
            logger.info("challenger %s was withdrawn: idle", self.reloader.version)
            self.reloader.state = None
        except Exception as exc:  # the registry away: keep what is loaded
            logger.warning("challenger check failed: %s", exc)

    def _subscribe(self, broker: Any, route: Route) -> None:
        # Larger batches than the champion's: fewer round trips; a shadow answer may wait.
        self.subscribe_pair(broker, route, partial(self.handle, route=route), max_records=self.settings.shadow_batch)

    def build_app(self) -> Any:
        app = super().build_app()
        self._reading = self.reloader.state is not None
        return app

    async def started(self) -> None:
        self.reloader.start_polling()
        self._watch = asyncio.create_task(self._watch_state())

    async def _watch_state(self) -> None:
        """Rebuild the app (runtime.run starts it again) when the replica goes from idle to
        reading or back, so the subscribers match whether a challenger is loaded."""
        while (self.reloader.state is not None) == self._reading:
            await asyncio.sleep(0.2)
        logger.info("challenger %s: %s", self.reloader.version or "none", "reading" if not self._reading else "idle")
        if self._app is not None:
            self.restart_reason = "challenger loaded" if not self._reading else "challenger withdrawn"
            self._app.exit()

    async def _shutdown(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await super()._shutdown()

    def scan_market(self, served: str | None, state: ServingState) -> None:
        """Users' signals come from the champion only."""

    async def publish_catalog(self, state: ServingState) -> None:
        """The catalog users browse is the champion's."""

    def on_decision(self, decision: ModelDecision) -> None:
        # A decision may have moved the alias (promoted, retired): look now rather than at the next poll.
        if decision.applied and decision.action in ("promote", "retire"):
            self.reloader.recheck()

    def process(self, messages: Sequence[PredictRequest], pipe: Pipeline) -> None:
        state = self.reloader.state
        if state is None:
            return  # the challenger was withdrawn mid-batch: acknowledged, nothing written
        answers = [state.quote(request.items, self.replica_id) for request in messages]
        # One vectorized signal call for the whole batch (no reasons: nobody reads them here).
        priced = [q for results in answers for q in results if isinstance(q, Quote)]
        signals: Iterator[Any] = iter(signals_of(priced, self.settings.rule, state.basis, self.settings.trade_fee))
        for request, results in zip(messages, answers, strict=True):
            shadow = ShadowQuotes(
                request_id=request.request_id,
                model_version=state.version,
                served_by=self.replica_id,
                results=results,
                signals=[next(signals) if isinstance(q, Quote) else None for q in results],
            )
            pipe.xadd(
                keys.SHADOW_STREAM,
                {keys.PAYLOAD_FIELD: shadow.model_dump_json()},
                maxlen=self.settings.shadow_maxlen,
                approximate=True,
            )
            self.shadowed += len(request.items)
