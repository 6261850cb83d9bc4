"""Messages on PokeWatch's streams and channels, shared by every process.

Each message carries `schema_version`. A consumer that receives a version it
does not know, bad JSON, or a missing/mistyped field sends the entry to the
dead-letter stream with the validation error as its reason (and acks it).

Flow of one request (single card or a batch of up to 500, always one message):

    gateway --PredictRequest--> pokewatch:predict --(model group)--> model worker
    model worker --PriceQuotes--> pokewatch:quotes --(decision group)--> decision worker
    decision worker --Reply--> pokewatch:reply:<gateway> (pub/sub) --> gateway
                    --SignalDecided--> pokewatch:signals (one entry per card)
                    --SignalChanged--> pokewatch:signal-changes (only when a card's signal changes)
                    --PriceUpdated--> pokewatch:price-updates (only when a card's latest price or version changes)

The notifier (workers.notify) reads the last two in group `notifier` and turns
what matches a watchlist into alerts (contracts.watchlists.Alert).

A market scan (workers.serving.scan) sends PredictRequests for every tracked
card down the same path when the served version changes.

Why over 300 lines: every stream message lives in one module so a reader sees
the whole contract at once; the signal's validation figures added the last lines.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1
MAX_BATCH = 500

Signal = Literal["BUY", "SELL", "HOLD"]
# Which rule decided a signal (workers.signals): fixed thresholds, the card's
# own volatility, the model's chance of a move, or none (no rule validated
# for the model version: HOLD).
SignalRuleKind = Literal["fixed", "volatility", "probability", "momentum", "reversion", "none"]
CardId = Annotated[str, Field(min_length=1, max_length=128)]


def now() -> float:
    return time.time()


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION


class PredictItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    card_id: CardId
    date: dt.date | None = Field(default=None, description="omitted: the latest known price")


class PredictRequest(Message):
    """Gateway -> model workers: price these cards."""

    request_id: str = Field(min_length=1, max_length=64)
    reply_to: str = Field(min_length=1, max_length=200, description="pub/sub channel of the asking gateway")
    deadline: float = Field(description="unix time after which nobody waits for the answer")
    items: list[PredictItem] = Field(min_length=1, max_length=MAX_BATCH)
    sent_at: float = Field(default_factory=now)


class ItemError(BaseModel):
    """One card of a request that cannot be priced (unknown card, no price on that date)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["error"] = "error"
    card_id: str
    date: dt.date | None = None
    status: int = Field(ge=400, le=599)
    error: str


class Quote(BaseModel):
    """The model's view of one card on one date (log-space outputs turned into prices)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["quote"] = "quote"
    card_id: str
    card_name: str | None = None
    date: dt.date
    market_price: float
    forecast_price: float = Field(description="median forecast of the next observed price")
    fair_price: float
    fair_price_low: float
    fair_price_high: float
    typical_move: float = Field(
        default=0.0, ge=0, description="the card's typical move over the horizon, log units (1 standard deviation)"
    )
    chance_up: float | None = Field(
        default=None, ge=0, le=1, description="chance the price is higher after the horizon"
    )
    chance_down: float | None = Field(default=None, ge=0, le=1, description="chance it is lower")
    recent_move: float | None = Field(
        default=None, description="the card's move over the last h observations, log(price / price h back)"
    )
    currency: str | None = None
    model_version: str
    served_by: str


class SignalBasis(BaseModel):
    """The signal rule a model version ships with, chosen on validation by the pipeline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: SignalRuleKind = "fixed"
    k: float | None = Field(
        default=None, description="volatility rule: fires at k typical moves; probability rule: at this chance"
    )
    reason: str = Field(default="", max_length=1000, description="why this rule (or none) was chosen")
    hit_rate: float | None = Field(default=None, ge=0, le=1, description="share of its signals right on validation")
    fire_rate: float | None = Field(default=None, ge=0, le=1, description="share of card-days it fired on there")
    baseline: Literal["momentum", "reversion"] | None = Field(
        default=None, description="the better one-line rule at the same rate on validation"
    )
    baseline_hit_rate: float | None = Field(default=None, ge=0, le=1, description="that rule's hit rate there")
    baseline_k: float | None = Field(
        default=None, ge=0, description="the least recent move (log units) at which that rule fires at that rate"
    )
    horizon: int = Field(default=1, ge=1, description="observations the signal looks ahead (and the rules back)")


