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

With no challenger set the replica idles: it acknowledges requests without
pricing them, and loads a challenger as soon as one is announced
(`ModelPublished` with alias `challenger`) or found by its alias poll.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from redis.asyncio.client import Pipeline

from contracts import keys
from contracts.messages import ModelDecision, PredictRequest, ShadowQuotes
from workers import registry
from workers.config import WorkerSettings
from workers.serving.decision_worker import decide_quotes
from workers.serving.entries import Entry
from workers.serving.model_worker import ModelWorker
from workers.serving.reload import HotReloader
from workers.serving.state import ServingState

logger = logging.getLogger(__name__)


class ChallengerWorker(ModelWorker):
    role = "challenger"
    group = keys.SHADOW_GROUP
    # The model group dead-letters a bad request once; the shadow group only skips it.
    writes_dead_letters = False

    def __init__(self, settings: WorkerSettings, replica_id: str | None = None) -> None:
        super().__init__(settings, replica_id)
        self.reloader = HotReloader(self, alias=registry.CHALLENGER, announce_failures=False)
        self.shadowed = 0

    async def prepare(self) -> None:
        if self.reloader.state is None:
            try:
                await self.reloader.load_champion(0.0)
            except registry.NoChampionError:
                logger.info("no challenger set: idle until one is announced")

    async def started(self) -> None:
        self.reloader.start_polling()

    def scan_market(self, served: str | None, state: ServingState) -> None:
        """Users' signals come from the champion only."""

    async def publish_catalog(self, state: ServingState) -> None:
        """The catalog users browse is the champion's."""

    async def on_model_events(self, entries: list[Entry]) -> None:
        await super().on_model_events(entries)
        # A decision may have moved the alias (promoted, retired): look now rather than at the next poll.
        for _, fields in entries:
            raw = fields.get(keys.PAYLOAD_FIELD.encode()) or b""
            if b'"decision"' in raw:
                try:
                    decision = ModelDecision.model_validate_json(raw)
                except ValueError:
                    continue
                if decision.applied and decision.action in ("promote", "retire"):
                    self.reloader.recheck()

    def process(self, messages: Sequence[PredictRequest], pipe: Pipeline) -> None:
        state = self.reloader.state
        if state is None:
            return  # no challenger: the entries are acknowledged, nothing is written
        for request in messages:
            results = state.quote(request.items, self.replica_id)
            decided = decide_quotes(
                results, request.request_id, self.settings.rule, state.basis, self.settings.trade_fee
            )
            shadow = ShadowQuotes(
                request_id=request.request_id,
                model_version=state.version,
                served_by=self.replica_id,
                results=results,
                signals=[getattr(d, "signal", None) for d in decided],
            )
            pipe.xadd(
                keys.SHADOW_STREAM,
                {keys.PAYLOAD_FIELD: shadow.model_dump_json()},
                maxlen=self.settings.shadow_maxlen,
                approximate=True,
            )
            self.shadowed += len(request.items)
