"""Model behaviour: a signal is the exception, and no worse than what the chart alone says.

On a trending market the one-line momentum rule is right more often than not;
on a mean-reverting one, reversion is. Whatever ships fires on at most
POKEWATCH_MAX_SIGNAL_SHARE of card-days and is not worse than the better
one-line rule at the same rate. The recency half-life is the feed's own:
a market that keeps its ways wants all its history, one that changed
them wants the recent months.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.factories import panel
from workers.pipeline.evaluate import EvalConfig, walk_forward, with_targets
from workers.pipeline.features import build_features
from workers.pipeline.models.fair import MAX_SIGNAL_SHARE, choose_signals, one_line_at
from workers.pipeline.models.gbm import GBMModel
from workers.signals import DEFAULT_RULE, ONE_LINE_RULES


def _trending(n_cards: int, n_days: int, seed: int = 0) -> pd.DataFrame:
    """Cards whose daily drift (about +-0.3%) persists for weeks and then changes, under 1.5% daily noise."""
    rng = np.random.default_rng(seed)
    switch = rng.random((n_cards, n_days)) < 1 / 20
    drift = np.where(switch, rng.normal(0, 0.003, (n_cards, n_days)), np.nan)
    drift[:, 0] = rng.normal(0, 0.003, n_cards)
    drift = pd.DataFrame(drift.T).ffill().to_numpy().T
    noise = rng.normal(0, 0.015, drift.shape)
    return panel(np.log(rng.uniform(5, 50, n_cards))[:, None] + np.cumsum(drift + noise, 1))


def _reverting(n_cards: int, n_days: int, seed: int = 0) -> pd.DataFrame:
    """A slow value seen through prints that overshoot it by a few % and come back within days."""
    rng = np.random.default_rng(seed)
    value = np.cumsum(rng.normal(0, 0.003, (n_cards, n_days)), axis=1)
    gap = np.zeros((n_cards, n_days))
    for t in range(1, n_days):
        gap[:, t] = 0.5 * gap[:, t - 1] + rng.normal(0, 0.03, n_cards)
    return panel(np.log(rng.uniform(5, 50, n_cards))[:, None] + value + gap)


def _judge(result, line: str) -> None:
    """What shipped fires on at most the cap and is right at least as often as `line` at its rate."""
    m = result.metrics["model"]
    assert m["signal_rate"] <= MAX_SIGNAL_SHARE, m
    if m["n_signals"]:
        # The baseline fires on the test rows with the largest moves, pooled over the retrains; a shipped
        # one-line rule fires above each retrain's own threshold: the same rule can differ by a point or two.
        assert m["hit_rate"] >= result.metrics[line]["hit_rate"] - 0.03, (m, result.metrics[line])
    rules = {fold["signal_rule"]["rule"] for fold in result.extra["folds"]}
    assert rules - {"none"}, "a rule that works on this market ships"


@pytest.fixture(scope="module")
def trending():
    return walk_forward(build_features(_trending(150, 300)), EvalConfig(horizon=7, n_boot=100, folds=2))


@pytest.fixture(scope="module")
def reverting():
    return walk_forward(build_features(_reverting(120, 200)), EvalConfig(n_boot=100, folds=2))


def test_on_a_trending_market_momentum_is_right_and_what_ships_is_no_worse(trending) -> None:
    assert trending.metrics["momentum"]["hit_rate"] > 0.6, "the market is built to trend"
    _judge(trending, "momentum")


def test_on_a_mean_reverting_market_reversion_is_right_and_what_ships_is_no_worse(reverting) -> None:
    assert reverting.metrics["reversion"]["hit_rate"] > 0.6, "the market is built to revert"
    _judge(reverting, "reversion")


def test_the_evaluation_reports_the_one_line_rules_at_the_models_rate(reverting) -> None:
    out = reverting.to_json()
    model, momentum, reversion = out["model"], out["momentum"], out["reversion"]
    assert momentum["n_signals"] == reversion["n_signals"] == model["n_signals"] > 0
    best = max(momentum["hit_rate"], reversion["hit_rate"])
    assert model["signal_lift"] == pytest.approx(model["hit_rate"] - best)
    assert out["one_line_best"] == "reversion"


def _autocorrelated(switch_day: int, n_cards: int = 100, n_days: int = 300, seed: int = 0) -> pd.DataFrame:
    """Daily moves that follow the last one (beta +0.6) from `switch_day` on, and turn against it
    (beta -0.6) before. Cards start on different days, so a card's age does not tell the regime."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, 120, n_cards)
    dates = pd.date_range("2025-01-01", periods=n_days)
    frames = []
    for i in range(n_cards):
        r = np.zeros(n_days)
        e = rng.normal(0, 0.02, n_days)
        for t in range(1, n_days):
            r[t] = (0.6 if t >= switch_day else -0.6) * r[t - 1] + e[t]
        lp = np.log(20) + np.cumsum(r)
        frames.append(
            pd.DataFrame({"card_id": f"c{i}", "date": dates[start[i] :], "market_price": np.exp(lp[start[i] :])})
        )
    return pd.concat(frames, ignore_index=True)


