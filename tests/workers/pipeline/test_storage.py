"""Raw storage: one partition per day and source, re-runs replace, nothing duplicated."""

from __future__ import annotations

from datetime import date

import pandas as pd

from workers.pipeline.partitions import Partition
from workers.pipeline.storage import DataStore

ONE = Partition(0, 1)


def _prices(price: float, days: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "card_id": ["a"] * days,
            "date": pd.date_range("2026-01-01", periods=days),
            "market_price": [price] * days,
        }
    )


def test_rerun_of_a_day_replaces_it(tmp_path):
    store = DataStore(tmp_path)
    day = date(2026, 2, 1)
    store.write_landing(_prices(1.0), day, "demo", ONE)
    from workers.pipeline.storage import atomic_write_parquet

    atomic_write_parquet(_prices(1.0), store.raw_path(day, "demo", ONE))
    atomic_write_parquet(_prices(2.0), store.raw_path(day, "demo", ONE))
    out = store.read_raw("demo")
    assert len(out) == 3
    assert out["market_price"].tolist() == [2.0, 2.0, 2.0]
    assert len(list(tmp_path.glob("raw/**/*.parquet"))) == 1
    assert not list(tmp_path.glob("raw/**/.*tmp"))


def test_latest_collection_wins_across_days(tmp_path):
    from workers.pipeline.storage import atomic_write_parquet

    store = DataStore(tmp_path)
    atomic_write_parquet(_prices(1.0, days=3), store.raw_path(date(2026, 2, 1), "demo", ONE))
    atomic_write_parquet(_prices(5.0, days=4), store.raw_path(date(2026, 2, 2), "demo", ONE))
    atomic_write_parquet(_prices(9.0, days=4), store.raw_path(date(2026, 2, 2), "other", ONE))
    out = store.read_raw("demo")
    assert len(out) == 4
    assert set(out["market_price"]) == {5.0}


def test_clean_rerun_removes_old_quarantine(tmp_path):
    store = DataStore(tmp_path)
    day = date(2026, 2, 1)
    bad = pd.DataFrame({"card_id": ["x"], "reason": ["bad date"]})
    assert store.write_quarantine(bad, day, "file", ONE) is not None
    assert store.quarantine_path(day, "file", ONE).exists()
    assert store.write_quarantine(bad.iloc[0:0], day, "file", ONE) is None
    assert not store.quarantine_path(day, "file", ONE).exists()


def test_landing_keeps_mixed_type_columns_as_text(tmp_path):
    store = DataStore(tmp_path)
    mixed = pd.DataFrame({"card_id": ["a", "b"], "date": ["2026-01-01", "x"], "market_price": [1.5, "n/a"]})
    path = store.write_landing(mixed, date(2026, 2, 1), "file", ONE)
    back = pd.read_parquet(path)
    assert back["market_price"].tolist() == ["1.5", "n/a"]