class PriceQuotes(Message):
    """Model worker -> decision workers: one per PredictRequest, results in item order."""

    request_id: str
    reply_to: str
    deadline: float
    basis: SignalBasis = Field(default_factory=SignalBasis, description="the rule of the version that priced them")
    results: list[Annotated[Quote | ItemError, Field(discriminator="kind")]]


class SignalDecided(BaseModel):
    """One priced card with its signal: the REST answer and a `pokewatch:signals` entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["signal"] = "signal"
    request_id: str
    card_id: str
    card_name: str | None = None
    date: dt.date
    market_price: float
    fair_price: float
    fair_price_low: float
    fair_price_high: float
    deviation_pct: float = Field(description="(market / fair - 1) * 100")
    signal: Signal
    rule: SignalRuleKind = Field(default="fixed", description="the rule that decided the signal")
    reason: str = Field(default="", description="why the signal is what it is: expected move, interval, rule")
    expected_move_pct: float = Field(default=0.0, description="(fair / market - 1) * 100")
    expected_move_low_pct: float = Field(default=0.0, description="(fair_price_low / market - 1) * 100")
    expected_move_high_pct: float = Field(default=0.0, description="(fair_price_high / market - 1) * 100")
    typical_move_pct: float = Field(default=0.0, description="the card's typical move over the horizon, %")
    chance_up: float | None = Field(default=None, description="chance the price is higher after the horizon")
    chance_down: float | None = Field(default=None, description="chance the price is lower after the horizon")
    recent_move_pct: float | None = Field(
        default=None, description="the card's move over the last `horizon` observations, % (what the chart shows)"
    )
    rule_hit_rate: float | None = Field(default=None, description="how often the rule was right on validation")
    rule_fire_rate: float | None = Field(default=None, description="the share of card-days it fired on there")
    one_line_rule: Literal["momentum", "reversion"] | None = Field(
        default=None, description="the one-line rule the model rule was measured against (or that decided)"
    )
    one_line_signal: Signal | None = Field(
        default=None, description="what that one-line rule says for this card, at the model rule's fire rate"
    )
    currency: str | None = None
    model_version: str
    served_by: str = Field(description="model replica that priced it")
    decided_at: float = Field(default_factory=now)


class SignalChanged(Message):
    """Decision workers -> `pokewatch:signal-changes`: a card's signal on its latest date changed
    (HOLD -> BUY, BUY -> HOLD, ...), or a card was first seen with a BUY or SELL (`previous_signal` null).

    Written atomically with the card's last signal (one Lua script), so concurrent decision
    workers record each change once. Decisions about a date older than the card's last one
    (a request for a past quote) change nothing.
    """

    kind: Literal["signal_change"] = "signal_change"
    card_id: str
    previous_signal: Signal | None = Field(description="null: the card had no signal before")
    previous_date: dt.date | None = None
    previous_model_version: str | None = None
    signal: Signal
    decision: SignalDecided = Field(description="the decision that changed it: prices, version, rule and reason")


class PriceUpdated(Message):
    """Decision workers -> `pokewatch:price-updates`: a card's latest market price, date or pricing
    version changed (one event however many requests asked about the same price).

    Written by the same script as `SignalChanged`, with the card's previous market price and
    deviation, so a consumer can tell a price crossing a target without keeping state.
    """

    kind: Literal["price_update"] = "price_update"
    card_id: str
    previous_date: dt.date | None = None
    previous_market_price: float | None = Field(default=None, description="null: the card is seen for the first time")
    previous_deviation_pct: float | None = None
    previous_model_version: str | None = None
    decision: SignalDecided = Field(description="the decision with the new price")


class Reply(Message):
    """Decision worker -> the asking gateway: every result of one request, in item order."""

    request_id: str
    results: list[Annotated[SignalDecided | ItemError, Field(discriminator="kind")]]


class ModelPublished(Message):
    """Pipeline/CLI -> every model replica: a new champion to hot-load.

    Replicas ignore a version they already serve or an older one, unless
    `rollback` is set (`pokewatch model rollback`).
    """

    kind: Literal["published"] = "published"
    model_name: str
    version: str
    model_uri: str
    run_id: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    rollback: bool = False
    alias: Literal["champion", "challenger"] = Field(
        default="champion",
        description="who loads it: model replicas the champion, challenger replicas the challenger",
    )
    published_at: float = Field(default_factory=now)


class ModelLoadFailed(Message):
    """A replica could not load a published version; it keeps serving `serving_version`."""

    kind: Literal["load_failed"] = "load_failed"
    model_name: str
    version: str
    replica_id: str
    serving_version: str | None
    error: str
    failed_at: float = Field(default_factory=now)


class ModelDecision(Message):
    """The pipeline's judge step (or a person) -> `pokewatch:model-events`: what the lifecycle rule
    decided about the champion and the challenger, with the numbers it decided on.

    `action` is what the rule asks for; `applied` is false when it was only
    recorded (`POKEWATCH_AUTO_PROMOTE=false`: a person decides).
    """

    kind: Literal["decision"] = "decision"
    model_name: str
    action: Literal["promote", "rollback", "retire", "hold", "none"]
    version: str | None = Field(default=None, description="the version the action concerns")
    champion: str | None = Field(default=None, description="the champion when the rule was applied")
    reason: str = Field(max_length=2000)
    numbers: dict[str, float | int | None] = Field(default_factory=dict)
    applied: bool = True
    decided_at: float = Field(default_factory=now)


ModelEvent = Annotated[ModelPublished | ModelLoadFailed | ModelDecision, Field(discriminator="kind")]


class ShadowQuotes(Message):
    """A challenger replica -> `pokewatch:shadow-quotes`: what the challenger would have answered a
    request that the champion answered. Never sent to users; scored once the prices arrive."""

    kind: Literal["shadow"] = "shadow"
    request_id: str
    model_version: str
    served_by: str
    results: list[Annotated[Quote | ItemError, Field(discriminator="kind")]]
    signals: list[Signal | None] = Field(
        default_factory=list, description="the challenger's signal for each result (null for an error)"
    )
    quoted_at: float = Field(default_factory=now)


class StepFigures(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seconds: float | None = None
    rows: int | None = None


class PipelineRun(Message):
    """Pipeline (DAG, `pokewatch pipeline run`) -> `pokewatch:pipeline-runs`: one finished run.

    What the stream exporter turns into the pipeline's metrics (step durations and rows,
    the candidate's evaluation, the gate's decision, when the last run succeeded).
    """

    kind: Literal["pipeline_run"] = "pipeline_run"
    source: str
    collection_date: dt.date
    steps: dict[str, StepFigures] = Field(default_factory=dict)
    model_version: str | None = None
    promoted: bool = False
    gate_reason: str = ""
    metrics: dict[str, float] = Field(default_factory=dict, description="the candidate's evaluation figures")
    challenger: str | None = Field(default=None, description="the challenger after the run")
    lifecycle_action: str | None = Field(default=None, description="what the lifecycle rule decided")
    lifecycle_reason: str = ""
    lifecycle: dict[str, float | None] = Field(
        default_factory=dict, description="realized scores of champion and challenger (workers.pipeline.lifecycle)"
    )
    finished_at: float = Field(default_factory=now)


class DeadLetter(Message):
    """An entry a worker could not process, with the reason; the original entry is acked."""

    source_stream: str
    entry_id: str
    group: str | None = None
    consumer: str | None = None
    reason: str
    deliveries: int | None = None
    payload: str = Field(description="the entry's fields as received (truncated to 64 KiB)")
    failed_at: float = Field(default_factory=now)


class Heartbeat(BaseModel):
    """A worker's liveness record in the `pokewatch:replicas` hash (field = replica id)."""

    model_config = ConfigDict(extra="forbid")

    replica_id: str
    role: Literal["model", "challenger", "decision", "notifier"]
    model_version: str | None = None
    host: str
    pid: int
    started_at: float
    last_seen: float
    processed: int = 0
    expired: int = 0
    dead_lettered: int = 0
    last_error: str | None = None
    last_load_s: float | None = Field(default=None, description="seconds the last model load took")
