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

Price and deviation rules fire when the condition starts to hold: the price
crosses the target between two updates (or is already past it the first time
the card is priced), the deviation reaches N% from below. They do not repeat
while it keeps holding.

A webhook URL is checked before it is stored and again before each delivery
(contracts.webhooks): private, loopback and link-local addresses are refused
unless allow-listed. Its signing secret (`whsec_...`, Standard Webhooks) is
shown once, when the watchlist is created.

The notifier (workers.notify) writes every alert to `pokewatch:alerts` as an
`Alert` and POSTs it to the watchlist's webhook, signed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.messages import CardId, Message, SignalDecided, now

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


class Alert(Message):
    """Notifier -> `pokewatch:alerts` and the watchlist's webhook: one item of a watchlist fired.

    `alert_id` is derived from the event and the item, so a redelivery (after a crash
    or a retry) carries the same id: receivers deduplicate on it (`webhook-id`).
    """

    kind: Literal["alert"] = "alert"
    alert_id: str = Field(description="idempotency key: the same for every delivery of this alert")
    owner: str = Field(description="the API key id that owns the watchlist (`local` without keys)")
    watchlist_id: str
    watchlist_name: str
    item: WatchItem
    card_id: str
    trigger: str = Field(description="what happened, in words")
    previous_signal: str | None = None
    previous_market_price: float | None = None
    decision: SignalDecided = Field(description="the decision that fired it: prices, signal, version, reason")
    source: str = Field(description="the event it came from: `<stream> <entry id>`")
    created_at: float = Field(default_factory=now)
