"""The BUY / SELL / HOLD rule and its defaults: the only place either is written.

The decision worker, the walk-forward evaluation and the fair-price candidate
choice all call `decide` with the configured `SignalRule`
(POKEWATCH_BUY_THRESHOLD, POKEWATCH_SELL_THRESHOLD), so what is chosen,
what is measured and what is served follow one rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BUY = "BUY"
SELL = "SELL"
HOLD = "HOLD"


@dataclass(frozen=True)
class SignalRule:
    """BUY when the market is >= `buy` under fair, SELL when it is >= `sell` over fair.

    Fractions: 0.10 is 10%.
    """

    buy: float = 0.10
    sell: float = 0.15


DEFAULT_RULE = SignalRule()


def deviation(market: np.ndarray, fair: np.ndarray) -> np.ndarray:
    """Relative deviation of the market price from the fair price: market/fair - 1."""
    return np.asarray(market, dtype="float64") / np.asarray(fair, dtype="float64") - 1.0


def decide(market: np.ndarray, fair: np.ndarray, rule: SignalRule = DEFAULT_RULE) -> np.ndarray:
    """Vectorized signal of each (market, fair) pair under `rule`.

    Args:
        market: market prices.
        fair: fair prices, same shape.
        rule: the thresholds.

    Returns:
        An object array of "BUY" / "SELL" / "HOLD".
    """
    dev = deviation(market, fair)
    # A tiny tolerance keeps "exactly 10% under" a BUY despite float rounding.
    eps = 1e-9
    out = np.full(dev.shape, HOLD, dtype=object)
    out[dev <= -rule.buy + eps] = BUY
    out[dev >= rule.sell - eps] = SELL
    return out


def direction(fair_log_ratio: np.ndarray, rule: SignalRule = DEFAULT_RULE) -> np.ndarray:
    """+1 where BUY fires, -1 where SELL fires, 0 on HOLD, for fair prices given as log(fair / market)."""
    fair = np.exp(np.asarray(fair_log_ratio, dtype="float64"))
    signals = decide(np.ones_like(fair), fair, rule)
    return np.where(signals == BUY, 1.0, np.where(signals == SELL, -1.0, 0.0))
