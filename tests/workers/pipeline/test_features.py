"""Features: vectorized per card, no look-ahead, no bleeding across cards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workers.pipeline.features import CONTEXT_COLUMNS, FEATURE_COLUMNS, add_level_target, add_target, build_features
from workers.pipeline.sources.demo import generate


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return generate(n_cards=20, n_days=60, seed=3)


def test_features_do_not_look_ahead(demo):
    full = build_features(demo)
    cut = demo["date"].sort_values().unique()[40]
    past = build_features(demo[demo["date"] <= cut])
    left = full[full["date"] <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(left[FEATURE_COLUMNS], past[FEATURE_COLUMNS])


def test_cards_do_not_bleed_into_each_other(demo):
    own = [c for c in FEATURE_COLUMNS if c not in CONTEXT_COLUMNS]
    full = build_features(demo)
    alone = build_features(demo[demo["card_id"] == "demo-00005"])
    mine = full[full["card_id"] == "demo-00005"].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine[own], alone[own])


def test_context_is_the_median_move_of_the_feed_and_the_set_on_the_same_date():
    days = pd.date_range("2026-01-01", periods=2)
    prices = pd.DataFrame(
        {
            "card_id": np.repeat(["a", "b", "c"], 2),
            "set_name": np.repeat(["s1", "s1", "s2"], 2),
            "date": np.tile(days.values, 3),
            "market_price": [10.0, 11.0, 10.0, 12.0, 10.0, 20.0],
        }
    )
    last = build_features(prices).groupby("card_id").tail(1).set_index("card_id")
    assert last["feed_move_1"].tolist() == pytest.approx([np.log(1.2)] * 3)
    assert last.loc["a", "set_move_1"] == pytest.approx(np.median([np.log(1.1), np.log(1.2)]))
    assert last.loc["c", "set_move_1"] == pytest.approx(np.log(2.0))


def test_calendar_features_count_days_not_observations():
    dates = pd.to_datetime(["2026-01-01", "2026-01-08", "2026-01-15", "2026-02-12"])
    prices = pd.DataFrame({"card_id": "a", "date": dates, "market_price": [10.0, 10.0, 20.0, 40.0]})
    f = build_features(prices)
    # 7 days back from Jan 15 is Jan 8; 28 days back from Feb 12 is Jan 15; nothing is 90 days old.
    assert f["ret_7d"].tolist()[1:3] == pytest.approx([0.0, np.log(2.0)])
    assert f["ret_28d"].iloc[3] == pytest.approx(np.log(2.0)) and f["ret_90d"].isna().all()
    assert f["days_since_change"].tolist() == [0, 7, 0, 0]


def test_change_features_on_a_known_series():
    prices = pd.DataFrame(
        {
            "card_id": ["a"] * 6,
            "date": pd.date_range("2026-01-01", periods=6),
            "market_price": [10.0, 10.0, 12.0, 12.0, 12.0, 9.0],
        }
    )
    f = build_features(prices)
    assert f["steps_since_change"].tolist() == [0, 1, 0, 1, 2, 0]
    assert np.allclose(f["last_change"], [0, 0, np.log(1.2), np.log(1.2), np.log(1.2), np.log(0.75)])
    assert np.isclose(f["mean_rel_3"].iloc[2], np.log((10 + 10 + 12) / 3 / 12))
    assert f["log_volume"].isna().all()


def test_targets_at_horizon(demo):
    f = add_level_target(add_target(build_features(demo), 2), 3)
    card = f[f["card_id"] == "demo-00000"].reset_index(drop=True)
    assert np.isclose(card["target"].iloc[0], card["log_price"].iloc[2] - card["log_price"].iloc[0])
    assert card["target"].iloc[-2:].isna().all()
    level = np.log(card["market_price"].iloc[1:4].mean()) - card["log_price"].iloc[0]
    assert np.isclose(card["level"].iloc[0], level)
    with pytest.raises(ValueError):
        add_target(f, 0)
