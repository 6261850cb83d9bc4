from __future__ import annotations

import json

from typer.testing import CliRunner

from workers.cli.main import app
from workers.pipeline.sources.demo import generate


def test_evaluate_json_has_the_documented_keys(tmp_path):
    path = tmp_path / "prices.parquet"
    generate(80, 150, seed=5).to_parquet(path)
    result = CliRunner().invoke(app, ["evaluate", "--input", str(path), "--horizon", "1", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    keys = {"mape", "mdape", "rmse_log", "signal_rate", "hit_rate", "fwd_return_buy", "fwd_return_sell"}
    for name in ("model", "naive", "rolling_mean_3"):
        assert keys <= set(out[name])
    low, high = out["model_vs_naive_mape_improvement_interval"]
    assert low <= out["model_vs_naive_mape_improvement"] <= high


def test_bad_input_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["evaluate", "--input", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "not found" in result.output


def test_unknown_source_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("POKEWATCH_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["pipeline", "collect", "--source", "ebay"])
    assert result.exit_code == 2
    assert "unknown source" in result.output
