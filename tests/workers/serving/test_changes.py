"""Signal changes against a real Redis server: recorded once, only when a card's latest signal changes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest
import redis.asyncio as aioredis

from contracts import keys
from contracts.messages import PriceQuotes, PriceUpdated, SignalChanged
from tests.factories import make_quote
from workers.config import WorkerSettings
from workers.serving.decision_worker import DecisionWorker


@pytest.fixture
async def worker(redis_server):
    url = redis_server.url.rsplit("/", 1)[0] + "/3"
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    await keys.ensure_groups(client)
    w = DecisionWorker(WorkerSettings(redis_url=url), "decision-changes-test")
    yield w
    await client.flushdb()
    await client.aclose()
    await w.redis.aclose()


async def _decide(w: DecisionWorker, *quotes: tuple[str, float, float, str, str]) -> None:
    """Send quotes (card, market, fair, date, version) through the worker's real handler."""
    results = []
    for card, market, fair, day, version in quotes:
        q = make_quote(card, market=market, fair=fair, model_version=version)
        results.append(q.model_copy(update={"date": dt.date.fromisoformat(day)}))
    msg = PriceQuotes(request_id="r", reply_to="reply:nobody", deadline=time.time() + 30, results=results)
    await w.redis.xadd(w.stream, {keys.PAYLOAD_FIELD: msg.model_dump_json()})
    resp = await w.redis.xreadgroup(w.group, w.replica_id, {w.stream: ">"}, count=100)
    await w.handle(resp[0][1], claimed=False)


async def _changes(w: DecisionWorker) -> list[SignalChanged]:
    entries = await w.redis.xrange(keys.SIGNAL_CHANGES_STREAM)
    return [SignalChanged.model_validate_json(f[keys.PAYLOAD_FIELD.encode()]) for _, f in entries]


async def test_a_change_is_recorded_once_with_the_previous_signal(worker: DecisionWorker) -> None:
    # fair 100: market 80 is a BUY, 100 a HOLD, 120 a SELL (fixed rule, 10% / 15%).
    await _decide(worker, ("a", 100, 100, "2024-06-01", "1"), ("b", 80, 100, "2024-06-01", "1"))
    first = await _changes(worker)
    assert [(c.card_id, c.previous_signal, c.signal) for c in first] == [("b", None, "BUY")], (
        "a first HOLD is no change"
    )

    await _decide(worker, ("a", 100, 100, "2024-06-01", "2"), ("b", 80, 100, "2024-06-01", "2"))
    assert len(await _changes(worker)) == 1, "the same signals from another version change nothing"

    await _decide(worker, ("a", 120, 100, "2024-06-02", "2"), ("b", 100, 100, "2024-06-02", "2"))
    changes = await _changes(worker)
    assert [(c.card_id, c.previous_signal, c.signal) for c in changes[1:]] == [
        ("a", "HOLD", "SELL"),
        ("b", "BUY", "HOLD"),
    ]
    sell = changes[1]
    assert sell.previous_date.isoformat() == "2024-06-01" and sell.previous_model_version == "2"
    assert sell.decision.market_price == 120 and sell.decision.model_version == "2" and sell.decision.reason
    last = json.loads(await worker.redis.hget(keys.LAST_SIGNAL_HASH, "a"))
    assert last == {"d": "2024-06-02", "s": "SELL", "v": "2", "m": "120.0", "x": "20.0"}


async def test_a_quote_for_a_past_date_changes_nothing(worker: DecisionWorker) -> None:
    await _decide(worker, ("a", 80, 100, "2024-06-05", "1"))
    await _decide(worker, ("a", 120, 100, "2024-06-01", "1"))  # someone asked for an old date
    changes = await _changes(worker)
    assert [(c.previous_signal, c.signal) for c in changes] == [(None, "BUY")]
    assert json.loads(await worker.redis.hget(keys.LAST_SIGNAL_HASH, "a"))["d"] == "2024-06-05"


async def test_concurrent_workers_record_each_change_once(worker: DecisionWorker) -> None:
    other = DecisionWorker(worker.settings, "decision-changes-other")
    try:
        await _decide(worker, *[(f"c{i}", 100, 100, "2024-06-01", "1") for i in range(50)])
        flipped = [(f"c{i}", 80, 100, "2024-06-02", "2") for i in range(50)]
        # Both workers decide the same cards' new signal at the same time (a request and a scan).
        await asyncio.gather(_decide(worker, *flipped), _decide(other, *flipped))
        changes = await _changes(worker)
        assert sorted(c.card_id for c in changes) == sorted(f"c{i}" for i in range(50))
        assert {(c.previous_signal, c.signal) for c in changes} == {("HOLD", "BUY")}
    finally:
        await other.redis.aclose()


async def test_hostile_card_ids_stay_inside_the_json(worker: DecisionWorker) -> None:
    card = 'x","signal":"BUY"}\\\n<script>'
    await _decide(worker, (card, 80, 100, "2024-06-01", "1"))
    (change,) = await _changes(worker)
    assert change.card_id == card and change.decision.card_id == card


async def _updates(w: DecisionWorker) -> list[PriceUpdated]:
    entries = await w.redis.xrange(keys.PRICE_UPDATES_STREAM)
    return [PriceUpdated.model_validate_json(f[keys.PAYLOAD_FIELD.encode()]) for _, f in entries]


async def test_a_price_update_is_written_once_per_new_price_with_the_previous_one(worker: DecisionWorker) -> None:
    await _decide(worker, ("a", 10.5, 10, "2024-06-01", "1"))
    await _decide(worker, ("a", 10.5, 10, "2024-06-01", "1"), ("a", 10.5, 10, "2024-06-01", "1"))
    first = await _updates(worker)
    assert [(u.card_id, u.previous_market_price, u.decision.market_price) for u in first] == [("a", None, 10.5)], (
        "the same price asked about again is no update"
    )
    await _decide(worker, ("a", 12.25, 10, "2024-06-02", "1"))
    await _decide(worker, ("a", 9.0, 10, "2024-05-30", "1"))  # an older date moves nothing
    await _decide(worker, ("a", 12.25, 11, "2024-06-02", "2"))  # a new version re-prices the same market
    updates = await _updates(worker)
    assert [(u.previous_market_price, u.decision.market_price, u.decision.model_version) for u in updates] == [
        (None, 10.5, "1"),
        (10.5, 12.25, "1"),
        (12.25, 12.25, "2"),
    ]
    assert updates[1].previous_deviation_pct == first[0].decision.deviation_pct == 5.0
    assert updates[1].previous_date == dt.date(2024, 6, 1)
