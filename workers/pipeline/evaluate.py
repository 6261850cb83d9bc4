"""Walk-forward evaluation of the model against the baselines.

Rolling origin, as the daily pipeline lives it: the dates after the first
`train_fraction` form the test window, cut into `folds` consecutive blocks;
before each block every model is retrained on what was known then and scored
on the block. Features only look backwards, so test rows may use history from
before the block, never after. Two leaks are closed explicitly:

- targets that straddle the block start (a training row whose h-step or
  fair-level target ends after it) are dropped from training;
- an embargo of `embargo_days` before the block drops training targets that
  share underlying sales with test prices (daily series built from multi-day
  windows overlap by construction).

The only features read from other cards are the median moves of the feed
and of the card's set on the row's own date (workers.pipeline.features),
which were known on that date: no cross-card leak from later dates.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from workers.pipeline.features import add_level_target, add_target
from workers.pipeline.metrics import (
    ape_of_returns,
    card_bootstrap_improvement,
    forecast_metrics,
    signal_metrics,
)
from workers.pipeline.models import MODEL_WINDOW_FACTOR, PriceModel, make_models
from workers.pipeline.models.base import signal_directions
from workers.pipeline.models.fair import MAX_SIGNAL_SHARE, MODEL_RULES, largest_moves
from workers.signals import DEFAULT_RULE, ONE_LINE_RULES, SignalRule, labels

logger = logging.getLogger(__name__)

# Above this many feature rows the folds run one after another: each worker
# process holds its fold's training copy and the GBM's buffers, and two of
# them beside the full table pushed 10,000 cards x 365 days from 3.4 to 5.5 GB
# (target 4 GB). The weekly real feed (183k rows) runs in parallel.
PARALLEL_MAX_ROWS = 1_000_000


@dataclass(frozen=True)
class EvalConfig:
    horizon: int = 1
    fair_horizon: int = 8
    train_fraction: float = 0.7
    embargo_days: int = 3
    rule: SignalRule = DEFAULT_RULE
    fee: float = 0.0
    n_boot: int = 1000
    max_train_rows: int = 300_000
    folds: int = 6
    # None: chosen per feed on validation; 0: off.
    half_life_days: float | None = None
    max_signal_share: float = MAX_SIGNAL_SHARE
    # processes fitting folds side by side; 0 = one per core up to PARALLEL_MAX_ROWS, else 1
    n_jobs: int = 0


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


def _train_before(frame: pd.DataFrame, start: pd.Timestamp, embargo_days: int, limit: int) -> pd.DataFrame:
    """The most recent `limit` rows whose targets end before `start` minus the
    embargo (level likewise). The GBM looks at no more than that, and not
    copying the rest keeps each fold's memory bounded."""
    edge = start - pd.Timedelta(days=embargo_days)
    train = frame[frame["target_date"] < edge]
    train = (train.nlargest(limit, "date") if len(train) > limit else train).copy()
    train.loc[~(train["level_date"] < edge), "level"] = np.nan
    return train


def test_blocks(frame: pd.DataFrame, cfg: EvalConfig) -> list[np.ndarray]:
    """The test dates (after the first `train_fraction` of dates) cut into `folds` blocks."""
    dates = np.sort(frame["date"].unique())
    if len(dates) < 4:
        raise ValueError(f"need at least 4 distinct dates to evaluate, got {len(dates)}")
    test_dates = dates[int(len(dates) * cfg.train_fraction) :]
    return [b for b in np.array_split(test_dates, min(cfg.folds, len(test_dates))) if len(b)]


def _score(test: pd.DataFrame, name: str, cfg: EvalConfig) -> dict[str, float]:
    """Forecast and signal metrics of one model's predictions on the test rows."""
    truth = test["target"].to_numpy()
    ret = test[f"pred_{name}"].to_numpy()
    metrics = forecast_metrics(ret, truth)
    metrics.update(signal_metrics(labels(test[f"way_{name}"].to_numpy()), truth))
    inside = (truth >= test[f"low_{name}"].to_numpy()) & (truth <= test[f"high_{name}"].to_numpy())
    metrics["interval_coverage"] = float(inside.mean())
    return metrics


