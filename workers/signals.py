"""The BUY / SELL / HOLD rule, shared by the decision worker and the backtest."""

from __future__ import annotations

import numpy as np

BUY = "BUY"
SELL = "SELL"
HOLD = "HOLD"

DEFAULT_BUY_THRESHOLD = 0.10
DEFAULT_SELL_THRESHOLD = 0.15


def deviation(market: np.ndarray, fair: np.ndarray) -> np.ndarray:
    """Relative deviation of the market price from the fair price: market/fair - 1."""
    return np.asarray(market, dtype="float64") / np.asarray(fair, dtype="float64") - 1.0


def decide(
    market: np.ndarray,
    fair: np.ndarray,
    buy_threshold: float = DEFAULT_BUY_THRESHOLD,
    sell_threshold: float = DEFAULT_SELL_THRESHOLD,
) -> np.ndarray:
    """Vectorized signal: BUY when the market is >= buy_threshold under fair,
    SELL when it is >= sell_threshold over fair, HOLD otherwise.

    Args:
        market: market prices.
        fair: fair prices, same shape.
        buy_threshold: fraction under fair that triggers BUY (0.10 = 10%).
        sell_threshold: fraction over fair that triggers SELL (0.15 = 15%).

    Returns:
        An object array of "BUY" / "SELL" / "HOLD".
    """
    dev = deviation(market, fair)
    # A tiny tolerance keeps "exactly 10% under" a BUY despite float rounding.
    eps = 1e-9
    out = np.full(dev.shape, HOLD, dtype=object)
    out[dev <= -buy_threshold + eps] = BUY
    out[dev >= sell_threshold - eps] = SELL
    return out
