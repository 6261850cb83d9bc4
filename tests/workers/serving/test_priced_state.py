"""A replica serving the pipeline's memory-mapped state answers what it answered when it priced the state itself."""

from __future__ import annotations

import mmap
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from contracts.messages import PredictItem
from workers import priced
from workers.pipeline.evaluate import with_targets
from workers.pipeline.features import build_features
from workers.pipeline.models import GBMModel, NaiveModel
from workers.pipeline.partitions import Partition
from workers.pipeline.serving_state import build_serving_state
from workers.pipeline.sources.demo import generate
from workers.serving.state import ServingState


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return build_features(generate(n_cards=30, n_days=150, seed=5))


@pytest.fixture(scope="module")
def gbm(features: pd.DataFrame) -> GBMModel:
    model = GBMModel(horizon=1, fair_horizon=8, max_train_rows=50_000)
    model.fit(with_targets(features.copy(), 1, 8))
    return model


def _mapped(state: pd.DataFrame, model, tmp_path, count: int = 3) -> ServingState:
    """As the pipeline does it: price each partition alone, merge, and open the result."""
    parts = []
    for part in (Partition(i, count) for i in range(count)):
        rows = state[part.holds(state["card_id"])].reset_index(drop=True)
        parts.append(priced.write_part(priced.price(rows, model), tmp_path / f"priced-{part.name}.parquet"))
    priced.merge(parts, tmp_path / "priced")
    return ServingState.open("7", tmp_path / "priced")


def _mapped_file(array: np.ndarray) -> bool:
    """Whether the array's memory is a mapped file (not a copy)."""
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return isinstance(base, mmap.mmap)


@pytest.mark.parametrize("kind", ["gbm", "naive"])
def test_the_mapped_state_answers_exactly_what_the_built_state_did(features, gbm, tmp_path, kind: str) -> None:
    model = gbm if kind == "gbm" else NaiveModel()
    state = build_serving_state(features, serving_days=100)
    built = ServingState.build("7", state, model)
    mapped = _mapped(state, model, tmp_path)
    assert _mapped_file(mapped.market) and _mapped_file(mapped.fair) and not mapped.market.flags.writeable
    assert (mapped.up is None) == (built.up is None) and mapped.basis == built.basis
    assert set(mapped.cards) == set(built.cards) and len(mapped) == len(built)
    last = state["date"].max().date()
    dates = [None, last, last - timedelta(days=1), last - timedelta(days=37), last - timedelta(days=99)]
    dates += [last + timedelta(days=1), last - timedelta(days=150)]  # 404s: after the latest, before the first
    items = [PredictItem(card_id=c, date=d) for c in sorted(built.cards) for d in dates]
    items.append(PredictItem(card_id="no-such-card"))
    answers = [q.model_dump() for q in built.quote(items, "model-1")]
    assert answers == [q.model_dump() for q in mapped.quote(items, "model-1")]
    assert sum(1 for a in answers if a.get("status") == 404) == 2 * len(built.cards) + 1
    assert mapped.catalog() == built.catalog()


def test_a_merge_refuses_partitions_that_overlap(features, tmp_path) -> None:
    state = build_serving_state(features, serving_days=30)
    part = priced.write_part(priced.price(state, NaiveModel()), tmp_path / "a.parquet")
    with pytest.raises(ValueError, match="more than one partition"):
        priced.merge([part, part], tmp_path / "out")
