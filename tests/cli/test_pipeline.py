"""The documented pipeline, evaluation and model-version commands, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from contracts import keys
from workers.pipeline.sources.demo import generate

pytestmark = pytest.mark.slow


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _status(pokewatch) -> dict[str, list[str]]:
    """`pokewatch model status` as {version: its cells}."""
    out = _ok(pokewatch("model", "status"))
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.count("│") > 4]
    return {cells[0]: cells for cells in rows if cells[0].isdigit()}


def test_every_pipeline_step_then_a_whole_run_then_model_versions(pokewatch, cli_env, tmp_path: Path) -> None:
    # pokewatch pipeline collect|validate|features|train|evaluate|price|register --source demo [--date YYYY-MM-DD]
    for step in ("collect", "validate", "train", "evaluate", "price", "register"):
        if step == "train":
            _ok(pokewatch("pipeline", "features", "--source", "demo"))
        out = json.loads(_ok(pokewatch("pipeline", step, "--source", "demo", "--date", "2026-01-02")))
        assert out, step
    assert out["version"] == "1" and out["promoted"] is True

    # pokewatch pipeline run --source demo
    run = pokewatch("pipeline", "run", "--source", "demo")
    assert run.returncode == 0 and "version 2" in run.stderr, run.stderr[-3000:]

    # pokewatch pipeline run --source file --input my_prices.csv [--cards cards.yaml]
    prices = generate(n_cards=20, n_days=150, seed=3)
    prices.to_csv(tmp_path / "my_prices.csv", index=False)
    tracked = sorted(prices["card_id"].unique())[:12]
    (tmp_path / "cards.yaml").write_text("cards:\n" + "".join(f"  - card_id: {c}\n" for c in tracked))
    run = pokewatch("pipeline", "run", "--source", "file", "--input", "my_prices.csv", "--cards", "cards.yaml")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "quarantined" in run.stderr and "version 3" in run.stderr

    # pokewatch pipeline run --source pokemonpricetracker   (needs POKEMONPRICETRACKER_API_KEY)
    no_key = pokewatch("pipeline", "run", "--source", "pokemonpricetracker")
    assert no_key.returncode == 2 and "POKEMONPRICETRACKER_API_KEY" in no_key.stderr

    # pokewatch evaluate --input PATH [--horizon N] [--fair-horizon N] --json
    metrics = json.loads(
        _ok(pokewatch("evaluate", "--input", "my_prices.csv", "--horizon", "1", "--fair-horizon", "8", "--json"))
    )
    assert {"model", "naive", "rolling_mean_3"} <= set(metrics)

    # pokewatch model status / publish N / rollback
    rows = _status(pokewatch)
    assert set(rows) == {"1", "2", "3"}, rows
    # Which run the gate promoted depends on the data; exactly one version is the champion.
    (champion,) = [v for v, cells in rows.items() if cells[1] == "champion"]
    other = next(v for v in ("3", "2", "1") if v != champion)
    published = json.loads(_ok(pokewatch("model", "publish", other)))
    assert published["version"] == other and published["rollback"] is False
    rolled = json.loads(_ok(pokewatch("model", "rollback")))
    assert rolled["version"] == champion and rolled["rollback"] is True
    r = redis.Redis.from_url(cli_env["REDIS_URL"])
    events = [json.loads(f[b"payload"]) for _, f in r.xrange(keys.MODEL_EVENTS_STREAM)]
    published = [e for e in events if e["kind"] == "published" and e["alias"] == "champion"]
    assert [(e["version"], e["rollback"]) for e in published] == [(other, False), (champion, True)]
    assert [v for v, cells in _status(pokewatch).items() if cells[1] == "champion"] == [champion]


def test_evaluate_all_prints_the_cross_feed_table_as_json(pokewatch, cli_env, tmp_path: Path) -> None:
    # pokewatch evaluate --all ../shared/data [--json]
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    generate(n_cards=20, n_days=120, seed=8).to_parquet(feeds / "daily.parquet")
    cli_env["POKEWATCH_EVAL_FOLDS"] = "2"
    out = json.loads(_ok(pokewatch("evaluate", "--all", str(feeds), "--json")))
    feed = out["daily.parquet"]
    assert feed["cadence"] == "daily" and list(feed["horizons"]) == ["1", "7", "28"]
    for row in feed["horizons"].values():
        assert "error" in row or {"improvement_pct", "coverage", "signal_rate", "hit_rate", "spread"} <= set(row)
    table = pokewatch("evaluate", "--all", str(feeds))
    assert table.returncode == 0 and "daily.parquet" in table.stdout
    both = pokewatch("evaluate", "--all", str(feeds), "--input", "x.csv")
    assert both.returncode == 2 and "either --input" in both.stderr
