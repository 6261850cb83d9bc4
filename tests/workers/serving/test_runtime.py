"""The shared worker handler against a real Redis server: acks, replies, dead letters, retries."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis.asyncio as aioredis

from contracts import keys
from contracts.messages import PriceQuotes, Reply
from tests.factories import make_quote
from workers.config import WorkerSettings
from workers.serving.decision_worker import DecisionWorker
from workers.serving.shutdown import consumers as consumers_of
from workers.serving.shutdown import drain_own_pending

CONSUMER = "decision-test"


@pytest.fixture
async def worker(redis_server):
    url = redis_server.url.rsplit("/", 1)[0] + "/3"
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    await keys.ensure_groups(client)
    w = DecisionWorker(WorkerSettings(redis_url=url, max_deliveries=3), CONSUMER)
    yield w
    await client.flushdb()
    await client.aclose()
    await w.redis.aclose()


def _quotes(reply_to: str, deadline: float | None = None, request_id: str = "req-1") -> str:
    quote = make_quote(market=80, fair=100, model_version="5")
    msg = PriceQuotes(request_id=request_id, reply_to=reply_to, deadline=deadline or time.time() + 30, results=[quote])
    return msg.model_dump_json()


async def _read(w: DecisionWorker, consumer: str = CONSUMER):
    resp = await w.redis.xreadgroup(w.group, consumer, {w.stream: ">"}, count=100)
    return resp[0][1] if resp else []


async def _dead_letters(w: DecisionWorker) -> list[dict]:
    return [json.loads(f[b"payload"]) for _, f in await w.redis.xrange(keys.DEAD_LETTER_STREAM)]


async def test_valid_quotes_reply_append_signals_and_ack(worker: DecisionWorker) -> None:
    pubsub = worker.redis.pubsub()
    await pubsub.subscribe("reply:test")
    await worker.redis.xadd(worker.stream, {keys.PAYLOAD_FIELD: _quotes("reply:test")})
    await worker.handle(await _read(worker), claimed=False)

    msg = None
    for _ in range(20):
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if msg:
            break
    assert msg is not None, "no reply published"
    reply = Reply.model_validate_json(msg["data"])
    assert reply.request_id == "req-1" and reply.results[0].signal == "BUY"  # type: ignore[union-attr]
    signals = await worker.redis.xrange(keys.SIGNALS_STREAM)
    assert len(signals) == 1 and json.loads(signals[0][1][b"payload"])["signal"] == "BUY"
    assert (await worker.redis.xpending(worker.stream, worker.group))["pending"] == 0
    assert worker.processed == 1
    await pubsub.aclose()


async def test_garbage_goes_to_the_dead_letter_stream_with_a_reason(worker: DecisionWorker) -> None:
    garbage = [
        {keys.PAYLOAD_FIELD: b"{not json"},
        {keys.PAYLOAD_FIELD: json.dumps({"schema_version": 9, "request_id": "r"})},
        {"something": "else"},
        {keys.PAYLOAD_FIELD: json.dumps({"schema_version": 1, "request_id": 5, "reply_to": "x"})},
        {keys.PAYLOAD_FIELD: b"x" * 200_000},
    ]
    for fields in garbage:
        await worker.redis.xadd(worker.stream, fields)
    await worker.handle(await _read(worker), claimed=False)

    letters = await _dead_letters(worker)
    assert len(letters) == len(garbage)
    reasons = [d["reason"] for d in letters]
    assert "json" in reasons[0].lower()
    assert "schema_version" in reasons[1]
    assert "missing field 'payload'" in reasons[2]
    assert "request_id" in reasons[3]
    assert all(d["source_stream"] == keys.QUOTES_STREAM and d["entry_id"] for d in letters)
    assert len(letters[4]["payload"]) <= 64 * 1024
    assert (await worker.redis.xpending(worker.stream, worker.group))["pending"] == 0
    assert worker.dead_lettered == len(garbage)


async def test_expired_requests_are_acked_without_an_answer(worker: DecisionWorker) -> None:
    await worker.redis.xadd(worker.stream, {keys.PAYLOAD_FIELD: _quotes("reply:x", deadline=time.time() - 1)})
    await worker.handle(await _read(worker), claimed=False)
    assert worker.expired == 1 and worker.processed == 0
    assert await worker.redis.xlen(keys.SIGNALS_STREAM) == 0
    assert (await worker.redis.xpending(worker.stream, worker.group))["pending"] == 0


async def test_a_failing_entry_stays_pending_then_dead_letters_after_max_deliveries(worker: DecisionWorker) -> None:
    class Failing(DecisionWorker):
        def process(self, messages, pipe):
            raise RuntimeError("model exploded")

    failing = Failing(worker.settings, CONSUMER)
    await worker.redis.xadd(worker.stream, {keys.PAYLOAD_FIELD: _quotes("reply:x")})
    await failing.handle(await _read(failing), claimed=False)
    pending = await worker.redis.xpending(worker.stream, worker.group)
    assert pending["pending"] == 1, "a failed entry must not be acked"
    assert failing.last_error == "RuntimeError: model exploded"

    # Two more failed deliveries through the claimer...
    for _ in range(2):
        _, claimed, *_ = await worker.redis.xautoclaim(worker.stream, worker.group, "other", 0, "0-0")
        await failing.handle(claimed, claimed=True)
    assert (await worker.redis.xpending(worker.stream, worker.group))["pending"] == 1
    # ...and the fourth delivery dead-letters it instead of trying again.
    _, claimed, *_ = await worker.redis.xautoclaim(worker.stream, worker.group, "other", 0, "0-0")
    await failing.handle(claimed, claimed=True)
    letters = await _dead_letters(worker)
    assert len(letters) == 1 and letters[0]["reason"] == "failed 3 deliveries" and letters[0]["deliveries"] == 4
    assert (await worker.redis.xpending(worker.stream, worker.group))["pending"] == 0
    await failing.redis.aclose()


async def test_heartbeat_lands_in_the_replicas_hash(worker: DecisionWorker) -> None:
    await worker.beat()
    raw = await worker.redis.hget(keys.REPLICAS_HASH, CONSUMER)
    beat = json.loads(raw)
    assert beat["role"] == "decision" and beat["replica_id"] == CONSUMER
    assert abs(beat["last_seen"] - time.time()) < 5
    await asyncio.sleep(0)


async def test_publishers_cap_the_signals_stream_near_its_maxlen(worker: DecisionWorker, redis_server) -> None:
    capped = DecisionWorker(worker.settings.model_copy(update={"signals_maxlen": 100}), CONSUMER)
    for i in range(6):
        for j in range(100):
            await capped.redis.xadd(capped.stream, {keys.PAYLOAD_FIELD: _quotes("reply:x", request_id=f"{i}-{j}")})
        await capped.handle(await _read(capped), claimed=False)
    assert capped.processed == 600
    # Approximate trimming drops whole internal nodes: the length stays near the cap, far below 600.
    assert 100 <= await capped.redis.xlen(keys.SIGNALS_STREAM) < 250
    await capped.redis.aclose()


async def test_entries_delivered_while_stopping_are_answered_before_the_consumer_goes(worker: DecisionWorker) -> None:
    """A read the server served after the subscribers stopped leaves entries pending for this
    replica: shutdown answers them and acks them, then deletes its consumer."""
    for n in range(3):
        await worker.redis.xadd(worker.stream, {keys.PAYLOAD_FIELD: _quotes("reply:none", request_id=f"r{n}")})
    delivered = await _read(worker)  # delivered to this consumer, never handled
    assert len(delivered) == 3
    mine = {CONSUMER, f"{CONSUMER}:claimer"}
    existing = mine & await consumers_of(worker.redis, worker.stream, worker.group)
    drained = await drain_own_pending(worker.redis, worker.stream, worker.group, existing, 64, worker.handle)
    assert drained == 3
    assert (await worker.redis.xpending(worker.stream, worker.group))["pending"] == 0
    assert worker.processed == 3 and await worker.redis.xlen(keys.SIGNALS_STREAM) == 3
    consumers = {c["name"].decode() for c in await worker.redis.xinfo_consumers(worker.stream, worker.group)}
    assert f"{CONSUMER}:claimer" not in consumers, "draining does not create a consumer"

    await worker._cleanup()  # closes the client: check with a fresh one
    check = aioredis.Redis.from_url(worker.settings.redis_url)
    assert CONSUMER not in {c["name"].decode() for c in await check.xinfo_consumers(worker.stream, worker.group)}
    await check.aclose()
    worker.redis = aioredis.Redis.from_url(worker.settings.redis_url)  # for the fixture's teardown


async def test_the_metrics_count_batches_outcomes_and_dead_letters_by_kind(worker: DecisionWorker) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    await worker.redis.xadd(worker.stream, {keys.PAYLOAD_FIELD: _quotes("reply:test")})
    await worker.redis.xadd(worker.stream, {keys.PAYLOAD_FIELD: _quotes("reply:test", deadline=time.time() - 1)})
    await worker.redis.xadd(worker.stream, {keys.PAYLOAD_FIELD: "not json"})
    await worker.handle(await _read(worker), claimed=False)
    status, body = worker.probe("/metrics")
    assert status == 200 and isinstance(body, bytes)
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(body.decode())
        for s in f.samples
    }
    stream = keys.QUOTES_STREAM
    assert got[("pokewatch_worker_messages_total", (("outcome", "processed"), ("stream", stream)))] == 1
    assert got[("pokewatch_worker_messages_total", (("outcome", "expired"), ("stream", stream)))] == 1
    assert got[("pokewatch_worker_dead_letters_total", (("reason", "invalid"), ("stream", stream)))] == 1
    assert got[("pokewatch_worker_batch_messages_count", (("stream", stream),))] == 1
    assert got[("pokewatch_worker_batch_messages_sum", (("stream", stream),))] == 3
    assert got[("pokewatch_worker_info", (("replica", CONSUMER), ("role", "decision"), ("version", "")))] == 1


async def test_a_rebuild_on_purpose_keeps_the_heartbeat_and_leaving_removes_it(worker: DecisionWorker) -> None:
    await worker.beat()
    worker.restart_reason = "challenger loaded"
    await worker._cleanup()
    assert await worker.redis.hget(keys.REPLICAS_HASH, CONSUMER) is not None, "still listed while it rebuilds"
    worker.restart_reason = None
    await worker._cleanup()
    assert await worker.redis.hget(keys.REPLICAS_HASH, CONSUMER) is None
