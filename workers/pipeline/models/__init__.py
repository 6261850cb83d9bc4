"""Price models: two baselines and the gradient-boosted candidate with its fair level.

- `base`: what every model answers (Forecast) and the shared interval;
- `baselines`: naive, the original rolling mean, and drift;
- `gbm`: the candidate (forecast, interval, fair level, guarded fallback);
- `boosting`: the gradient-boosting fits it is made of;
- `interval`: calibrating the interval on out-of-sample outcomes;
- `fair`: the fair-price candidates and how one is chosen.

Model objects are pickled into the registry by their class path, so the
classes are also importable from this package.
"""

from __future__ import annotations

from workers.pipeline.models.base import INTERVAL, Forecast, PriceModel
from workers.pipeline.models.baselines import DriftModel, NaiveModel, RollingMeanModel
from workers.pipeline.models.fair import (
    MAX_SIGNAL_SHARE,
    MIN_VALIDATION_SIGNALS,
    choose_signals,
    reversion_fair,
    signal_edge,
)
from workers.pipeline.models.gbm import MODEL_WINDOW_FACTOR, GBMModel
from workers.signals import DEFAULT_RULE, SignalRule

__all__ = [
    "INTERVAL",
    "MIN_VALIDATION_SIGNALS",
    "MODEL_WINDOW_FACTOR",
    "DriftModel",
    "Forecast",
    "GBMModel",
    "NaiveModel",
    "PriceModel",
    "RollingMeanModel",
    "choose_signals",
    "make_models",
    "reversion_fair",
    "signal_edge",
]


def make_models(
    horizon: int,
    fair_horizon: int,
    max_train_rows: int = 300_000,
    half_life_days: float | None = None,
    rule: SignalRule = DEFAULT_RULE,
    fee: float = 0.0,
    max_signal_share: float = MAX_SIGNAL_SHARE,
) -> list[PriceModel]:
    """The candidate model (choosing its fair level and signal rule under `rule` and `fee`)
    followed by the two baselines."""
    return [
        GBMModel(
            horizon, fair_horizon, max_train_rows, half_life_days, rule=rule, fee=fee, max_signal_share=max_signal_share
        ),
        NaiveModel(horizon=horizon),
        RollingMeanModel(horizon=horizon),
    ]
