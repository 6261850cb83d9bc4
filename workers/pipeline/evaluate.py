"""Walk-forward evaluation of the model against the baselines.

One time cutoff splits the data: models train on forecast origins whose
targets end before the cutoff (minus an embargo), and are tested on origins at
or after it. Features only look backwards, so test rows may use history from
before the cutoff, never after. Two leaks are closed explicitly:

- targets that straddle the cutoff (a training row whose h-step or fair-level
  target ends after it) are dropped from training;
- an embargo of `embargo_days` before the cutoff drops training targets that
  share underlying sales with test prices (daily series built from multi-day
  windows overlap by construction).

No feature uses other cards' prices, so there is no cross-card leak from the
same period.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workers.pipeline.features import add_level_target, add_target
from workers.pipeline.metrics import (
    ape_of_returns,
    card_bootstrap_improvement,
    forecast_metrics,
    signal_metrics,
)
from workers.pipeline.models import Forecast, PriceModel, make_models
from workers.signals import DEFAULT_BUY_THRESHOLD, DEFAULT_SELL_THRESHOLD, decide

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalConfig:
    horizon: int = 1
    fair_horizon: int = 4
    train_fraction: float = 0.7
    embargo_days: int = 3
    buy_threshold: float = DEFAULT_BUY_THRESHOLD
    sell_threshold: float = DEFAULT_SELL_THRESHOLD
    n_boot: int = 1000
    max_train_rows: int = 600_000


@dataclass
class EvalResult:
    cutoff: pd.Timestamp
    metrics: dict[str, dict[str, float]]
    improvement: tuple[float, float, float]
    test: pd.DataFrame
    models: dict[str, PriceModel]
    n_train: int
    n_test: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        point, low, high = self.improvement
        out: dict[str, Any] = {name: dict(m) for name, m in self.metrics.items()}
        out["model_vs_naive_mape_improvement"] = point * 100
        out["model_vs_naive_mape_improvement_interval"] = [low * 100, high * 100]
        out["cutoff"] = str(self.cutoff.date())
        out["n_train"] = self.n_train
        out["n_test"] = self.n_test
        out.update(self.extra)
        return out


def with_targets(features: pd.DataFrame, horizon: int, fair_horizon: int) -> pd.DataFrame:
    """Add the h-step target and the fair-level target to a feature table."""
    return add_level_target(add_target(features, horizon), fair_horizon)


def split(frame: pd.DataFrame, cfg: EvalConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Time split with embargo; see the module docstring."""
    dates = np.sort(frame["date"].unique())
    if len(dates) < 4:
        raise ValueError(f"need at least 4 distinct dates to evaluate, got {len(dates)}")
    cutoff = pd.Timestamp(dates[int(len(dates) * cfg.train_fraction)])
    edge = cutoff - pd.Timedelta(days=cfg.embargo_days)
    train = frame[frame["target_date"] < edge].copy()
    train.loc[~(train["level_date"] < edge), "level"] = np.nan
    test = frame[(frame["date"] >= cutoff) & frame["target"].notna()].copy()
    if train.empty or test.empty:
        raise ValueError("history too short for this horizon: empty train or test window")
    return train, test, cutoff


def score(model: PriceModel, test: pd.DataFrame, cfg: EvalConfig) -> tuple[dict[str, float], Forecast]:
    """Forecast and signal metrics of one fitted model on the test rows."""
    fc = model.predict(test)
    truth = test["target"].to_numpy()
    metrics = forecast_metrics(fc.ret, truth)
    signals = decide(np.ones(len(test)), np.exp(fc.fair), cfg.buy_threshold, cfg.sell_threshold)
    metrics.update(signal_metrics(signals, truth))
    inside = (truth >= fc.low) & (truth <= fc.high)
    metrics["interval_coverage"] = float(inside.mean())
    return metrics, fc


def walk_forward(features: pd.DataFrame, cfg: EvalConfig) -> EvalResult:
    """Train every model before the cutoff and score it after.

    Args:
        features: output of build_features.
        cfg: horizons, split and signal thresholds.

    Returns:
        Metrics per model, the card-resampled MAPE improvement of the model
        over naive, and the test rows with every model's forecast.
    """
    frame = with_targets(features, cfg.horizon, cfg.fair_horizon)
    train, test, cutoff = split(frame, cfg)
    logger.info("walk-forward: cutoff %s, %d train rows, %d test rows", cutoff.date(), len(train), len(test))
    metrics: dict[str, dict[str, float]] = {}
    models: dict[str, PriceModel] = {}
    apes: dict[str, np.ndarray] = {}
    for model in make_models(cfg.horizon, cfg.fair_horizon, cfg.max_train_rows):
        model.fit(train)
        m, fc = score(model, test, cfg)
        metrics[model.name] = m
        models[model.name] = model
        apes[model.name] = ape_of_returns(fc.ret, test["target"].to_numpy())
        test[f"pred_{model.name}"] = fc.ret
        test[f"fair_{model.name}"] = fc.fair
    improvement = card_bootstrap_improvement(
        test["card_id"].to_numpy(), apes["model"], apes["naive"], n_boot=cfg.n_boot
    )
    extra = {
        "selection": getattr(models["model"], "choice", {}),
        "horizon": cfg.horizon,
        "fair_horizon": cfg.fair_horizon,
    }
    return EvalResult(cutoff, metrics, improvement, test, models, len(train), len(test), extra)
