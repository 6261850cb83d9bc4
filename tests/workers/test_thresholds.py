"""POKEWATCH_BUY_THRESHOLD / POKEWATCH_SELL_THRESHOLD reach everything that applies the rule:
the fair-price candidate choice, the evaluation and the served signals."""

from __future__ import annotations

import json
import time
from datetime import date

import numpy as np
import pandas as pd
import pytest
import redis.asyncio as aioredis

from contracts import keys
from contracts.messages import PriceQuotes
from tests.factories import make_quote
from workers.config import PipelineSettings, WorkerSettings
from workers.pipeline import register as gate
from workers.pipeline import run as steps
from workers.pipeline.models import gbm
from workers.serving.decision_worker import DecisionWorker
from workers.signals import DEFAULT_RULE, SignalRule, decide

DAY = date(2026, 1, 2)
RULE = SignalRule(buy=0.2, sell=0.3)


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POKEWATCH_BUY_THRESHOLD", "0.2")
    monkeypatch.setenv("POKEWATCH_SELL_THRESHOLD", "0.3")


def test_the_pipeline_chooses_and_evaluates_with_the_configured_rule(configured, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = PipelineSettings(data_dir=tmp_path / "data", demo_cards=60, demo_days=240, max_train_rows=100_000)
    assert settings.rule == RULE

    # The candidate choice: every call the GBM makes to choose its fair level gets the configured rule.
    seen: list[SignalRule] = []
    real = gbm.choose_signals

    def recording(candidates, typical, realised, rule, *args):
        seen.append(rule)
        return real(candidates, typical, realised, rule, *args)

    monkeypatch.setattr(gbm, "choose_signals", recording)
    for step in ("collect", "validate"):
        getattr(steps, step)(settings, "demo", DAY)
    steps.features(settings, "demo")
    steps.train(settings, "demo", DAY)
    evaluation = steps.evaluate(settings, "demo", DAY)
    assert seen and set(seen) == {RULE}, seen
    out_dir = tmp_path / "data" / "candidates"
    trained = gate.load_candidate(next(out_dir.rglob("model.pkl")))
    assert trained.rule == RULE
    edges = trained.choice["validation_signals"]
    assert {e["fair"] for e in edges.values()} == {"gbm", "reversion", "forecast", "market"}
    assert {e["rule"] for e in edges.values()} == {"fixed", "volatility", "probability", "momentum", "reversion"}

    # The evaluation: its signal rates are the rule's on the test rows it wrote, not the defaults'.
    test = pd.read_parquet(next(out_dir.rglob("test.parquet")))
    metrics = json.loads(next(out_dir.rglob("evaluation.json")).read_text())
    market = np.ones(len(test))

    def rate(name: str, rule: SignalRule) -> float:
        signals = decide(market, np.exp(test[f"fair_{name}"].to_numpy()), rule)
        return float(np.mean(signals != "HOLD"))

    baseline = "rolling_mean_3"  # its fair level is fixed by the data and it signals by the fixed rule
    assert rate(baseline, DEFAULT_RULE) > rate(baseline, RULE), "the two rules must differ on these rows"
    assert metrics[baseline]["signal_rate"] == pytest.approx(rate(baseline, RULE))
    assert evaluation["signal_rate"] == pytest.approx(float(np.mean(test["way_model"] != 0)))


async def test_the_decision_worker_serves_the_configured_rule(configured, redis_server) -> None:
    url = redis_server.url.rsplit("/", 1)[0] + "/6"
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    await keys.ensure_groups(client)
    worker = DecisionWorker(WorkerSettings(redis_url=url), "decision-rule")
    assert worker.settings.rule == RULE
    # market / fair: -15% and +25% are signals by default, HOLD under 0.2 / 0.3; -25% and +35% are not.
    cases = {"a": (85, "HOLD"), "b": (125, "HOLD"), "c": (75, "BUY"), "d": (135, "SELL")}
    quotes = [make_quote(card, market, 100.0) for card, (market, _) in cases.items()]
    msg = PriceQuotes(request_id="r-rule", reply_to="reply:none", deadline=time.time() + 30, results=quotes)
    await client.xadd(keys.QUOTES_STREAM, {keys.PAYLOAD_FIELD: msg.model_dump_json()})
    entries = await client.xreadgroup(keys.DECISION_GROUP, "decision-rule", {keys.QUOTES_STREAM: ">"})
    await worker.handle(entries[0][1], claimed=False)
    served = [json.loads(f[b"payload"]) for _, f in await client.xrange(keys.SIGNALS_STREAM)]
    assert {s["card_id"]: s["signal"] for s in served} == {card: want for card, (_, want) in cases.items()}
    await client.flushdb()
    await client.aclose()
    await worker.redis.aclose()


async def test_the_trade_fee_and_the_versions_rule_reach_the_signals_stream(monkeypatch, redis_server) -> None:
    from contracts.messages import SignalBasis

    monkeypatch.setenv("POKEWATCH_TRADE_FEE", "0.05")
    url = redis_server.url.rsplit("/", 1)[0] + "/6"
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    await keys.ensure_groups(client)
    worker = DecisionWorker(WorkerSettings(redis_url=url), "decision-fee")
    assert worker.settings.trade_fee == 0.05
    # Typical move 1%: fair +4% and +8% are 4 and 8 typical moves, but only +8% clears the 5% fee.
    quotes = [
        make_quote(c, 100.0, fair).model_copy(update={"typical_move": 0.01}) for c, fair in (("a", 104), ("b", 108))
    ]
    basis = SignalBasis(rule="volatility", k=2.0, reason="validated on the test feed")
    msg = PriceQuotes(request_id="r-fee", reply_to="reply:none", deadline=time.time() + 30, basis=basis, results=quotes)
    await client.xadd(keys.QUOTES_STREAM, {keys.PAYLOAD_FIELD: msg.model_dump_json()})
    entries = await client.xreadgroup(keys.DECISION_GROUP, "decision-fee", {keys.QUOTES_STREAM: ">"})
    await worker.handle(entries[0][1], claimed=False)
    served = {s["card_id"]: s for s in (json.loads(f[b"payload"]) for _, f in await client.xrange(keys.SIGNALS_STREAM))}
    assert (served["a"]["signal"], served["b"]["signal"]) == ("HOLD", "BUY")
    assert served["a"]["rule"] == served["b"]["rule"] == "volatility"
    assert "does not clear the 5% trade fee" in served["a"]["reason"]
    assert "clears the 5% trade fee" in served["b"]["reason"] and served["b"]["expected_move_pct"] == pytest.approx(8.0)
    await client.flushdb()
    await client.aclose()
    await worker.redis.aclose()
