"""The cross-feed evaluation: cadence per feed, its horizons, one summary row each."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workers.pipeline.evaluate import EvalConfig
from workers.pipeline.feeds import cadence, evaluate_feeds
from workers.pipeline.sources.demo import generate


def _weekly(n_cards: int, n_days: int, seed: int) -> pd.DataFrame:
    prices = generate(n_cards=n_cards, n_days=n_days, seed=seed)
    dates = pd.to_datetime(prices["date"])
    return prices[((dates - dates.min()).dt.days % 7) == 0]


def test_cadence_is_read_from_the_gaps_between_observations() -> None:
    assert cadence(generate(n_cards=5, n_days=60, seed=1)) == "daily"
    assert cadence(_weekly(5, 400, seed=1)) == "weekly"


def test_every_feed_of_a_folder_gets_its_horizons(tmp_path: Path) -> None:
    generate(n_cards=25, n_days=160, seed=2).to_parquet(tmp_path / "daily.parquet")
    _weekly(25, 600, seed=3).to_csv(tmp_path / "weekly.csv", index=False)
    (tmp_path / "notes.txt").write_text("not a feed")
    tiny = generate(n_cards=3, n_days=8, seed=4)
    tiny.to_parquet(tmp_path / "tiny.parquet")
    cfg = EvalConfig(folds=2, n_boot=50, max_train_rows=50_000)
    out = evaluate_feeds(tmp_path, cfg, horizons={"daily": (1, 7), "weekly": (1,)})
    assert set(out) == {"daily.parquet", "weekly.csv", "tiny.parquet"}
    assert (out["daily.parquet"]["cadence"], list(out["daily.parquet"]["horizons"])) == ("daily", ["1", "7"])
    assert (out["weekly.csv"]["cadence"], list(out["weekly.csv"]["horizons"])) == ("weekly", ["1"])
    row = out["daily.parquet"]["horizons"]["7"]
    low, high = row["improvement_interval_pct"]
    assert low <= row["improvement_pct"] <= high
    assert 0 <= row["coverage"] <= 1 and 0 <= row["signal_rate"] <= 1 and row["n_test"] > 0
    assert row["naive_mape"] == pytest.approx(row["model_mape"] / (1 - row["improvement_pct"] / 100), rel=1e-6)
    # A feed too short for a horizon says so instead of failing the table.
    assert any("error" in r for r in out["tiny.parquet"]["horizons"].values())
