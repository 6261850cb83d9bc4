"""The lifecycle rule and its scoring, alone: what promotes, what rolls back, what counts."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from contracts.messages import ItemError, Quote, ShadowQuotes
from workers.config import PipelineSettings
from workers.pipeline.promotion import decide
from workers.pipeline.realized import (
    Comparison,
    compare,
    independent_dates,
    read_ledger,
    score,
    shadow_rows,
)


def comparison(dates: int, improvement: float, low: float, high: float, regressed: bool = False) -> Comparison:
    c = Comparison("2", "1", dates=dates, n=dates * 50, improvement=improvement, low=low, high=high)
    c.slices = [{"slice": "set Beta", "regressed": regressed, "improvement": -5.0, "low": -9.0, "high": -1.0}]
    return c


def test_a_better_challenger_waits_for_n_dates_then_is_promoted() -> None:
    for dates in range(7):
        d = decide("1", "2", None, comparison(dates, 10, 5, 15), None, needed=7, max_dates=21)
        assert d.action == "hold" and f"{dates} of 7 dates" in d.reason, d
    d = decide("1", "2", None, comparison(7, 10, 5, 15), None, needed=7, max_dates=21)
    assert d.action == "promote" and d.version == "2" and d.numbers["low"] == 5
    assert d.rule_state == "7 of 7 dates, difference +10.0% [+5.0, +15.0]"


def test_no_promotion_within_noise_or_with_a_slice_worse_beyond_noise() -> None:
    within = decide("1", "2", None, comparison(9, 3, -1, 7), None, needed=7, max_dates=21)
    assert within.action == "hold" and "not beyond noise" in within.reason
    sliced = decide("1", "2", None, comparison(9, 10, 5, 15, regressed=True), None, needed=7, max_dates=21)
    assert sliced.action == "hold" and "set Beta" in sliced.reason


def test_a_worse_or_a_stale_challenger_is_retired_never_promoted() -> None:
    worse = decide("1", "2", None, comparison(7, -20, -30, -10), None, needed=7, max_dates=21)
    assert worse.action == "retire" and "worse than champion" in worse.reason
    stale = decide("1", "2", None, comparison(21, 2, -1, 5), None, needed=7, max_dates=21)
    assert stale.action == "retire" and "did not win in 21 dates" in stale.reason


def test_rollback_on_decay_or_a_failed_load_and_only_with_a_previous_champion() -> None:
    decayed = Comparison("3", "1", dates=7, n=300, improvement=-30, low=-40, high=-20)
    d = decide("3", None, "1", None, decayed, needed=7, max_dates=21)
    assert d.action == "rollback" and d.version == "1" and "worse than previous champion 1" in d.reason
    early = Comparison("3", "1", dates=6, n=300, improvement=-30, low=-40, high=-20)
    assert decide("3", None, "1", None, early, needed=7, max_dates=21).action == "none"
    noisy = Comparison("3", "1", dates=7, n=300, improvement=-3, low=-8, high=2)
    assert decide("3", None, "1", None, noisy, needed=7, max_dates=21).action == "none"
    failed = decide("3", "4", "1", comparison(9, 10, 5, 15), None, 7, 21, champion_failed="no such file")
    assert failed.action == "rollback" and "failed to load" in failed.reason
    assert decide("3", None, None, None, None, 7, 21, champion_failed="x").action == "none"
    assert decide(None, None, None, None, None, 7, 21).action == "none"


def test_independent_dates_are_a_horizon_apart() -> None:
    days = pd.Series(pd.date_range("2026-01-01", periods=10, freq="D"))
    assert len(independent_dates(days, 1)) == 10
    kept = independent_dates(days, 3)
    assert [d.day for d in kept] == [1, 4, 7, 10]


def scored_pair(new_error: float, old_error: float, cards: int = 40, dates: int = 8, seed: int = 0) -> pd.DataFrame:
    """Two versions' forecasts of the same cards and dates: realized move +2%; each version off by its error."""
    rng = np.random.default_rng(seed)
    rows = []
    for version, error in (("2", new_error), ("1", old_error)):
        for c in range(cards):
            for d in pd.date_range("2026-01-01", periods=dates, freq="D"):
                noise = rng.normal(0, 0.001)
                rows.append((version, f"c{c}", d, 0.02 + error + noise, 10.0 + c, "A" if c % 2 else "B"))
    frame = pd.DataFrame(rows, columns=["version", "card_id", "date", "ret", "market_price", "set_name"])
    frame["realized"] = 0.02
    frame["ape"] = np.abs(np.exp(frame["ret"] - frame["realized"]) - 1)
    return frame


def test_compare_gives_the_paired_improvement_with_a_card_resampled_interval() -> None:
    better = compare(scored_pair(0.002, 0.02), "2", "1", horizon=1)
    assert better.dates == 8 and better.n == 320
    assert better.low is not None and better.low > 80 and better.high is not None and better.high < 100
    assert {s["slice"] for s in better.slices} >= {"price band low", "price band high", "set A", "set B"}
    assert not better.regressed
    worse = compare(scored_pair(0.03, 0.02), "2", "1", horizon=1)
    assert worse.high is not None and worse.high < 0 and worse.regressed
    assert compare(scored_pair(0.002, 0.02), "2", "1", horizon=1, last=3).dates == 3
    assert compare(scored_pair(0.002, 0.02), "2", "9", horizon=1).improvement is None


