"""Per-card time-series features, computed with vectorized group operations.

Input is the long price table (one row per card and date). Every feature at
row t uses prices up to and including t only, so a row is a valid forecast
origin. Horizons are counted in observations of the card's own series (weeks
for weekly data, days for daily data), which is what "next price" means to a
collector looking at a price chart.

Features come at two kinds of scale: in observations (the last 1-26 steps)
and in calendar time (7, 28 and 90 days back, volatility over 28 days, days
since the price last moved), so one model reads a weekly and a daily feed
alike. Context from other cards is leakage-safe by construction: the median
move of the whole feed and of the card's set *on the row's own date* uses
prices known on that date only.

Why this module runs past 300 lines: the per-card features, the context that
joins the partitions and the targets all rely on one row layout (sorted by
card and date, a card's rows contiguous); kept together, that invariant is
stated once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

ROLL_WINDOWS = (3, 5, 10)
RETURN_LAGS = (1, 2, 3, 4)
CALENDAR_DAYS = (7, 28, 90)

FEATURE_COLUMNS: list[str] = [
    *(f"ret_{k}" for k in RETURN_LAGS),
    "ret_cum_4",
    "ret_cum_8",
    "ret_cum_13",
    "ret_cum_26",
    *(f"mean_rel_{w}" for w in ROLL_WINDOWS),
    *(f"median_rel_{w}" for w in ROLL_WINDOWS),
    *(f"std_{w}" for w in ROLL_WINDOWS),
    "max_rel_10",
    "min_rel_10",
    "steps_since_change",
    "last_change",
    "change_share_10",
    "log_volume",
    "volume_rel_5",
    "volume_mean_10",
    "vwap_rel_4",
    "vwap_rel_10",
    "log_price",
    "age",
    *(f"ret_{d}d" for d in CALENDAR_DAYS),
    "vol_28d",
    "days_since_change",
    "feed_move_1",
    "feed_move_28d",
    "set_move_1",
    "set_move_28d",
]


# Features read from other cards on the same date (the feed's and the set's median move).
CONTEXT_COLUMNS = ("feed_move_1", "feed_move_28d", "set_move_1", "set_move_28d")


def prepare(prices: pd.DataFrame) -> pd.DataFrame:
    """Sort the long table by card and date and add `log_price`.

    Args:
        prices: validated long table with card_id, date, market_price
            (and optionally volume).

    Returns:
        A new frame sorted by (card_id, date) with a fresh RangeIndex.
    """
    df = prices.sort_values(["card_id", "date"], kind="mergesort").reset_index(drop=True)
    df["log_price"] = np.log(df["market_price"].to_numpy(dtype="float64"))
    return df


def _group_rolling(values: pd.Series, keys: pd.Series, window: int, how: str) -> np.ndarray:
    roller = values.groupby(keys, sort=False).rolling(window, min_periods=1)
    out = getattr(roller, how)()
    # groupby().rolling() prefixes the group key; rows keep their original order
    # because the frame is already sorted by card.
    return out.to_numpy()


def build_features(prices: pd.DataFrame) -> pd.DataFrame:
    """Compute the model's features for every (card, date) row of a whole table.

    The same as computing `card_features` partition by partition and joining
    the context of all of them (`context_tables`, `add_context`): that is
    how the pipeline runs at catalogue scale (workers.pipeline.run).

    Args:
        prices: validated long table (card_id, date, market_price, optional
            volume); any order.

    Returns:
        The table sorted by (card_id, date) with `log_price`, every column of
        FEATURE_COLUMNS, and `step` (the row's position in its card's series).
    """
    df = card_features(prices)
    return add_context(df, *context_tables(df))


def card_features(prices: pd.DataFrame) -> pd.DataFrame:
    """Every feature that reads the card's own history only (all but CONTEXT_COLUMNS, left NaN).

    A card's rows give the same features whatever other cards are in the
    table: a partition of whole cards can be computed alone.
    """
    df = prepare(prices)
    keys = df["card_id"]
    grouped = df.groupby("card_id", sort=False)
    lp = df["log_price"]
    price = df["market_price"].astype("float64")

    step = grouped.cumcount().to_numpy()
    df["step"] = step
    ret = lp - grouped["log_price"].shift(1)
    df["ret_1"] = ret
    for k in RETURN_LAGS[1:]:
        df[f"ret_{k}"] = ret.groupby(keys, sort=False).shift(k - 1)
    df["ret_cum_4"] = lp - grouped["log_price"].shift(4)
    df["ret_cum_8"] = lp - grouped["log_price"].shift(8)
    df["ret_cum_13"] = lp - grouped["log_price"].shift(13)
    df["ret_cum_26"] = lp - grouped["log_price"].shift(26)

    for w in ROLL_WINDOWS:
        df[f"mean_rel_{w}"] = np.log(_group_rolling(price, keys, w, "mean")) - lp
        df[f"median_rel_{w}"] = np.log(_group_rolling(price, keys, w, "median")) - lp
        df[f"std_{w}"] = _group_rolling(ret.fillna(0.0), keys, w, "std")
    df["max_rel_10"] = np.log(_group_rolling(price, keys, 10, "max")) - lp
    df["min_rel_10"] = np.log(_group_rolling(price, keys, 10, "min")) - lp

    changed = ret.fillna(0.0).ne(0.0)
    # Number the runs of unchanged prices; position inside a run is the number
    # of steps since the price last moved.
    run_id = changed.astype("int64").groupby(keys, sort=False).cumsum()
    run_key = keys.astype(str) + "\x00" + run_id.astype(str)
    df["steps_since_change"] = df.groupby(run_key, sort=False).cumcount().to_numpy()
    last_change = ret.where(changed)
    df["last_change"] = last_change.groupby(keys, sort=False).ffill().fillna(0.0)
    df["change_share_10"] = _group_rolling(changed.astype("float64"), keys, 10, "mean")

    if "volume" in df.columns and df["volume"].notna().any():
        vol = pd.to_numeric(df["volume"], errors="coerce").astype("float64")
        df["log_volume"] = np.log1p(vol.clip(lower=0))
        df["volume_rel_5"] = np.log1p(vol) - np.log1p(_group_rolling(vol, keys, 5, "mean"))
        df["volume_mean_10"] = np.log1p(_group_rolling(vol, keys, 10, "mean"))
        # Volume-weighted mean price: a week of many sales says more about value
        # than a week of one.
        pv = price * vol.fillna(0.0)
        for w in (4, 10):
            num = _group_rolling(pv, keys, w, "sum")
            den = _group_rolling(vol.fillna(0.0), keys, w, "sum")
            with np.errstate(divide="ignore", invalid="ignore"):
                df[f"vwap_rel_{w}"] = np.where(den > 0, np.log(num / den) - lp, np.nan)
    else:
        df["volume_mean_10"] = np.nan
        df["vwap_rel_4"] = np.nan
        df["vwap_rel_10"] = np.nan
        df["log_volume"] = np.nan
        df["volume_rel_5"] = np.nan
    df["age"] = step.astype("float64")
    _calendar_features(df, ret)
    for column in CONTEXT_COLUMNS:
        df[column] = np.nan
    # float32 halves the table (3.65M rows x 30 features: 0.9 GB -> 0.45 GB);
    # log_price stays float64 because targets are differences of it.
    narrow = [c for c in FEATURE_COLUMNS if c != "log_price"]
    df[narrow] = df[narrow].astype("float32")
    return df


def _as_of(codes: np.ndarray, days: np.ndarray, back: int) -> np.ndarray:
    """Index of each row's card's last row on or before `back` days earlier, or -1.

    The frame is sorted by card and date, so (card code, day) is sorted too
    and one binary search over the whole table finds every row's answer."""
    key = codes.astype("int64") * 1_000_000 + days
    idx = np.searchsorted(key, key - back, side="right") - 1
    same = (idx >= 0) & (codes[np.maximum(idx, 0)] == codes)
    return np.where(same, idx, -1)


