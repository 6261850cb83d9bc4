"""The catalog: the served card list and price histories the gateway browses (`/cards`).

A model replica publishes it from the version it serves, built under
temporary keys and swapped in with RENAME: readers see the old catalog or
the new one, never a mix. (The *tracked* cards, cards.yaml, are the
pipeline's: workers.pipeline.tracked_cards.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from contracts import keys
from workers.serving.loader import release_memory
from workers.serving.state import ServingState

logger = logging.getLogger(__name__)

CHUNK = 1000


async def publish_catalog(redis: Any, state: ServingState, replica_id: str) -> None:
    """Refresh the catalog if it describes another version than `state`'s."""
    current = await redis.get(keys.CATALOG_VERSION_KEY)
    if current is not None and (current.decode() if isinstance(current, bytes) else current) == state.version:
        return
    summary, history = await asyncio.to_thread(state.catalog)
    tmp_catalog = f"{keys.CATALOG_HASH}:tmp:{replica_id}"
    tmp_history = f"{keys.HISTORY_HASH}:tmp:{replica_id}"
    pipe = redis.pipeline(transaction=False)
    pipe.delete(tmp_catalog, tmp_history)
    for key, doc in ((tmp_catalog, summary), (tmp_history, history)):
        items = list(doc.items())
        for start in range(0, len(items), CHUNK):
            pipe.hset(key, mapping=dict(items[start : start + CHUNK]))
    await pipe.execute()
    swap = redis.pipeline(transaction=True)
    swap.rename(tmp_catalog, keys.CATALOG_HASH)
    swap.rename(tmp_history, keys.HISTORY_HASH)
    swap.set(keys.CATALOG_VERSION_KEY, state.version)
    await swap.execute()
    logger.info("catalog of version %s published: %d cards", state.version, len(summary))
    del summary, history
    release_memory()
