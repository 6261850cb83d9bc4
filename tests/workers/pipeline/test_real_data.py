"""Model behaviour on the real histories in ../shared/data (skipped without them)."""

from __future__ import annotations

import pandas as pd
import pytest

from workers.pipeline.evaluate import EvalConfig, walk_forward
from workers.pipeline.features import build_features
from workers.pipeline.schema import validate
from workers.pipeline.sources.file import FileSource

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def _features(path) -> pd.DataFrame:
    checked = validate(FileSource(path).fetch(pd.Timestamp.today().date()))
    assert checked.quarantined.empty
    return build_features(checked.clean)


@pytest.fixture(scope="module")
def nayel(request):
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "nayel_weekly.parquet"
    if not path.exists():
        pytest.skip(f"real price histories not found at {SHARED_DATA}")
    return walk_forward(_features(path), EvalConfig(horizon=1, n_boot=300))


def test_weekly_forecast_beats_naive_with_confidence(nayel):
    point, low, _ = nayel.improvement
    assert point >= 0.015, f"model vs naive MAPE improvement {point:.2%} < 1.5%"
    assert low > 0
    assert nayel.metrics["rolling_mean_3"]["mape"] > nayel.metrics["naive"]["mape"] * 1.2


def test_weekly_signals_meet_the_signal_goal_and_beat_the_original_rule(nayel):
    model, old = nayel.metrics["model"], nayel.metrics["rolling_mean_3"]
    assert model["signal_rate"] >= 0.005
    assert model["hit_rate"] >= 0.55 and model["hit_rate"] > old["hit_rate"]
    assert model["fwd_return_buy"] > model["fwd_return_sell"]


@pytest.mark.parametrize("horizon", [1, 7])
def test_daily_japanese_no_worse_than_naive(shared_data, horizon):
    result = walk_forward(
        _features(shared_data / "pokeca_souba_daily.parquet"), EvalConfig(horizon=horizon, n_boot=200)
    )
    assert result.metrics["model"]["mape"] <= result.metrics["naive"]["mape"] * 1.005
    if horizon == 1:
        # This feed holds about two months: each fold validates its rule on a
        # handful of days, and the signals that fire are right more often
        # than the original rule's (38%) but short of the 55% goal (README).
        model, old = result.metrics["model"], result.metrics["rolling_mean_3"]
        assert model["signal_rate"] >= 0.005
        assert model["hit_rate"] > old["hit_rate"] + 0.1
