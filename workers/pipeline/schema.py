"""The long price table every source produces, and its validation.

Validation never drops a row silently: every rejected row goes to the
quarantine table with its reason, and the counts reach the run summary.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("card_id", "date", "market_price")
# None means "copy card_id" (a card with no name is shown by its id).
OPTIONAL_DEFAULTS: dict[str, str | None] = {"card_name": None, "set_name": "", "currency": "USD", "source": ""}
LONG_COLUMNS = ["card_id", "card_name", "set_name", "date", "market_price", "currency", "source", "volume"]


@dataclass
class Validated:
    clean: pd.DataFrame
    quarantined: pd.DataFrame

    def reasons(self) -> dict[str, int]:
        if self.quarantined.empty:
            return {}
        return {str(k): int(v) for k, v in self.quarantined["reason"].value_counts().items()}


def validate(raw: pd.DataFrame, known_cards: Collection[str] | None = None) -> Validated:
    """Split a raw long table into clean rows and quarantined rows.

    Args:
        raw: a source's output (any dtypes; strings are parsed here).
        known_cards: tracked card ids; rows of other cards are quarantined as
            "unknown card". None accepts every card id.

    Returns:
        Clean rows with typed columns (date as datetime64, market_price float),
        and quarantined rows (original values as text) with a `reason`.
    """
    df = raw.reset_index(drop=True).copy()
    for column, default in OPTIONAL_DEFAULTS.items():
        if column not in df.columns:
            df[column] = df["card_id"] if default is None else default
    if "volume" not in df.columns:
        df["volume"] = np.nan
    reason = pd.Series(pd.NA, index=df.index, dtype="object")

    def flag(mask: pd.Series | np.ndarray, why: str) -> None:
        reason[np.asarray(mask) & reason.isna().to_numpy()] = why

    card = df["card_id"].astype("string").str.strip()
    flag(card.isna() | (card == ""), "missing card_id")
    if known_cards is not None:
        flag(~card.isin(list(known_cards)).fillna(False), "unknown card")

    raw_price = df["market_price"]
    price = pd.to_numeric(raw_price, errors="coerce").astype("float64")
    flag(raw_price.isna(), "missing price")
    flag(price.isna(), "non-numeric price")
    flag(~np.isfinite(price.fillna(0.0)), "non-finite price")
    flag(price <= 0, "non-positive price")

    dates = pd.to_datetime(df["date"].astype("string"), errors="coerce", format="mixed")
    flag(dates.isna(), "bad date")
    volume = pd.to_numeric(df["volume"], errors="coerce")
    flag(df["volume"].notna() & (volume.isna() | (volume < 0)), "bad volume")

    ok = reason.isna()
    candidates = pd.DataFrame({"card_id": card, "date": dates.dt.normalize()})[ok]
    # A card has one price per date; keep the last row of a repeated pair.
    dup = candidates.duplicated(["card_id", "date"], keep="last")
    flag(ok & dup.reindex(df.index, fill_value=False), "duplicate card_id and date (kept the last)")
    ok = reason.isna()

    clean = pd.DataFrame(
        {
            "card_id": card[ok].astype(str),
            "card_name": df.loc[ok, "card_name"].astype("string").fillna("").astype(str),
            "set_name": df.loc[ok, "set_name"].astype("string").fillna("").astype(str),
            "date": dates[ok].dt.normalize().astype("datetime64[us]"),
            "market_price": price[ok],
            "currency": df.loc[ok, "currency"].astype("string").fillna("").astype(str),
            "source": df.loc[ok, "source"].astype("string").fillna("").astype(str),
            "volume": volume[ok].astype("float64"),
        }
    ).reset_index(drop=True)
    bad = df[~ok].astype("string").assign(reason=reason[~ok].astype(str)).reset_index(drop=True)
    return Validated(clean, bad)
