from __future__ import annotations

from datetime import date

import numpy as np

from workers.pipeline.sources.demo import DemoSource, generate


def test_deterministic_and_named_synthetic():
    a, b = generate(30, 50, seed=1), generate(30, 50, seed=1)
    assert a.equals(b)
    assert not a.equals(generate(30, 50, seed=2))
    assert a["card_name"].str.startswith("Synthetic").all()
    assert a["set_name"].str.startswith("Synthetic").all()
    assert (a["source"] == "demo (synthetic)").all()
    assert len(a) == 30 * 50 and (a["market_price"] > 0).all()


def test_calibrated_to_real_feed_statistics():
    d = generate(300, 200)
    r = np.log(d["market_price"]).groupby(d["card_id"]).diff().dropna()
    unchanged = (r == 0).mean()
    big = (np.abs(np.expm1(r)) >= 0.10).mean()
    assert 0.40 <= unchanged <= 0.52  # real feeds: 45.6% and 45.9%
    assert 0.015 <= big <= 0.06  # real feeds: 5.5% and 2.8%
    assert abs(r.mean()) < 0.001


def test_source_ends_the_day_before_collection():
    df = DemoSource(n_cards=2, n_days=10).fetch(date(2026, 3, 1))
    assert str(df["date"].max().date()) == "2026-02-28"
