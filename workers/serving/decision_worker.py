"""Decision worker: PriceQuotes in, BUY/SELL/HOLD out (consumer group `decision`).

For every request it publishes one `Reply` on the asking gateway's channel and
appends one `SignalDecided` per priced card to `pokewatch:signals`, which any
subscriber can follow (`redis-cli XREAD BLOCK 0 STREAMS pokewatch:signals $`).
The rule and its thresholds: workers.signals, configured by
POKEWATCH_BUY_THRESHOLD and POKEWATCH_SELL_THRESHOLD.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
from redis.asyncio.client import Pipeline

from contracts import keys
from contracts.logs import request_context
from contracts.messages import ItemError, PriceQuotes, Quote, Reply, SignalDecided
from workers.serving.runtime import StreamWorker
from workers.signals import SignalRule, decide, deviation

logger = logging.getLogger(__name__)


def decide_quotes(
    quotes: Sequence[Quote | ItemError], request_id: str, rule: SignalRule
) -> list[SignalDecided | ItemError]:
    """Signals for every quote (vectorized), item errors passed through, order kept."""
    priced = [q for q in quotes if isinstance(q, Quote)]
    market = np.array([q.market_price for q in priced], dtype="float64")
    fair = np.array([q.fair_price for q in priced], dtype="float64")
    signals = decide(market, fair, rule)
    devs = deviation(market, fair) * 100
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
            currency=q.currency,
            model_version=q.model_version,
            served_by=q.served_by,
        )
        for q, s, d in zip(priced, signals, devs, strict=True)
    )
    return [next(decided) if isinstance(q, Quote) else q for q in quotes]


class DecisionWorker(StreamWorker[PriceQuotes]):
    role = "decision"
    stream = keys.QUOTES_STREAM
    group = keys.DECISION_GROUP
    message_type = PriceQuotes

    def process(self, messages: Sequence[PriceQuotes], pipe: Pipeline) -> None:
        s = self.settings
        rule = s.rule
        for quotes in messages:
            with request_context(quotes.request_id):
                results = decide_quotes(quotes.results, quotes.request_id, rule)
                # Each result is serialized once: the same JSON goes to the signals
                # stream and, joined, into the Reply (same shape as Reply.model_dump_json()).
                parts = [r.model_dump_json() for r in results]
                pipe.publish(quotes.reply_to, reply_json(quotes.request_id, parts))
                for result, part in zip(results, parts, strict=True):
                    if isinstance(result, SignalDecided):
                        pipe.xadd(
                            keys.SIGNALS_STREAM, {keys.PAYLOAD_FIELD: part}, maxlen=s.signals_maxlen, approximate=True
                        )
                logger.debug("decided %d results, replying on %s", len(results), quotes.reply_to)


def reply_json(request_id: str, parts: list[str]) -> str:
    """A `Reply` document from already-serialized results."""
    head = Reply.model_construct(request_id=request_id, results=[]).model_dump_json()
    return head[: -len("[]}")] + "[" + ",".join(parts) + "]}"
