"""Realized metrics of the champion: its stored forecasts against the prices that came later."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workers.pipeline.monitor import outcomes, realized_metrics


def _prices(n_cards: int, days: int, growth: float) -> pd.DataFrame:
    rows = []
    for c in range(n_cards):
        for d in range(days):
            rows.append({"card_id": f"c{c}", "date": pd.Timestamp("2026-01-01") + pd.Timedelta(days=d),
                         "market_price": 10.0 * (1 + growth) ** d})  # fmt: skip
    return pd.DataFrame(rows)


def test_realized_metrics_from_a_stored_forecast_and_later_prices() -> None:
    prices = _prices(40, 10, growth=0.02)  # every card rises 2% a day
    origin = pd.Timestamp("2026-01-05")
    forecasts = pd.DataFrame(
        {
            "card_id": [f"c{c}" for c in range(40)],
            "date": origin,
            "ret": 0.0,  # it forecast no move
            "low": -0.01,
            "high": np.where(np.arange(40) < 10, 0.05, 0.01),  # a quarter of the bands reach the outcome
            "fair": np.log(1 / 0.85),  # fair 17.6% above the market
            "way": 1.0,  # the served signal: BUY
        }
    )
    scored = outcomes(forecasts, prices, horizon=2)
    assert len(scored) == 40 and (scored["outcome_date"] == origin + pd.Timedelta(days=2)).all()
    assert scored["realized"].to_numpy() == pytest.approx(np.log(1.02**2))
    out = realized_metrics(scored, backtest_mape=1.0)
    assert out["n"] == 40
    assert out["mape"] == pytest.approx(100 * (1 - 1 / 1.02**2))
    assert out["coverage"] == pytest.approx(0.25)
    assert (out["signal_rate"], out["hit_rate"]) == (1.0, 1.0)
    assert out["decay"] is True and "worse beyond noise" in out["reason"]
    assert realized_metrics(scored, backtest_mape=10.0)["decay"] is False


def test_outcomes_not_yet_arrived_are_left_out_and_few_are_not_judged() -> None:
    prices = _prices(5, 6, growth=0.0)
    forecasts = pd.DataFrame(
        {
            "card_id": ["c0", "c1"],
            "date": pd.Timestamp("2026-01-05"),
            "ret": 0.0,
            "low": -0.1,
            "high": 0.1,
            "fair": 0.0,
            "way": 0.0,
        }
    )
    assert outcomes(forecasts, prices, horizon=2).empty  # two steps after the 5th are not in the data yet
    scored = outcomes(forecasts, prices, horizon=1)
    out = realized_metrics(scored, backtest_mape=0.5)
    assert out["n"] == 2 and out["decay"] is False and "too few" in out["reason"]
    assert realized_metrics(scored.iloc[:0], 0.5)["n"] == 0
