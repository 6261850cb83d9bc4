"""Decision worker: PriceQuotes in, BUY/SELL/HOLD out (consumer group `decision`).

For every request it publishes one `Reply` on the asking gateway's channel and
appends one `SignalDecided` per priced card to `pokewatch:signals`, which any
subscriber can follow (`redis-cli XREAD BLOCK 0 STREAMS pokewatch:signals $`);
where a card's signal changes it also appends a `SignalChanged` to
`pokewatch:signal-changes` (workers.serving.changes).
Which rule decides is the model version's (PriceQuotes.basis, chosen on
validation by the pipeline); its fixed thresholds and the trade fee are this
deployment's (POKEWATCH_BUY_THRESHOLD, POKEWATCH_SELL_THRESHOLD,
POKEWATCH_TRADE_FEE). Each signal says why it is what it is (`reason`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
from redis.asyncio.client import Pipeline

from contracts import keys
from contracts.logs import request_context
from contracts.messages import ItemError, PriceQuotes, Quote, Reply, SignalBasis, SignalDecided
from workers.config import WorkerSettings
from workers.serving.changes import ChangeRecorder
from workers.serving.runtime import StreamWorker
from workers.signals import (
    FIXED,
    MIN_TYPICAL_MOVE,
    ONE_LINE_RULES,
    SignalPolicy,
    SignalRule,
    deviation,
    directions,
    explain,
    labels,
)

logger = logging.getLogger(__name__)


def quote_arrays(priced: Sequence[Quote]) -> tuple[np.ndarray, ...]:
    """What the signal rules read of quotes, as arrays: market, fair, the interval's low and high
    (log ratios to market), typical move, expected move, chances up and down (None unless every
    quote has them) and the recent move."""
    market = np.array([q.market_price for q in priced], dtype="float64")
    fair = np.array([q.fair_price for q in priced], dtype="float64")
    low = np.log(np.array([q.fair_price_low for q in priced], dtype="float64") / market)
    high = np.log(np.array([q.fair_price_high for q in priced], dtype="float64") / market)
    typical = np.maximum(np.array([q.typical_move for q in priced], dtype="float64"), MIN_TYPICAL_MOVE)
    move = np.log(fair / market)
    with_chances = bool(priced) and all(q.chance_up is not None and q.chance_down is not None for q in priced)
    up = np.array([q.chance_up for q in priced], dtype="float64") if with_chances else None
    down = np.array([q.chance_down for q in priced], dtype="float64") if with_chances else None
    past = np.array([np.nan if q.recent_move is None else q.recent_move for q in priced], dtype="float64")
    return market, fair, low, high, typical, move, up, down, past  # type: ignore[return-value]


def signals_of(
    priced: Sequence[Quote], rule: SignalRule, basis: SignalBasis | None = None, fee: float = 0.0
) -> list[str]:
    """Only the signal of each quote, as `decide_quotes` decides it (no reasons: the shadow path)."""
    if not priced:
        return []
    policy = SignalPolicy.of(basis.model_dump()) if basis else FIXED
    _, _, _, _, typical, move, up, down, past = quote_arrays(priced)
    return list(labels(directions(move, typical, policy, rule, fee, up, down, past)))


def decide_quotes(
    quotes: Sequence[Quote | ItemError],
    request_id: str,
    rule: SignalRule,
    basis: SignalBasis | None = None,
    fee: float = 0.0,
) -> list[SignalDecided | ItemError]:
    """Signals for every quote (vectorized), item errors passed through, order kept.

    Args:
        quotes: the model worker's results.
        request_id: the request they answer.
        rule: the fixed thresholds in force.
        basis: the model version's signal rule (None: the fixed rule).
        fee: the trade fee an expected move must clear.
    """
    policy = SignalPolicy.of(basis.model_dump()) if basis else FIXED
    priced = [q for q in quotes if isinstance(q, Quote)]
    market, fair, low, high, typical, move, up, down, past = quote_arrays(priced)
    way = directions(move, typical, policy, rule, fee, up, down, past)
    signals = labels(way)
    # What the one-line rule the model's was measured against says here (or the one that decided).
    line_kind = policy.rule if policy.rule in ONE_LINE_RULES else policy.baseline
    line_k = policy.k if policy.rule in ONE_LINE_RULES else policy.baseline_k
    line = (
        labels(directions(move, typical, SignalPolicy(line_kind, line_k), past=past))  # type: ignore[arg-type]
        if line_kind in ONE_LINE_RULES and line_k is not None
        else [None] * len(priced)
    )
    devs = deviation(market, fair) * 100
    # Which HOLDs the fee made, for the reasons: one vectorized call, not one per card.
    before_fee = directions(move, typical, policy, rule, 0.0, up, down, past) if fee > 0 else way
    reasons = [
        explain(m, lo, hi, t, w, policy, rule, fee, q.chance_up, q.chance_down, before_fee=b, past=q.recent_move)
        for q, m, lo, hi, t, w, b in zip(priced, move, low, high, typical, way, before_fee, strict=True)
    ]
    # Built from validated quotes: construct without re-validating, and give
    # every field (a missing one costs a default-factory inspection per call).
    now = time.time()
    decided = iter(
        SignalDecided.model_construct(
            schema_version=1,
            kind="signal",
            decided_at=now,
            request_id=request_id,
            card_id=q.card_id,
            card_name=q.card_name,
            date=q.date,
            market_price=q.market_price,
            fair_price=q.fair_price,
            fair_price_low=q.fair_price_low,
            fair_price_high=q.fair_price_high,
            deviation_pct=round(float(d), 3),
            signal=str(s),  # type: ignore[arg-type]
            rule=policy.rule,
            reason=why,
            expected_move_pct=round(float(np.expm1(m) * 100), 3),
            expected_move_low_pct=round(float(np.expm1(lo) * 100), 3),
            expected_move_high_pct=round(float(np.expm1(hi) * 100), 3),
            typical_move_pct=round(float(np.expm1(t) * 100), 3),
            chance_up=q.chance_up,
            chance_down=q.chance_down,
            recent_move_pct=None if q.recent_move is None else round(float(np.expm1(q.recent_move) * 100), 3),
            rule_hit_rate=policy.hit_rate,
            rule_fire_rate=policy.fire_rate,
            one_line_rule=line_kind if line_kind in ONE_LINE_RULES else None,
            one_line_signal=None if o is None else str(o),  # type: ignore[arg-type]
            currency=q.currency,
            model_version=q.model_version,
            served_by=q.served_by,
        )
        for q, s, d, m, lo, hi, t, why, o in zip(
            priced, signals, devs, move, low, high, typical, reasons, line, strict=True
        )
    )
    return [next(decided) if isinstance(q, Quote) else q for q in quotes]


class DecisionWorker(StreamWorker[PriceQuotes]):
    role = "decision"
    stream = keys.QUOTES_STREAM
    group = keys.DECISION_GROUP
    message_type = PriceQuotes

    def __init__(self, settings: WorkerSettings, replica_id: str | None = None) -> None:
        super().__init__(settings, replica_id)
        self.changes = ChangeRecorder(self.redis, settings.changes_maxlen)

    async def prepare(self) -> None:
        # The notifier's groups on this worker's change streams exist from the first
        # change on, so changes made before a notifier first started still alert.
        outputs = (keys.SIGNAL_CHANGES_STREAM, keys.PRICE_UPDATES_STREAM)
        await keys.ensure_groups(self.redis, outputs, keys.NOTIFY_GROUPS)

    def process(self, messages: Sequence[PriceQuotes], pipe: Pipeline) -> None:
        s = self.settings
        rule = s.rule
        for quotes in messages:
            with request_context(quotes.request_id):
                results = decide_quotes(quotes.results, quotes.request_id, rule, quotes.basis, s.trade_fee)
                # Each result is serialized once: the same JSON goes to the signals
                # stream and, joined, into the Reply (same shape as Reply.model_dump_json()).
                parts = [r.model_dump_json() for r in results]
                pipe.publish(quotes.reply_to, reply_json(quotes.request_id, parts))
                decided = [(r, part) for r, part in zip(results, parts, strict=True) if isinstance(r, SignalDecided)]
                for _, part in decided:
                    pipe.xadd(
                        keys.SIGNALS_STREAM, {keys.PAYLOAD_FIELD: part}, maxlen=s.signals_maxlen, approximate=True
                    )
                self.changes.record(pipe, decided)
                logger.debug("decided %d results, replying on %s", len(results), quotes.reply_to)


def reply_json(request_id: str, parts: list[str]) -> str:
    """A `Reply` document from already-serialized results."""
    head = Reply.model_construct(request_id=request_id, results=[]).model_dump_json()
    return head[: -len("[]}")] + "[" + ",".join(parts) + "]}"
