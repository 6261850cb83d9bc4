"""The REST API's request and response bodies (the OpenAPI schema is built from these)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from contracts.messages import MAX_BATCH, CardId, Signal, SignalRuleKind

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_text(value: Any) -> Any:
    """Only a `YYYY-MM-DD` string (or a date) is a date here: pydantic alone would also
    take numbers and timestamps (`0` as 1970-01-01), which the schema does not allow."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and ISO_DATE.fullmatch(value):
        return value
    raise ValueError("expected a date as a YYYY-MM-DD string")


# A calendar date as the OpenAPI schema documents it (`format: date`), strictly.
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_text)]


class FairPriceRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"card_id": "base1-4"}, {"card_id": "base1-4", "date": "2024-06-01"}]},
    )

    card_id: CardId
    date: IsoDate | None = Field(default=None, description="omitted: the latest known price; past: as of that date")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[FairPriceRequest] = Field(min_length=1, max_length=MAX_BATCH)


class FairPriceResponse(BaseModel):
    request_id: str
    card_id: str
    card_name: str | None = None
    date: dt.date = Field(
        description="date of the market price used (the last observation on or before the asked date)"
    )
    market_price: float
    fair_price: float
    fair_price_low: float = Field(description="low end of the 80% interval")
    fair_price_high: float = Field(description="high end of the 80% interval")
    deviation_pct: float = Field(description="(market / fair - 1) * 100")
    signal: Signal
    rule: SignalRuleKind = Field(
        description=(
            "the rule that decided the signal, chosen per market on validation: `fixed` (BUY at market >= "
            "POKEWATCH_BUY_THRESHOLD under fair, SELL at >= POKEWATCH_SELL_THRESHOLD over), `volatility` "
            "(the expected move is at least k of the card's typical moves), `probability` (the model gives at "
            "least k chance of a move to fair's side), `momentum` / `reversion` (the one-line rules: the card's "
            "move over the last h observations goes on / turns back, shipped only where no model rule beat them) "
            "or `none` (no rule validated: HOLD). Every rule fires on the most confident few card-days only "
            "(POKEWATCH_MAX_SIGNAL_SHARE). "
            "With POKEWATCH_TRADE_FEE set, a signal fires only where the expected move clears the fee"
        )
    )
    reason: str = Field(
        description="why the signal is what it is: the expected move, its interval, the rule and the fee",
        examples=[
            "BUY: expected move +12.4% [+1.0%, +19.8%]; fixed rule: BUY at market >= 10% under fair, "
            "SELL at >= 15% over"
        ],
    )
    expected_move_pct: float = Field(description="(fair / market - 1) * 100: the move the signal expects")
    expected_move_low_pct: float = Field(description="(fair_price_low / market - 1) * 100")
    expected_move_high_pct: float = Field(description="(fair_price_high / market - 1) * 100")
    typical_move_pct: float = Field(
        description="the card's typical move over the horizon (1 standard deviation, %), the volatility rule's unit"
    )
    chance_up: float | None = Field(
        default=None, description="the model's chance that the price is higher after the horizon (0-1), if it has one"
    )
    chance_down: float | None = Field(default=None, description="its chance that the price is lower (0-1)")
    recent_move_pct: float | None = Field(
        default=None, description="the card's move over the last h observations, % (what the chart shows)"
    )
    rule_hit_rate: float | None = Field(
        default=None, description="how often the rule was right on this market's validation dates (0-1)"
    )
    rule_fire_rate: float | None = Field(default=None, description="the share of card-days it fired on there (0-1)")
    one_line_rule: Literal["momentum", "reversion"] | None = Field(
        default=None, description="the better one-line rule at the same fire rate (the one the rule had to beat)"
    )
    one_line_signal: Signal | None = Field(
        default=None, description="what that one-line rule says for this card: a collector's read of the chart"
    )
    currency: str | None = None
    model_version: str


class BatchItemError(BaseModel):
    card_id: str
    date: dt.date | None = None
    status: int
    error: str


class BatchResponse(BaseModel):
    request_id: str
    priced: int
    failed: int
    results: list[FairPriceResponse | BatchItemError] = Field(description="in the order of the request's items")


class CardSummary(BaseModel):
    card_id: str
    card_name: str | None = None
    set_name: str | None = None
    currency: str | None = None
    first_date: dt.date
    last_date: dt.date
    last_price: float
    observations: int


class CardsPage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[CardSummary]


class PricePoint(BaseModel):
    date: dt.date
    market_price: float
    volume: float | None = None


class CardHistory(BaseModel):
    card_id: str
    points: list[PricePoint]


class ReplicaStatus(BaseModel):
    replica_id: str
    role: str
    model_version: str | None
    live: bool
    seconds_since_heartbeat: float
    processed: int
    expired: int
    dead_lettered: int
    last_error: str | None = None


class ChallengerHealth(BaseModel):
    """The challenger replicas: they shadow-price requests and never answer users, so a dead one
    leaves `status` ok; it shows here, in the metrics and in `pokewatch top`."""

    live: int = Field(description="live challenger replicas")
    down: int = Field(description="challenger replicas whose heartbeat stopped")
    versions: list[str] = Field(description="versions the live ones shadow-price")
    lag: int | None = Field(default=None, description="requests the `shadow` group has not read yet")


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    broker: bool
    gateway_id: str
    model_versions: list[str] = Field(description="versions served by live model replicas")
    replicas: list[ReplicaStatus]
    challenger: ChallengerHealth | None = Field(default=None, description="null when no challenger replica ran")


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. not_found, invalid_input, unavailable, timeout")
    message: str
    detail: Any = None