def test_a_slice_worse_beyond_noise_is_found_even_when_the_whole_is_better() -> None:
    frame = scored_pair(0.002, 0.02, cards=60)
    in_a = (frame["version"] == "2") & (frame["set_name"] == "A")
    frame.loc[in_a, "ape"] = 0.05  # the new version is far off on set A's cards
    c = compare(frame, "2", "1", horizon=1)
    assert [s["slice"] for s in c.regressed] == ["set A"]


def test_the_ledger_counts_a_forecast_once_and_only_from_the_versions_first_pipeline_date(tmp_path) -> None:
    settings = PipelineSettings(data_dir=tmp_path)
    (tmp_path / "lifecycle").mkdir()
    day = pd.Timestamp("2026-01-10")
    row = {"card_id": "c1", "ret": 0.01, "low": -0.1, "high": 0.1, "way": 0.0}
    pipeline = pd.DataFrame([{**row, "version": "2", "date": day, "source": "pipeline"}])
    shadow = pd.DataFrame(
        [
            {**row, "version": "2", "date": day, "source": "shadow", "ret": 0.5},  # the same forecast twice
            {**row, "version": "2", "date": day - pd.Timedelta(days=3), "source": "shadow"},  # in training
            {**row, "version": "2", "date": day + pd.Timedelta(days=1), "source": "shadow"},  # after: honest
            {**row, "version": "7", "date": day, "source": "shadow"},  # never forecast by the pipeline
        ]
    )
    pipeline.to_parquet(tmp_path / "lifecycle" / "forecasts-2026-01-10.parquet")
    shadow.to_parquet(tmp_path / "lifecycle" / "shadow-1_0.parquet")
    ledger = read_ledger(settings, day - pd.Timedelta(days=30))
    assert sorted(zip(ledger["date"].dt.day, ledger["source"], strict=True)) == [(10, "pipeline"), (11, "shadow")]
    assert ledger.loc[ledger["source"] == "pipeline", "ret"].item() == pytest.approx(0.01)


def test_shadow_quotes_become_ledger_rows_with_their_signals_and_errors_are_skipped() -> None:
    quote = Quote(
        card_id="c1",
        date=date(2026, 1, 10),
        market_price=10.0,
        forecast_price=11.0,
        fair_price=12.0,
        fair_price_low=9.0,
        fair_price_high=13.0,
        typical_move=0.1,
        model_version="2",
        served_by="challenger-1",
    )
    error = ItemError(card_id="nope", status=404, error="unknown card")
    shadow = ShadowQuotes(
        request_id="r1", model_version="2", served_by="challenger-1", results=[error, quote], signals=[None, "BUY"]
    )
    rows = shadow_rows([(b"1-0", {b"payload": shadow.model_dump_json().encode()}), (b"2-0", {b"payload": b"junk"})])
    assert len(rows) == 1
    got = rows.iloc[0]
    assert got["version"] == "2" and got["way"] == 1.0 and got["source"] == "shadow"
    assert got["ret"] == pytest.approx(np.log(1.1)) and got["low"] == pytest.approx(np.log(0.9))


def test_score_marks_coverage_and_hits_against_the_prices_that_followed() -> None:
    ledger = pd.DataFrame(
        {
            "version": ["1", "1"],
            "card_id": ["c1", "c2"],
            "date": pd.to_datetime(["2026-01-01", "2026-01-01"]),
            "ret": [0.0, 0.0],
            "low": [-0.05, -0.01],
            "high": [0.05, 0.01],
            "way": [1.0, -1.0],
            "source": ["pipeline", "pipeline"],
        }
    )
    prices = pd.DataFrame(
        {
            "card_id": ["c1", "c1", "c2", "c2"],
            "date": pd.to_datetime(["2026-01-01", "2026-01-02"] * 2),
            "market_price": [10.0, 10.3, 10.0, 10.3],
        }
    )
    out = score(ledger, prices, horizon=1).set_index("card_id")
    assert out.loc["c1", "inside"] and not out.loc["c2", "inside"]
    assert out.loc["c1", "hit"] == 1.0 and out.loc["c2", "hit"] == 0.0
    assert out.loc["c1", "ape"] == pytest.approx(1 - 1 / 1.03, rel=1e-6)


def test_a_champion_counts_as_failing_to_load_only_when_no_live_replica_serves_it(redis_server, tmp_path) -> None:
    import time

    import redis

    from contracts import keys
    from contracts.messages import Heartbeat, ModelLoadFailed
    from workers import model_events
    from workers.pipeline.lifecycle import load_failure

    r = redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/13")
    r.flushdb()
    settings = PipelineSettings(data_dir=tmp_path)
    assert load_failure(r, settings, "5") is None  # nothing announced
    failed = ModelLoadFailed(model_name="m", version="5", replica_id="model-1", serving_version="4", error="disk full")
    model_events.publish_event(r, failed)

    def beat(version: str, seen: float) -> None:
        hb = Heartbeat(replica_id="model-2", role="model", model_version=version, host="h", pid=1,
                       started_at=seen, last_seen=seen)  # fmt: skip
        r.hset(keys.REPLICAS_HASH, "model-2", hb.model_dump_json())

    beat("5", time.time())
    assert load_failure(r, settings, "5") is None  # one replica failed, another serves it
    beat("4", time.time())
    reason = load_failure(r, settings, "5")
    assert reason is not None and "disk full" in reason and "no replica serves it" in reason
    assert load_failure(r, settings, "6") is None  # failures of another version do not count
