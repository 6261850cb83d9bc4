"""The baselines every candidate is measured against: naive, the original rolling mean, and drift."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workers.pipeline.models.base import Forecast, residual_band
from workers.signals import FIXED


class _BaselineModel:
    """A rule-based forecast whose interval is the spread of its past errors."""

    name: str
    horizon: int
    band: tuple[float, float]
    # Baselines signal by the fixed thresholds (the original product's rule).
    signal_policy = FIXED

    def _ret(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def fit(self, train: pd.DataFrame) -> _BaselineModel:
        self.band = residual_band(train["target"] - self._ret(train))
        return self

    def predict(self, frame: pd.DataFrame) -> Forecast:
        ret = self._ret(frame)
        return Forecast(ret, ret + self.band[0], ret + self.band[1], self._fair(ret))

    def _fair(self, ret: np.ndarray) -> np.ndarray:
        return ret.copy()


@dataclass
class NaiveModel(_BaselineModel):
    """Next price = last price; fair = market, so it never signals."""

    horizon: int = 1
    name: str = "naive"
    band: tuple[float, float] = (0.0, 0.0)

    def _ret(self, frame: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(frame))


@dataclass
class RollingMeanModel(_BaselineModel):
    """The original rule: forecast and fair price are the mean of the last 3 prices."""

    horizon: int = 1
    name: str = "rolling_mean_3"
    band: tuple[float, float] = (0.0, 0.0)

    def _ret(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["mean_rel_3"].to_numpy(dtype="float64")


@dataclass
class DriftModel(_BaselineModel):
    """Random walk with drift: the next move is the card's mean move over its last `window`
    observations (4, 8, 13 or 26: the windows the features carry)."""

    horizon: int = 1
    window: int = 4
    name: str = "drift"
    band: tuple[float, float] = (0.0, 0.0)

    def _ret(self, frame: pd.DataFrame) -> np.ndarray:
        moved = frame[f"ret_cum_{self.window}"].to_numpy(dtype="float64")
        return self.horizon * np.nan_to_num(moved) / self.window
