"""Model behaviour: the 80% interval covers about 80% of outcomes it has not seen."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from workers.pipeline.evaluate import with_targets
from workers.pipeline.features import build_features
from workers.pipeline.models import GBMModel
from workers.pipeline.models.interval import conformal_adjustment
from workers.pipeline.schema import validate


def _known_noise(n_cards: int, n_days: int, seed: int) -> pd.DataFrame:
    """Log prices that random-walk with Student-t steps (3 degrees of freedom: heavy tails, where a
    quantile fit on few rows misjudges the band) and a volatility of each card's own, 1% to 6% a day."""
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.01, 0.06, n_cards)
    steps = rng.standard_t(3, (n_cards, n_days)) / np.sqrt(3) * sigma[:, None]
    logp = np.log(rng.uniform(5, 50, n_cards))[:, None] + np.cumsum(steps, axis=1)
    days = [date(2025, 1, 1) + timedelta(days=d) for d in range(n_days)]
    return pd.DataFrame(
        {
            "card_id": np.repeat([f"c{i:03d}" for i in range(n_cards)], n_days),
            "card_name": "Synthetic",
            "set_name": np.repeat([f"set{i % 5}" for i in range(n_cards)], n_days),
            "date": np.tile(days, n_cards),
            "market_price": np.exp(logp).ravel(),
            "currency": "USD",
            "source": "test",
        }
    )


@pytest.mark.parametrize("horizon", [1, 5])
def test_the_calibrated_band_covers_80_percent_of_later_outcomes(horizon: int) -> None:
    frame = with_targets(build_features(validate(_known_noise(150, 260, seed=horizon)).clean), horizon, 8)
    cut = frame["date"].min() + pd.Timedelta(days=200)
    train = frame[frame["target_date"] < cut]
    test = frame[(frame["date"] >= cut + pd.Timedelta(days=horizon)) & frame["target"].notna()]
    model = GBMModel(horizon=horizon, max_train_rows=100_000).fit(train)
    fc = model.predict(test)
    y = test["target"].to_numpy()
    coverage = float(np.mean((y >= fc.low) & (y <= fc.high)))
    assert 0.75 <= coverage <= 0.85, (coverage, model.choice.get("validation_raw_coverage"))
    assert "interval_adjust" in model.choice


def test_the_adjustment_moves_both_bounds_to_the_nominal_share() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(0, 1, 5000)
    narrow = conformal_adjustment(np.full_like(y, -0.5), np.full_like(y, 0.5), y)
    wide = conformal_adjustment(np.full_like(y, -3.0), np.full_like(y, 3.0), y)
    assert narrow[0] > 0 > wide[0], "too narrow widens, too wide narrows"
    for adjust, _ in (narrow, wide):
        inside = np.mean(np.abs(y) <= (0.5 if adjust > 0 else 3.0) + adjust)
        assert 0.79 <= inside <= 0.82
    assert narrow[1] == pytest.approx(np.mean(np.abs(y) <= 0.5))


def test_a_few_rough_dates_do_not_set_the_band_of_every_day() -> None:
    rng = np.random.default_rng(1)
    days = np.repeat(np.arange(10), 400)
    scale = np.where(days >= 8, 4.0, 1.0)  # two rough days in ten
    y = rng.normal(0, 1, len(days)) * scale
    band = np.full_like(y, 1.0)
    pooled, _ = conformal_adjustment(-band, band, y)
    by_date, raw = conformal_adjustment(-band, band, y, days)
    calm = y[days < 8]
    assert np.mean(np.abs(calm) <= 1.0 + pooled) > 0.9, "the pooled quantile widens the band for the calm days"
    assert 0.77 <= np.mean(np.abs(calm) <= 1.0 + by_date) <= 0.83, "by date, it fits a typical day"
    assert raw == pytest.approx(np.mean(np.abs(y) <= 1.0))
    same = rng.normal(0, 1, len(days))
    assert conformal_adjustment(-band, band, same, days)[0] == pytest.approx(
        conformal_adjustment(-band, band, same)[0], abs=0.05
    ), "dates alike: the same adjustment as pooled"
