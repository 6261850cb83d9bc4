from __future__ import annotations

import numpy as np

from workers.pipeline.metrics import card_bootstrap_improvement, forecast_metrics, signal_metrics


def test_forecast_metrics_by_hand():
    # forecast 110 vs actual 100 (10%), 100 vs 100 (0%)
    m = forecast_metrics(np.log([1.1, 1.0]), np.zeros(2))
    assert np.isclose(m["mape"], 5.0)
    assert np.isclose(m["mdape"], 5.0)
    assert np.isclose(m["rmse_log"], np.sqrt(np.log(1.1) ** 2 / 2))


def test_signal_metrics_counts_hits_and_flats():
    sig = np.array(["BUY", "BUY", "SELL", "HOLD", "SELL"])
    fwd = np.log([1.1, 1.0, 0.8, 2.0, 1.2])
    m = signal_metrics(sig, fwd)
    assert m["n_signals"] == 4
    assert np.isclose(m["signal_rate"], 0.8)
    assert np.isclose(m["hit_rate"], 0.5)  # BUY up, SELL down; one flat, one wrong
    assert np.isclose(m["flat_rate"], 0.25)
    assert np.isclose(m["fwd_return_buy"], 0.05)
    assert np.isclose(m["spread"], 0.05 - 0.0)


def test_bootstrap_interval_brackets_point_and_detects_no_effect():
    rng = np.random.default_rng(0)
    cards = np.repeat(np.arange(200), 10)
    base = rng.exponential(0.02, cards.size)
    better = base * 0.9
    point, low, high = card_bootstrap_improvement(cards, better, base, n_boot=300)
    assert np.isclose(point, 0.1) and low <= point <= high and low > 0.05
    noise = base * rng.choice([0.8, 1.2], cards.size)
    point, low, high = card_bootstrap_improvement(cards, noise, base, n_boot=300)
    assert low < 0 < high or abs(point) < 0.02
