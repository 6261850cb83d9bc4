"""The served card catalog as the gateway reads it from Redis, cached until its version changes.

Model replicas publish it (workers.serving.catalog); `/cards` pages through it.
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from gateway.schemas import CardSummary


class Catalog:
    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.version: bytes | str | None = None
        self.cards: list[CardSummary] = []

    async def all(self) -> list[CardSummary]:
        version = await self.redis.get(keys.CATALOG_VERSION_KEY)
        if version is None:
            return []
        if version != self.version:
            raw = await self.redis.hgetall(keys.CATALOG_HASH)
            cards = [CardSummary.model_validate_json(v) for v in raw.values()]
            self.cards = sorted(cards, key=lambda c: c.card_id)
            self.version = version
        return self.cards