def one_line_baselines(test: pd.DataFrame, model: dict[str, float]) -> tuple[dict[str, dict[str, float]], str | None]:
    """Momentum and reversion at the model's own fire rate, and the model's lift over the better one.

    They fire on as many test rows as the model did, those with the largest
    moves over the last h observations: momentum in that move's direction,
    reversion against it. The model's metrics gain `signal_lift` (its hit rate
    minus the better one's, NaN when it never fired).

    Returns:
        Both rules' signal metrics, and the better one's name (None when the model never fired).
    """
    truth = test["target"].to_numpy()
    past = test["recent_move"].to_numpy(dtype="float64")
    top = largest_moves(past, int(model["n_signals"]))
    out: dict[str, dict[str, float]] = {}
    for kind, sign in (("momentum", 1.0), ("reversion", -1.0)):
        way = np.zeros(len(test))
        way[top] = sign * np.sign(past[top])
        out[kind] = signal_metrics(labels(way), truth)
    hits = {kind: out[kind]["hit_rate"] for kind in out if top.size}
    best = max(hits, key=lambda kind: hits[kind]) if hits else None
    model["signal_lift"] = model["hit_rate"] - hits[best] if best else float("nan")
    return out, best


def signals_by_kind(parts: list[pd.DataFrame], folds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The test signals of the retrains that shipped a model rule, and of those that shipped a one-line rule.

    A model rule must beat the one-line rules at its own rate (`signal_lift`); a one-line rule,
    shipped as such, is judged by its own hit rate.

    Returns:
        {"model_rule_signals": {...}, "one_line_rule_signals": {...}}: n_signals, signal_rate,
        hit_rate and signal_lift of each kind's test rows (NaN where that kind never fired).
    """
    out = {}
    for label, kinds in (("model_rule_signals", MODEL_RULES), ("one_line_rule_signals", ONE_LINE_RULES)):
        chosen = [p for p, f in zip(parts, folds, strict=True) if f.get("signal_rule", {}).get("rule") in kinds]
        if not chosen:
            out[label] = {"n_signals": 0, "signal_rate": 0.0, "hit_rate": float("nan"), "signal_lift": float("nan")}
            continue
        rows = pd.concat(chosen, ignore_index=True)
        m = signal_metrics(labels(rows["way_model"].to_numpy()), rows["target"].to_numpy())
        one_line_baselines(rows, m)
        out[label] = {k: m[k] for k in ("n_signals", "signal_rate", "hit_rate", "signal_lift")}
    return out


def _fit_fold(
    start: pd.Timestamp, train: pd.DataFrame, test: pd.DataFrame, cfg: EvalConfig
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, PriceModel]]:
    """Train every model on one fold's training rows and forecast its test rows."""
    models: dict[str, PriceModel] = {}
    built = make_models(
        cfg.horizon, cfg.fair_horizon, cfg.max_train_rows, cfg.half_life_days, cfg.rule, cfg.fee, cfg.max_signal_share
    )
    for model in built:
        model.fit(train)
        fc = model.predict(test)
        test[f"pred_{model.name}"], test[f"fair_{model.name}"] = fc.ret, fc.fair
        test[f"low_{model.name}"], test[f"high_{model.name}"] = fc.low, fc.high
        # Each fold's model signals by the rule it chose on its own validation slice.
        test[f"way_{model.name}"] = signal_directions(model, fc, cfg.rule, cfg.fee)
        models[model.name] = model
    choice = getattr(models["model"], "choice", {})
    fold = {"start": str(start.date()), "train_rows": len(train), "test_rows": len(test), **choice}
    logger.info("fold from %s: %d train rows, %d test rows, %s", start.date(), len(train), len(test), choice)
    return test, fold, models


def _fit_fold_single_threaded(
    start: pd.Timestamp, train: pd.DataFrame, test: pd.DataFrame, cfg: EvalConfig
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, PriceModel]]:
    with threadpool_limits(1):
        return _fit_fold(start, train, test, cfg)


