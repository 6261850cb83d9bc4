"""The whole pipeline on real MLflow (sqlite): champion, gate, idempotent re-runs."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from workers import registry
from workers.pipeline import register as gate
from workers.pipeline import run
from workers.pipeline.storage import DataStore

pytestmark = pytest.mark.slow
DAY = date(2026, 11, 1)


def test_demo_run_promotes_then_second_run_does_not(settings):
    first = run.run_all(settings, "demo", DAY)
    assert first["steps"]["register"]["promoted"] is True
    assert registry.champion_version(settings) == first["steps"]["register"]["version"]
    # The champion loads back from the registry and predicts.
    model = registry.load_model(settings, first["steps"]["register"]["version"])
    test = pd.read_parquet(DataStore(settings.data_dir).candidate_dir(DAY, "demo") / "test.parquet")
    assert len(model.predict(test.head(10)).ret) == 10

    second = run.run_all(settings, "demo", DAY)
    reg = second["steps"]["register"]
    assert reg["promoted"] is False and reg["version"] != first["steps"]["register"]["version"]
    assert registry.champion_version(settings) == first["steps"]["register"]["version"]

    import mlflow

    client = mlflow.MlflowClient()
    tags = client.get_model_version(settings.model_name, reg["version"]).tags
    assert tags["gate.promoted"] == "False" and "does not beat champion" in tags["gate.reason"]
    # Same day re-run replaced the day's partition instead of adding rows.
    store = DataStore(settings.data_dir)
    assert len(store.read_raw("demo")) == settings.demo_cards * settings.demo_days
    summary = json.loads(store.summary_path(DAY, "demo").read_text())
    assert summary["steps"]["register"]["version"] == reg["version"]
    artifacts = client.list_artifacts(tags["run_id"], "plots")
    assert {a.path for a in artifacts} == {
        "plots/predicted_vs_actual.png",
        "plots/error_distribution.png",
        "plots/signal_mix.png",
    }


def test_file_with_bad_rows_completes_with_quarantine_report(settings, tmp_path):
    from workers.pipeline.sources.demo import generate

    good = generate(40, 200, seed=11)
    good["date"] = good["date"].dt.strftime("%Y-%m-%d")
    good = good.astype({"market_price": "object"})
    bad = pd.DataFrame(
        {
            "card_id": ["demo-00001", "demo-00002", "demo-00003", "", "demo-00001", "demo-00004"],
            "date": ["2025-09-01", "2025-09-02", "yesterday", "2025-09-03", good["date"].iloc[0], "2025-09-04"],
            "market_price": [-5, "NaN", 3.0, 4.0, 99.0, "twelve"],
        }
    )
    path = tmp_path / "prices.csv"
    pd.concat([good, bad], ignore_index=True).to_csv(path, index=False)
    summary = run.run_all(settings, "file", DAY, input_path=path)
    v = summary["steps"]["validate"]
    assert v["quarantined"] == 6
    assert v["quarantine_reasons"] == {
        "non-positive price": 1,
        "non-numeric price": 2,
        "bad date": 1,
        "missing card_id": 1,
        "duplicate card_id and date (kept the last)": 1,
    }
    rejected = pd.read_parquet(v["quarantine"])
    assert set(rejected["reason"]) == set(v["quarantine_reasons"])
    assert summary["steps"]["register"]["version"]


def test_train_beside_evaluate_gives_the_model_train_alone_gives(settings, monkeypatch):
    from workers.pipeline import evaluate

    monkeypatch.setattr(evaluate.os, "cpu_count", lambda: 2)
    together = run.run_all(settings, "demo", DAY)
    assert together["steps"]["train"]["beside_evaluate"] is True
    store = DataStore(settings.data_dir)
    test = pd.read_parquet(store.candidate_dir(DAY, "demo") / "test.parquet")
    beside = gate.load_candidate(store.candidate_dir(DAY, "demo") / "model.pkl").predict(test)

    alone = run.train(settings, "demo", DAY)  # the step on its own, as Airflow runs it
    assert "beside_evaluate" not in alone
    again = gate.load_candidate(store.candidate_dir(DAY, "demo") / "model.pkl").predict(test)
    for field in ("ret", "low", "high", "fair"):
        assert (getattr(beside, field) == getattr(again, field)).all(), field


def test_a_later_run_scores_the_champion_on_the_prices_that_arrived(settings, tmp_path):
    """Run 1 on 200 days makes a champion; run 2 on the same cards with 10 more days scores the
    champion's served forecasts against those days and logs them to MLflow as a point per run."""
    from datetime import timedelta

    import mlflow

    from workers.pipeline.sources.demo import generate

    prices = generate(n_cards=40, n_days=210, seed=9)
    dates = sorted(prices["date"].unique())
    first, later = tmp_path / "first.parquet", tmp_path / "later.parquet"
    prices[prices["date"] <= dates[199]].to_parquet(first)
    prices.to_parquet(later)
    one = run.run_all(settings, "file", DAY, input_path=first)
    assert one["steps"]["register"]["promoted"] and one["steps"]["register"]["champion_realized"] is None
    two = run.run_all(settings, "file", DAY + timedelta(days=10), input_path=later)
    live = two["steps"]["register"]["champion_realized"]
    assert live["champion_version"] == one["steps"]["register"]["version"]
    assert live["n"] == 40, live  # one forecast per card, each with its outcome h=1 observation later
    assert 0 < live["mape"] < 50 and 0 <= live["coverage"] <= 1 and isinstance(live["decay"], bool)
    run_id = mlflow.MlflowClient().get_model_version(settings.model_name, two["steps"]["register"]["version"]).run_id
    history = mlflow.MlflowClient().get_metric_history(run_id, "champion_realized.mape")
    assert [round(m.value, 6) for m in history] == [round(live["mape"], 6)]
    assert history[0].step == (DAY + timedelta(days=10) - date(1970, 1, 1)).days
