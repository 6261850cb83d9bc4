"""Partitions of the catalogue: a partition's features are the whole table's features for its cards."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from workers.config import PipelineSettings
from workers.pipeline import run as steps
from workers.pipeline.features import FEATURE_COLUMNS, add_context, build_features, card_features, context_tables
from workers.pipeline.partitions import Partition, partition_count, partition_of, sample_order
from workers.pipeline.sources.demo import DemoSource, generate

DAY = date(2026, 1, 2)


def _messy(n_cards: int = 48, n_days: int = 160) -> pd.DataFrame:
    """Demo prices with the shapes of real feeds: cards listed late, gaps, a card alone in its set."""
    prices = generate(n_cards, n_days, seed=4)
    rng = np.random.default_rng(0)
    late = prices["card_id"].isin([f"demo-{i:05d}" for i in range(0, n_cards, 5)])
    prices = prices[~late | (prices["date"] >= prices["date"].min() + pd.Timedelta(days=60))]
    prices = prices[rng.random(len(prices)) > 0.1]  # missing days
    prices.loc[prices["card_id"] == "demo-00003", "set_name"] = None
    return prices.sample(frac=1.0, random_state=1).reset_index(drop=True)  # any order


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values(["card_id", "date"]).reset_index(drop=True)
    b = b.sort_values(["card_id", "date"]).reset_index(drop=True)
    assert a["card_id"].tolist() == b["card_id"].tolist()
    assert np.array_equal(a["date"].to_numpy("datetime64[D]"), b["date"].to_numpy("datetime64[D]"))
    for column in FEATURE_COLUMNS:
        np.testing.assert_array_equal(a[column].to_numpy(), b[column].to_numpy(), err_msg=column)


@pytest.mark.parametrize(("count", "rows_per_slice"), [(2, 4_000_000), (5, 997)])
def test_a_partitions_features_equal_the_whole_tables_for_its_rows(tmp_path, count: int, rows_per_slice: int) -> None:
    prices = _messy()
    whole = build_features(prices)
    files, frames = [], []
    for part in (Partition(i, count) for i in range(count)):
        frame = card_features(prices[part.holds(prices["card_id"])])
        assert len(frame) and set(frame["card_id"]) <= set(prices["card_id"])
        frames.append(frame)
        files.append(tmp_path / f"{part.name}.parquet")
        frame.to_parquet(files[-1])
    # The context (the feed's and sets' daily medians) over every partition's stored files,
    # in one pass or a slice of dates at a time.
    feed, sets = context_tables(*files, rows_per_slice=rows_per_slice)
    joined = pd.concat([add_context(f, feed, sets) for f in frames])
    assert len(joined) == len(whole) and joined["set_move_1"].notna().any()
    _same(joined, whole)


def test_no_feature_reads_the_future() -> None:
    prices = _messy()
    cut = prices["date"].min() + pd.Timedelta(days=100)
    whole = build_features(prices)
    known = build_features(prices[prices["date"] <= cut])
    _same(whole[whole["date"] <= cut], known)


def test_the_pipeline_in_partitions_gives_the_single_tables_features(tmp_path) -> None:
    split = PipelineSettings(data_dir=tmp_path / "split", demo_cards=40, demo_days=120, partitions=3)
    single = PipelineSettings(data_dir=tmp_path / "single", demo_cards=40, demo_days=120)
    for settings in (split, single):
        parts = steps.plan(settings, "demo")
        for part in parts:
            steps.collect(settings, "demo", DAY, part=part)
            steps.validate(settings, "demo", DAY, part=part)
            steps.features(settings, "demo", part)
        assert steps.context(settings, "demo", len(parts))["cards"] == 40
    assert len(steps.plan(split, "demo")) == 3 and len(steps.plan(single, "demo")) == 1
    _same(steps.load_features(split, "demo"), steps.load_features(single, "demo"))
    _same(steps.load_features(split, "demo"), build_features(DemoSource(40, 120).fetch(DAY)))
    # One partition's rows alone, and a chosen set of cards, are those rows of the whole.
    whole = steps.load_features(single, "demo")
    one = steps.load_features(split, "demo", part=Partition(1, 3))
    _same(one, whole[Partition(1, 3).holds(whole["card_id"])])
    cards = sample_order(whole["card_id"].unique())[:7]
    _same(steps.load_features(split, "demo", cards=cards), whole[whole["card_id"].isin(cards)])


def test_a_day_collected_again_with_another_count_replaces_its_files(tmp_path) -> None:
    settings = PipelineSettings(data_dir=tmp_path, demo_cards=30, demo_days=60, partitions=3)
    for part in steps.plan(settings, "demo"):
        steps.collect(settings, "demo", DAY, part=part)
        steps.validate(settings, "demo", DAY, part=part)
    settings = settings.model_copy(update={"partitions": 2})
    for part in steps.plan(settings, "demo"):
        steps.collect(settings, "demo", DAY, part=part)
        steps.validate(settings, "demo", DAY, part=part)
    raw = sorted(p.name for p in tmp_path.rglob("raw/**/*.parquet"))
    assert raw == ["prices-part-0000-of-0002.parquet", "prices-part-0001-of-0002.parquet"]
    assert [p.count for p in steps.landed(settings, "raw", "demo")] == [2, 2]


def test_partitions_are_stable_and_scale_with_the_catalogue() -> None:
    ids = [f"card-{i}" for i in range(5000)]
    parts = partition_of(ids, 8)
    assert np.array_equal(parts, partition_of(list(reversed(ids)), 8)[::-1])  # not order-dependent
    assert set(parts) == set(range(8)) and np.bincount(parts).min() > 500  # spread evenly
    assert partition_count(200, 2000) == 1 and partition_count(50_000, 2000) == 25
    assert partition_count(10**7, 1) == 256 and partition_count(10, 2000, fixed=3) == 3
    with pytest.raises(ValueError):
        Partition(3, 3)


def test_the_demo_source_generates_a_partition_alone() -> None:
    whole = DemoSource(50, 40).fetch(DAY)
    part = Partition(2, 3)
    alone = DemoSource(50, 40).fetch(DAY, part)
    pd.testing.assert_frame_equal(alone, whole[part.holds(whole["card_id"])].reset_index(drop=True))
