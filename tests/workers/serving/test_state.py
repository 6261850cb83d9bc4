"""Serving state: every row priced once, lookups by card and date, clear 404s."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from contracts.messages import ItemError, PredictItem, Quote
from workers.pipeline.features import build_features
from workers.pipeline.models import RollingMeanModel
from workers.pipeline.serving_state import build_serving_state
from workers.pipeline.sources.demo import generate
from workers.serving.state import ServingState

END = dt.date(2026, 1, 31)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    prices = generate(n_cards=5, n_days=60, end=END, seed=3)
    # A weekly card: one price every 7 days, to exercise "as of" lookups.
    weekly = prices[prices["card_id"] == prices["card_id"].iloc[0]].iloc[::7].assign(card_id="weekly")
    return build_features(pd.concat([prices, weekly], ignore_index=True))


@pytest.fixture(scope="module")
def state(features: pd.DataFrame) -> ServingState:
    return ServingState.build("7", build_serving_state(features, serving_days=400), RollingMeanModel())


def test_state_keeps_only_the_last_serving_days_of_each_card(features: pd.DataFrame) -> None:
    kept = build_serving_state(features, serving_days=10)
    assert kept.groupby("card_id")["date"].nunique().max() == 10
    assert kept["date"].max() == pd.Timestamp(END)


def test_latest_quote_uses_the_last_price_and_the_model_fair_price(state: ServingState, features: pd.DataFrame) -> None:
    card = features["card_id"].iloc[0]
    (quote,) = state.quote([PredictItem(card_id=card)], "model-1")
    assert isinstance(quote, Quote)
    rows = features[features["card_id"] == card].sort_values("date")
    last = rows.iloc[-1]
    assert quote.date == last["date"].date()
    assert quote.market_price == pytest.approx(last["market_price"], rel=1e-4)
    # RollingMeanModel's fair price is the mean of the last 3 prices.
    assert quote.fair_price == pytest.approx(rows["market_price"].iloc[-3:].mean(), rel=1e-3)
    assert quote.fair_price_low <= quote.fair_price <= quote.fair_price_high
    assert (quote.model_version, quote.served_by) == ("7", "model-1")


def test_past_date_is_priced_as_of_that_date(state: ServingState, features: pd.DataFrame) -> None:
    weekly = features[features["card_id"] == "weekly"].sort_values("date")
    first, second = weekly["date"].iloc[0].date(), weekly["date"].iloc[1].date()
    between = first + dt.timedelta(days=3)
    (quote,) = state.quote([PredictItem(card_id="weekly", date=between)], "m")
    assert isinstance(quote, Quote)
    assert quote.date == first < between < second
    assert quote.market_price == pytest.approx(weekly["market_price"].iloc[0], rel=1e-4)


@pytest.mark.parametrize(
    ("card", "day", "needle"),
    [
        ("nope", None, "unknown card 'nope'"),
        ("weekly", END + dt.timedelta(days=30), "latest known price is on"),
        ("weekly", dt.date(2000, 1, 1), "served history starts on"),
    ],
)
def test_unknown_card_or_date_is_a_404(state: ServingState, card: str, day: dt.date | None, needle: str) -> None:
    (result,) = state.quote([PredictItem(card_id=card, date=day)], "m")
    assert isinstance(result, ItemError)
    assert result.status == 404 and needle in result.error


def test_results_keep_the_order_of_the_items(state: ServingState, features: pd.DataFrame) -> None:
    cards = list(features["card_id"].unique()[:3])
    items = [PredictItem(card_id=cards[0]), PredictItem(card_id="zz"), PredictItem(card_id=cards[2])]
    results = state.quote(items, "m")
    assert [r.card_id for r in results] == [cards[0], "zz", cards[2]]
    assert [type(r).__name__ for r in results] == ["Quote", "ItemError", "Quote"]


def test_catalog_lists_every_card_with_its_history(state: ServingState) -> None:
    import orjson

    from contracts.history import history_points

    summary, history = state.catalog()
    assert set(summary) == set(state.cards)
    weekly = orjson.loads(summary["weekly"])
    points = history_points(history["weekly"])
    assert weekly["observations"] == len(points)
    assert weekly["last_date"] == points[-1]["date"]
    assert np.all(np.diff([dt.date.fromisoformat(p["date"]).toordinal() for p in points]) == 7)