def _calendar_features(df: pd.DataFrame, ret: pd.Series) -> None:
    """Returns over 7/28/90 calendar days, volatility over 28 days, days since the last change."""
    codes = pd.factorize(df["card_id"], sort=False)[0]
    days = (df["date"].to_numpy().astype("datetime64[D]").astype("int64")).astype("int64")
    lp = df["log_price"].to_numpy()
    for back in CALENDAR_DAYS:
        idx = _as_of(codes, days, back)
        df[f"ret_{back}d"] = np.where(idx >= 0, lp - lp[np.maximum(idx, 0)], np.nan)
    # Volatility of the steps inside the last 28 days, from running sums (no per-card loop).
    # The sums restart with every card: a card's figures do not depend on the rows
    # before it (nor does their rounding), so a partition gives the whole table's values.
    r = pd.Series(ret.fillna(0.0).to_numpy())
    c1 = r.groupby(codes, sort=False).cumsum().to_numpy()
    c2 = (r * r).groupby(codes, sort=False).cumsum().to_numpy()
    first = df.groupby(codes, sort=False).cumcount().to_numpy()
    start = np.arange(len(df)) - first  # the card's first row
    idx = _as_of(codes, days, 28)
    lo = np.where(idx >= 0, idx, start)  # the steps after the as-of row (the first row has no step)
    hi = np.arange(len(df))
    n = np.maximum(hi - lo, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (c1[hi] - c1[lo]) / n
        var = (c2[hi] - c2[lo]) / n - mean**2
    df["vol_28d"] = np.where(n >= 2, np.sqrt(np.maximum(var, 0.0)), np.nan)
    changed = ret.fillna(0.0).to_numpy() != 0
    last_change_day = pd.Series(np.where(changed | (first == 0), days, np.nan)).groupby(codes).ffill().to_numpy()
    df["days_since_change"] = days - last_change_day


def context_tables(*frames: pd.DataFrame | Any, rows_per_slice: int = 4_000_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The median move of the whole feed, and of each set, on each date.

    Computed with Polars from the stored (float32) `ret_1` and `ret_28d` of
    every card: pass the whole table, or the partitions' Parquet files
    (`pathlib.Path`s; only four columns are read). Only prices of a date
    enter that date's medians, so the context leaks nothing from the future.

    Returns:
        (feed, sets): `date, feed_move_1, feed_move_28d` and
        `set_name, date, set_move_1, set_move_28d` (a card without a set
        counts in the set "").
    """
    import polars as pl

    columns = ["date", "set_name", "ret_1", "ret_28d"]
    parts: list[pl.LazyFrame] = []
    for frame in frames:
        if isinstance(frame, pd.DataFrame):
            present = [c for c in columns if c in frame.columns]
            parts.append(pl.from_pandas(frame[present]).lazy())
        else:
            names = pl.scan_parquet(frame).collect_schema().names()
            parts.append(pl.scan_parquet(frame).select([c for c in columns if c in names]))
    moves = pl.concat(parts, how="diagonal_relaxed").with_columns(
        pl.col("ret_1").cast(pl.Float64).fill_nan(None),
        pl.col("ret_28d").cast(pl.Float64).fill_nan(None),
    )
    if "set_name" not in moves.collect_schema().names():
        moves = moves.with_columns(pl.lit(None, dtype=pl.String).alias("set_name"))
    moves = moves.with_columns(pl.col("set_name").cast(pl.String))
    # A median needs every value of its group at once: the dates are taken a slice
    # at a time (each slice reads the files again, only its rows kept), so memory
    # is bounded by the slice, not the catalogue.
    rows = moves.select(pl.len()).collect(engine="streaming").item()
    feeds, by_sets = [], []
    for lo, hi in _date_slices(moves, max(1, -(-rows // rows_per_slice))):
        chunk = moves
        if lo is not None:
            chunk = chunk.filter(pl.col("date") >= lo)
        if hi is not None:
            chunk = chunk.filter(pl.col("date") < hi)
        feed = chunk.group_by("date").agg(
            pl.col("ret_1").median().alias("feed_move_1"), pl.col("ret_28d").median().alias("feed_move_28d")
        )
        sets = (
            chunk.filter(pl.col("set_name").is_not_null().any())
            .with_columns(pl.col("set_name").fill_null(""))
            .group_by("set_name", "date")
            .agg(pl.col("ret_1").median().alias("set_move_1"), pl.col("ret_28d").median().alias("set_move_28d"))
        )
        got = pl.collect_all([feed, sets], engine="streaming")
        feeds.append(got[0])
        by_sets.append(got[1])
    feed_df, sets_df = pl.concat(feeds), pl.concat(by_sets)
    return feed_df.sort("date").to_pandas(), sets_df.sort("set_name", "date").to_pandas()


def _date_slices(moves: Any, count: int) -> list[tuple[Any, Any]]:
    """`count` date ranges [lo, hi) covering every date of `moves`; the last has no hi (None),
    and a single slice no bounds at all."""
    import polars as pl

    if count <= 1:
        return [(None, None)]
    dates = moves.select(pl.col("date").unique().sort()).collect(engine="streaming")["date"]
    bounds = list(dict.fromkeys(dates[int(i * len(dates) / count)] for i in range(count)))
    return list(zip(bounds, [*bounds[1:], None], strict=True))


def add_context(df: pd.DataFrame, feed: pd.DataFrame, sets: pd.DataFrame) -> pd.DataFrame:
    """Fill CONTEXT_COLUMNS of `df` (in place, row order kept) from `context_tables`."""
    dates = pd.to_datetime(df["date"])
    on_date = feed.assign(date=pd.to_datetime(feed["date"])).set_index("date")
    for column in ("feed_move_1", "feed_move_28d"):
        df[column] = dates.map(on_date[column]).to_numpy(dtype="float32")
    if "set_name" in df.columns and len(sets) and df["set_name"].notna().any():
        key = pd.MultiIndex.from_arrays([df["set_name"].fillna("").astype(str), dates])
        by_set = sets.assign(date=pd.to_datetime(sets["date"])).set_index(["set_name", "date"])
        for column in ("set_move_1", "set_move_28d"):
            df[column] = by_set[column].reindex(key).to_numpy(dtype="float32")
    else:
        df["set_move_1"] = np.float32(np.nan)
        df["set_move_28d"] = np.float32(np.nan)
    return df


def recent_move(features: pd.DataFrame, horizon: int) -> np.ndarray:
    """Each row's move over its card's last `horizon` observations (log units; NaN before that many).

    What a collector reads off the chart, and the one-line rules' input (workers.signals).

    Args:
        features: sorted by card and date, with `log_price`.
        horizon: observations back.
    """
    back = features.groupby("card_id", sort=False)["log_price"].shift(horizon)
    return (features["log_price"] - back).to_numpy(dtype="float64")


def add_target(features: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Add the forward log-return `target`, the target's date `target_date` and the
    backward move over as many observations, `recent_move`.

    Args:
        features: output of build_features (sorted by card and date).
        horizon: steps ahead, >= 1.

    Returns:
        The same frame with `target` (NaN where the card has no row h steps
        ahead), `target_date` and `recent_move`.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    grouped = features.groupby("card_id", sort=False)
    features["target"] = grouped["log_price"].shift(-horizon) - features["log_price"]
    features["target_date"] = grouped["date"].shift(-horizon)
    features["recent_move"] = recent_move(features, horizon)
    return features


def add_level_target(features: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Add `level`: log of the mean of the next `horizon` prices over today's price.

    This is the target of the fair-price model: the level the card is expected
    to trade at over the coming observations, which averages out the noise of
    any single future print.

    Args:
        features: output of build_features (sorted by card and date).
        horizon: number of future observations to average, >= 1.

    Returns:
        The same frame with `level` and `level_date` (the last date averaged).
    """
    if horizon < 1:
        raise ValueError(f"fair horizon must be >= 1, got {horizon}")
    grouped = features.groupby("card_id", sort=False)
    total = np.zeros(len(features))
    for k in range(1, horizon + 1):
        total = total + grouped["market_price"].shift(-k).to_numpy(dtype="float64")
    features["level"] = np.log(total / horizon) - features["log_price"].to_numpy()
    features["level_date"] = grouped["date"].shift(-horizon)
    return features
