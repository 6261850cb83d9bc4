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

INTERVAL = (0.10, 0.90)


@dataclass
class Forecast:
    """Per-row model outputs, all as log ratios to the current market price."""

    ret: np.ndarray
    low: np.ndarray
    high: np.ndarray
    fair: np.ndarray


class PriceModel(Protocol):
    name: str
    horizon: int

    def fit(self, train: pd.DataFrame) -> PriceModel: ...

    def predict(self, frame: pd.DataFrame) -> Forecast: ...


def residual_band(residuals: pd.Series) -> tuple[float, float]:
    values = residuals.dropna().to_numpy()
    if values.size == 0:
        return 0.0, 0.0
    low, high = np.quantile(values, INTERVAL)
    return float(low), float(high)
