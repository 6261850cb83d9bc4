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

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.messages import CardId

WatchRule = Literal["signal", "price_above", "price_below", "deviation"]
MAX_ITEMS = 500
MAX_WATCHLISTS = 100


class WatchItem(BaseModel):
    """One card and the rule that alerts on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    card_id: CardId
    rule: WatchRule
    signal: Literal["BUY", "SELL", "ANY"] | None = Field(default=None, description="rule `signal`: which change")
    target: float | None = Field(default=None, gt=0, lt=1e9, description="rules `price_above` / `price_below`")
    deviation_pct: float | None = Field(default=None, gt=0, le=1000, description="rule `deviation`: |market/fair - 1|")

    @model_validator(mode="after")
    def _one_parameter_for_its_rule(self) -> Self:
        needs = {"signal": "signal", "price_above": "target", "price_below": "target", "deviation": "deviation_pct"}
        wanted = needs[self.rule]
        for name in ("signal", "target", "deviation_pct"):
            given = getattr(self, name) is not None
            if name == wanted and not given:
                raise ValueError(f"rule {self.rule!r} needs {wanted!r}")
            if name != wanted and given:
                raise ValueError(f"rule {self.rule!r} takes {wanted!r}, not {name!r}")
        return self


class WatchlistIn(BaseModel):
    """What a client sends to create a watchlist."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    items: list[WatchItem] = Field(min_length=1, max_length=MAX_ITEMS)
    webhook_url: str | None = Field(
        default=None, max_length=2000, description="https (or http) URL that receives each alert as a signed POST"
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
