"""Watchlists: which cards a user follows, what should alert them, and where alerts go.

A watchlist belongs to one owner: the API key that created it (its key id),
or `local` when the gateway runs without keys. It is stored as JSON in the
owner's hash `pokewatch:watchlists:<owner>` (contracts.keys), so one key can
neither list nor read nor delete another key's watchlists.

Item rules:

| rule          | fires when                                               | field          |
|---------------|----------------------------------------------------------|----------------|
| `signal`      | the card's signal changes to `signal` (`ANY`: any change) | `signal`       |
| `price_above` | the market price crosses above `target`                  | `target`       |
| `price_below` | the market price crosses below `target`                  | `target`       |
| `deviation`   | the market is `deviation_pct`% or more from fair          | `deviation_pct` |

A webhook URL is checked before it is stored and again before each delivery
(contracts.webhooks): private, loopback and link-local addresses are refused
unless allow-listed. Its signing secret (`whsec_...`, Standard Webhooks) is
shown once, when the watchlist is created.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.messages import CardId

MAX_ITEMS = 500
MAX_WATCHLISTS = 100


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    card_id: CardId


class SignalItem(_Item):
    """Alert when the card's signal changes to `signal` (`ANY`: any change)."""

    rule: Literal["signal"]
    signal: Literal["BUY", "SELL", "ANY"]


class PriceItem(_Item):
    """Alert when the market price crosses above / below `target`."""

    rule: Literal["price_above", "price_below"]
    target: float = Field(gt=0, lt=1e9)


class DeviationItem(_Item):
    """Alert when the market is `deviation_pct`% or more away from fair (either way)."""

    rule: Literal["deviation"]
    deviation_pct: float = Field(gt=0, le=1000)


# One card and the rule that alerts on it; each rule has its own fields, so the
# schema says exactly what is valid.
WatchItem = Annotated[SignalItem | PriceItem | DeviationItem, Field(discriminator="rule")]


class WatchlistIn(BaseModel):
    """What a client sends to create a watchlist."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    items: list[WatchItem] = Field(min_length=1, max_length=MAX_ITEMS)
    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://[^\s/?#]+[^\s]*$",
        description="https (or http) URL that receives each alert as a signed POST; its host must be public",
    )


class Watchlist(WatchlistIn):
    """A stored watchlist, as its owner reads it (never with the secret)."""

    id: str
    created_at: float


class WatchlistCreated(Watchlist):
    """The answer to a create: the only time the webhook secret is shown."""

    webhook_secret: str | None = Field(
        default=None, description="verify each alert's `webhook-signature` with it (Standard Webhooks); shown once"
    )


class StoredWatchlist(Watchlist):
    """The stored form: with the owner and the secret (read by the gateway and the notifier only)."""

    owner: str
    webhook_secret: str | None = None