def fold_processes(n_rows: int, n_jobs: int = 0) -> int:
    """Processes fitting folds side by side: `n_jobs` if set, else one per
    core up to PARALLEL_MAX_ROWS feature rows, else one."""
    return n_jobs or ((os.cpu_count() or 1) if n_rows <= PARALLEL_MAX_ROWS else 1)


def _run_folds(
    jobs: Iterator[tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]], n_folds: int, n_rows: int, cfg: EvalConfig
) -> list[tuple[pd.DataFrame, dict[str, Any], dict[str, PriceModel]]]:
    """Fit the folds, one process per core when there are several.

    Folds are independent. Boosting on a few hundred thousand rows keeps two
    cores only ~75% busy from threads alone (the absolute-error leaf updates
    are serial), so whole folds run side by side, each single-threaded.
    """
    workers = min(fold_processes(n_rows, cfg.n_jobs), n_folds)
    if workers <= 1:
        return [_fit_fold(start, train, test, cfg) for start, train, test in jobs]
    run = Parallel(n_jobs=workers, backend="loky", pre_dispatch="n_jobs")
    return list(run(delayed(_fit_fold_single_threaded)(start, train, test, cfg) for start, train, test in jobs))


def walk_forward(features: pd.DataFrame, cfg: EvalConfig) -> EvalResult:
    """Rolling-origin evaluation: retrain before each test block, score on it.

    The test window (dates after the first `train_fraction`) is cut into
    `folds` consecutive blocks. Before each block every model is trained on
    all rows whose targets end before the block (minus the embargo) and scored
    on the block, as the daily pipeline would have done on that day.

    Args:
        features: output of build_features.
        cfg: horizons, split, folds and signal thresholds.

    Returns:
        Metrics per model over all blocks, the card-resampled MAPE improvement
        of the model over naive, the test rows with every model's forecast,
        and the last block's fitted models.
    """
    frame = with_targets(features, cfg.horizon, cfg.fair_horizon)

    def jobs() -> Iterator[tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]]:
        # A generator: each fold's training copy is made only when a worker is
        # ready for it, so memory holds a couple of folds, never all of them.
        # Latest (largest) folds first, so the workers finish together.
        for block in reversed(test_blocks(frame, cfg)):
            start = pd.Timestamp(block[0])
            train = _train_before(frame, start, cfg.embargo_days, MODEL_WINDOW_FACTOR * cfg.max_train_rows)
            test = frame[frame["date"].isin(block) & frame["target"].notna()].copy()
            if train["target"].notna().sum() and not test.empty:
                yield start, train, test

    done = _run_folds(jobs(), min(len(test_blocks(frame, cfg)), cfg.folds), len(frame), cfg)[::-1]
    parts = [test for test, _, _ in done]
    folds = [fold for _, fold, _ in done]
    models = done[-1][2] if done else {}
    n_train = folds[-1]["train_rows"] if folds else 0
    if not parts:
        raise ValueError("history too short for this horizon: no fold has both training and test rows")
    test = pd.concat(parts, ignore_index=True)
    metrics = {name: _score(test, name, cfg) for name in models}
    one_line, best = one_line_baselines(test, metrics["model"])
    metrics.update(one_line)
    truth = test["target"].to_numpy()
    improvement = card_bootstrap_improvement(
        test["card_id"].to_numpy(),
        ape_of_returns(test["pred_model"].to_numpy(), truth),
        ape_of_returns(test["pred_naive"].to_numpy(), truth),
        n_boot=cfg.n_boot,
    )
    extra = {
        "selection": folds[-1],
        "folds": folds,
        "horizon": cfg.horizon,
        "fair_horizon": cfg.fair_horizon,
        "one_line_best": best,
        **signals_by_kind(parts, folds),
    }
    cutoff = pd.Timestamp(test["date"].min())
    return EvalResult(cutoff, metrics, improvement, test, models, n_train, len(test), extra)
