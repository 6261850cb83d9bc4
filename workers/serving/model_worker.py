"""Model worker: PredictRequest in, PriceQuotes out (consumer group `model`).

Any number of replicas share the predict stream through the group. Each loads
the MLflow `champion` with its serving state (see workers.serving.state)
before it starts reading, and stamps every quote with that model version and
its replica id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from redis.asyncio.client import Pipeline

from contracts import keys
from contracts.messages import PredictRequest, PriceQuotes
from contracts.settings import ServingSettings
from workers.config import PipelineSettings
from workers.serving.loader import NoChampionError, champion_ref, load_state
from workers.serving.runtime import StreamWorker
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

    def model_version(self) -> str | None:
        return self.state.version if self.state else None

    async def prepare(self) -> None:
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
        self.state = await asyncio.to_thread(load_state, self.pipeline_settings, ref)
        await self.publish_catalog(self.state)

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

    def process(self, messages: Sequence[PredictRequest], pipe: Pipeline) -> None:
        state = self.state
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
