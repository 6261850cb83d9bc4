"""What every price model answers, and the interval they share.

For a batch of forecast origins (rows of the feature table) a model gives the
forecast log-return at horizon h with an 80% interval, and the fair price as
a log ratio to today's market price.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from workers.signals import FIXED, SignalRule, directions, typical_move

INTERVAL = (0.10, 0.90)


@dataclass
class Forecast:
    """Per-row model outputs, all as log ratios to the current market price."""

    ret: np.ndarray
    low: np.ndarray
    high: np.ndarray
    fair: np.ndarray
    # Chances that the price is higher / lower after the horizon (None: the model has no direction model).
    up: np.ndarray | None = None
    down: np.ndarray | None = None
    # The rows' moves over the last h observations (the one-line rules' input; None: not known).
    past: np.ndarray | None = None


class PriceModel(Protocol):
    name: str
    horizon: int

    def fit(self, train: pd.DataFrame) -> PriceModel: ...

    def predict(self, frame: pd.DataFrame) -> Forecast: ...


def signal_directions(model: object, fc: Forecast, rule: SignalRule, fee: float) -> np.ndarray:
    """+1 / -1 / 0 (BUY / SELL / HOLD) of a model's forecast under the signal rule it ships with."""
    policy = getattr(model, "signal_policy", FIXED)
    return directions(fc.fair, typical_move(fc.low, fc.high), policy, rule, fee, fc.up, fc.down, fc.past)


def residual_band(residuals: pd.Series) -> tuple[float, float]:
    values = residuals.dropna().to_numpy()
    if values.size == 0:
        return 0.0, 0.0
    low, high = np.quantile(values, INTERVAL)
    return float(low), float(high)
