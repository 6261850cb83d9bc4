"""Small builders of valid messages for tests."""

from __future__ import annotations

from contracts.messages import Quote


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
