"""Small builders of valid messages for tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from contracts.messages import Quote


def panel(logp: np.ndarray, start: str = "2025-01-01") -> pd.DataFrame:
    """The long price table of a (cards x days) array of log prices, one card a row, daily from `start`."""
    n_cards, n_days = logp.shape
    dates = pd.date_range(start, periods=n_days)
    return pd.DataFrame(
        {
            "card_id": np.repeat([f"c{i}" for i in range(n_cards)], n_days),
            "date": np.tile(dates.values, n_cards),
            "market_price": np.exp(logp).ravel(),
        }
    )


def make_quote(card_id: str = "c1", market: float = 80.0, fair: float = 100.0, model_version: str = "1") -> Quote:
    """A valid quote whose interval spans the market and fair prices."""
    return Quote(
        card_id=card_id,
        date="2024-06-01",
        market_price=market,
        forecast_price=market,
        fair_price=fair,
        fair_price_low=min(market, fair),
        fair_price_high=max(market, fair),
        model_version=model_version,
        served_by="model-1",
    )
