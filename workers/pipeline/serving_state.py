"""The serving state a model version ships with: each card's recent feature rows.

The register step logs it beside the model (workers.registry.log_serving_state);
a model replica loads both together and prices every row once
(workers.serving.state.ServingState), so a reply is always computed by one
model version on the data that version was trained with.
"""

from __future__ import annotations

import pandas as pd

from workers.pipeline.features import FEATURE_COLUMNS

INFO_COLUMNS = ["card_id", "card_name", "set_name", "currency", "date", "market_price", "volume"]


def build_serving_state(features: pd.DataFrame, serving_days: int = 400) -> pd.DataFrame:
    """The last `serving_days` days of every card's feature rows, sorted by card and date."""
    last = features.groupby("card_id", sort=False)["date"].transform("max")
    keep = features[features["date"] > last - pd.Timedelta(days=serving_days)]
    cols = [c for c in INFO_COLUMNS if c in keep.columns] + FEATURE_COLUMNS
    return keep[cols].sort_values(["card_id", "date"], kind="mergesort").reset_index(drop=True)