def test_the_recency_half_life_is_chosen_per_feed_on_validation() -> None:
    chosen = {}
    for name, switch_day in (("stable", 0), ("switched", 200)):
        model = GBMModel(horizon=1).fit(with_targets(build_features(_autocorrelated(switch_day)), 1, 8))
        chosen[name] = model.choice["half_life_days"]
        assert set(model.choice["validation_half_life_mape"]) == {"0", "90", "35"}
    # A market that keeps its ways: every row counts the same. One that changed: the recent rows count.
    assert chosen["stable"] == 0, chosen
    assert 0 < chosen["switched"] <= 35, chosen


def test_a_configured_half_life_is_used_as_is() -> None:
    prices = _autocorrelated(0, n_cards=40, n_days=200)
    model = GBMModel(horizon=1, half_life_days=21).fit(with_targets(build_features(prices), 1, 8))
    assert model.choice["half_life_days"] == 21 and set(model.choice["validation_half_life_mape"]) == {"21"}


def test_one_line_rules_fire_on_the_largest_recent_moves() -> None:
    past = np.log1p(np.array([0.05, -0.04, 0.01, -0.002, np.nan, 0.0]))
    realised = np.log1p(np.array([0.02, 0.01, -0.01, 0.01, 0.03, 0.0]))
    out = one_line_at(past, realised, 2)
    # The two largest moves: +5% (then up: momentum right) and -4% (then up: reversion right).
    assert out["momentum"] == 0.5 and out["reversion"] == 0.5
    assert out["k"] == pytest.approx(abs(np.log1p(-0.04)))


def test_a_model_rule_that_only_echoes_momentum_does_not_ship_and_momentum_does_labelled() -> None:
    rng = np.random.default_rng(1)
    n = 6000
    past = rng.normal(0, 0.03, n)
    # The next move follows the last one 70% of the time: momentum is right; the "model" fair
    # level is that same recent move, so its rules are momentum in disguise.
    follows = rng.random(n) < 0.7
    realised = np.where(follows, np.sign(past), -np.sign(past)) * np.abs(rng.normal(0.02, 0.01, n))
    dates = np.repeat(np.arange(60), n // 60)
    _, policy, table = choose_signals(
        {"gbm": past.copy()}, np.full(n, 0.02), realised, DEFAULT_RULE, dates=dates, past=past, horizon=7
    )
    assert policy.rule in ONE_LINE_RULES and policy.rule == "momentum", policy
    assert policy.fire_rate <= MAX_SIGNAL_SHARE and policy.hit_rate >= 0.63
    assert "no model rule beat it" in policy.reason
    assert all(e["lift"] < 0.05 for e in table.values() if e["rule"] not in ONE_LINE_RULES and e["n"])


def test_the_cap_bounds_every_rule_tried() -> None:
    rng = np.random.default_rng(2)
    n = 5000
    fair = rng.normal(0, 0.2, n)  # far from the market everywhere: the fixed rule alone would fire on most rows
    realised = fair * 0.5 + rng.normal(0, 0.02, n)
    _, policy, table = choose_signals(
        {"gbm": fair}, np.full(n, 0.05), realised, DEFAULT_RULE, dates=np.arange(n) % 50, past=rng.normal(0, 0.02, n)
    )
    # Thresholds are set on the earlier windows at 80% of the cap at most; the latest window,
    # whose figures the rule reports, may land above it by its sampling noise (2 s.e., 1,200 rows).
    assert max(e["rate"] for e in table.values()) <= 0.8 * MAX_SIGNAL_SHARE
    assert policy.rule != "none" and policy.fire_rate <= MAX_SIGNAL_SHARE + 2 * np.sqrt(0.1 * 0.9 / 1200)
