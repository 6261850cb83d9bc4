"""Client for the Pokémon Price Tracker API v2 (cards of a set, with price history).

GET {base}/cards?set=<set id>&includeHistory=true&days=<n>&limit=<k>&offset=<o>
GET {base}/cards?cardId=<card id>&includeHistory=true&days=<n>
Authorization: Bearer <POKEMONPRICETRACKER_API_KEY>

Responses are `{"data": [card...], "metadata": {"hasMore": bool, ...}}`; a card
carries `id`, `name`, `setName`, and `priceHistory`, either a list of
`{"date", "market"|"price", "volume"?}` points or the per-condition form
`{"conditions": {"Near Mint": {"history": [...]}}}` (Near Mint is used).
429 and 5xx are retried with exponential backoff (honouring Retry-After);
401/403 and 404 fail at once with a message that says what to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pandas as pd
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from workers.pipeline.partitions import Partition
from workers.pipeline.sources.base import SourceError, only
from workers.pipeline.tracked_cards import TrackedCards

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.pokemonpricetracker.com/api/v2"
SOURCE_NAME = "pokemonpricetracker"


class SourceAuthError(SourceError):
    """The API rejected the key (401/403)."""


class SourceNotFoundError(SourceError):
    """The API does not know the requested set or card (404)."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    backoff = wait_exponential(multiplier=0.5, max=30)(state)
    if isinstance(exc, _Retryable) and exc.retry_after is not None:
        return max(min(exc.retry_after, 60.0), backoff)
    return backoff


class PokemonPriceTrackerSource:
    """Collects the sets and cards of cards.yaml (TrackedCards) with their histories."""

    name = SOURCE_NAME

    def __init__(
        self,
        api_key: str | None,
        tracked: TrackedCards,
        base_url: str = DEFAULT_BASE_URL,
        days: int = 90,
        timeout: float = 15.0,
        attempts: int = 5,
        page_size: int = 100,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise SourceAuthError("no API key: set POKEMONPRICETRACKER_API_KEY (or use --source demo / --source file)")
        self.tracked = tracked
        self.days = days
        self.page_size = page_size
        self.attempts = attempts
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def catalogue_size(self) -> int | None:
        """Unknown before fetching (a tracked set holds however many cards it has)."""
        return None

    def fetch(self, as_of: date, partition: Partition | None = None) -> pd.DataFrame:
        """The tracked sets and cards; a partition's cards are filtered from the whole answer
        (the API pages by set, not by card hash)."""
        rows: list[dict[str, Any]] = []
        try:
            for set_id in self.tracked.sets:
                for card in self._paged({"set": set_id}):
                    rows.extend(_history_rows(card))
            for tracked in self.tracked.cards:
                for card in self._paged({"cardId": tracked.card_id}):
                    rows.extend(_history_rows(card))
        finally:
            self.close()
        columns = ["card_id", "card_name", "set_name", "date", "market_price", "currency", "source", "volume"]
        return only(pd.DataFrame(rows, columns=columns), partition)

    def _paged(self, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            params = {**query, "includeHistory": "true", "days": self.days, "limit": self.page_size, "offset": offset}
            body = self._get("/cards", params)
            cards = body.get("data") or []
            if not isinstance(cards, list):
                raise SourceError(f"unexpected response for {query}: 'data' is not a list")
            yield from cards
            meta = body.get("metadata") or {}
            if not meta.get("hasMore") or not cards:
                return
            offset += len(cards)

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        call = retry(
            retry=retry_if_exception_type(_Retryable),
            wait=_wait,
            stop=stop_after_attempt(self.attempts),
            reraise=True,
        )(self._get_once)
        try:
            return call(path, params)
        except _Retryable as exc:
            raise SourceError(f"{path} {params}: gave up after {self.attempts} attempts: {exc}") from exc

    def _get_once(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = self._client.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise _Retryable(f"timeout: {exc}") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"connection error: {exc}") from exc
        if resp.status_code in (401, 403):
            raise SourceAuthError(f"API key rejected (HTTP {resp.status_code}): check POKEMONPRICETRACKER_API_KEY")
        if resp.status_code == 404:
            raise SourceNotFoundError(f"not found (HTTP 404) for {params}: check the ids in cards.yaml")
        if resp.status_code == 429 or resp.status_code >= 500:
            retry_after = resp.headers.get("Retry-After")
            logger.warning("HTTP %s from %s, retrying", resp.status_code, path)
            raise _Retryable(
                f"HTTP {resp.status_code}", float(retry_after) if retry_after and retry_after.isdigit() else None
            )
        if resp.status_code >= 400:
            raise SourceError(f"HTTP {resp.status_code} for {params}: {resp.text[:200]}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise SourceError(f"response for {params} is not JSON") from exc
        if not isinstance(body, dict):
            raise SourceError(f"response for {params} is not a JSON object")
        return body


def _history_rows(card: dict[str, Any]) -> Iterator[dict[str, Any]]:
    history = card.get("priceHistory") or []
    if isinstance(history, dict):
        conditions = history.get("conditions") or {}
        near_mint: Any = conditions.get("Near Mint") or next(iter(conditions.values()), {})
        history = near_mint.get("history", []) if isinstance(near_mint, dict) else []
    currency = (card.get("prices") or {}).get("currency", "USD") if isinstance(card.get("prices"), dict) else "USD"
    for point in history if isinstance(history, list) else []:
        if not isinstance(point, dict):
            continue
        yield {
            "card_id": card.get("id") or card.get("cardId"),
            "card_name": card.get("name", ""),
            "set_name": card.get("setName", ""),
            "date": point.get("date"),
            "market_price": point.get("market", point.get("price", point.get("marketPrice"))),
            "currency": currency,
            "source": SOURCE_NAME,
            "volume": point.get("volume"),
        }
