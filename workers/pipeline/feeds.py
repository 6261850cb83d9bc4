"""Every feed in a folder, evaluated at the horizons its cadence calls for: one cross-feed table.

A feed is one long-format file (CSV or Parquet, as the file source reads it).
Its cadence is the median gap between a card's consecutive observations:
up to 3 days is daily (horizons 1, 7 and 28 observations), more is weekly
(1 and 4). Each (feed, horizon) is a walk-forward evaluation
(workers.pipeline.evaluate) summarised in one row: MAPE against naive with
its card-resampled 90% interval, the 80% interval's coverage, and the
signals' rate, hit rate and forward spread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workers.pipeline.evaluate import EvalConfig, walk_forward
from workers.pipeline.features import build_features
from workers.pipeline.schema import validate
from workers.pipeline.sources.file import FileSource

logger = logging.getLogger(__name__)

HORIZONS = {"daily": (1, 7, 28), "weekly": (1, 4)}
DAILY_MAX_GAP_DAYS = 3
SUFFIXES = (".parquet", ".pq", ".csv")


def feed_files(folder: Path) -> list[Path]:
    """The feeds of a folder, by name."""
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())


def cadence(prices: pd.DataFrame) -> str:
    """`daily` or `weekly`, from the median gap between a card's consecutive observations."""
    dates = pd.to_datetime(prices["date"])
    gaps = dates.groupby(prices["card_id"].to_numpy()).transform(lambda d: d.sort_values().diff().dt.days)
    median = float(np.nanmedian(gaps.to_numpy(dtype="float64"))) if gaps.notna().any() else float("nan")
    return "daily" if median <= DAILY_MAX_GAP_DAYS else "weekly"


def summary_row(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The cross-feed table's figures of one walk-forward evaluation (its `to_json`)."""
    model = evaluation["model"]
    low, high = evaluation["model_vs_naive_mape_improvement_interval"]
    return {
        "model_mape": model["mape"],
        "naive_mape": evaluation["naive"]["mape"],
        "improvement_pct": evaluation["model_vs_naive_mape_improvement"],
        "improvement_interval_pct": [low, high],
        "coverage": model["interval_coverage"],
        "signal_rate": model["signal_rate"],
        "hit_rate": model["hit_rate"],
        "spread": model["spread"],
        "n_signals": model["n_signals"],
        "n_test": evaluation["n_test"],
        # The one-line rules at the model's own fire rate, and the model's lift over the better one.
        "momentum_hit_rate": evaluation["momentum"]["hit_rate"],
        "reversion_hit_rate": evaluation["reversion"]["hit_rate"],
        "one_line_best": evaluation.get("one_line_best"),
        "signal_lift": model.get("signal_lift", float("nan")),
        # What each retrain shipped: its rule, the recency half-life and the forecast's weight.
        "rules": [fold.get("signal_rule", {}).get("rule", "none") for fold in evaluation.get("folds", [])],
        "half_lives": [fold.get("half_life_days") for fold in evaluation.get("folds", [])],
        # The retrains that shipped a model rule and those that shipped a one-line rule, apart.
        "model_rule_signals": evaluation.get("model_rule_signals"),
        "one_line_rule_signals": evaluation.get("one_line_rule_signals"),
        "validation_hit_rates": [fold.get("signal_rule", {}).get("hit_rate") for fold in evaluation.get("folds", [])],
    }


def evaluate_feeds(
    folder: Path,
    base: EvalConfig,
    horizons: dict[str, tuple[int, ...]] | None = None,
    on_run: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate every feed of `folder` at its cadence's horizons.

    Args:
        folder: the feeds (CSV / Parquet files in the long format).
        base: evaluation settings; each run replaces its horizon.
        horizons: cadence -> horizons (default HORIZONS).
        on_run: called with (feed, horizon) before each evaluation.

    Returns:
        {feed name: {cadence, rows, cards, quarantined, horizons: {h: row or {"error": why}}}}.
    """
    horizons = horizons or HORIZONS
    out: dict[str, Any] = {}
    for path in feed_files(folder):
        checked = validate(FileSource(path).fetch(date.today()))
        prices = checked.clean
        kind = cadence(prices)
        feed: dict[str, Any] = {
            "cadence": kind,
            "rows": len(prices),
            "cards": int(prices["card_id"].nunique()),
            "quarantined": len(checked.quarantined),
            "horizons": {},
        }
        features = build_features(prices)
        for h in horizons[kind]:
            if on_run:
                on_run(path.name, h)
            try:
                result = walk_forward(features, replace(base, horizon=h))
            except ValueError as exc:  # history too short for this horizon
                feed["horizons"][str(h)] = {"error": str(exc)}
                continue
            feed["horizons"][str(h)] = summary_row(result.to_json())
            logger.info("%s h=%d: %s", path.name, h, feed["horizons"][str(h)])
        out[path.name] = feed
    return out
