"""Fault: SIGTERM a model worker under load. It drains, acks and exits in time; nothing is lost or left pending."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import httpx
import pytest
import redis

from contracts import keys
from tests.e2e.conftest import make_stack
from tests.faults.load import in_background, outcome

pytestmark = pytest.mark.slow


def test_sigterm_under_load_drains_acks_and_exits(redis_server, champion_data_dir) -> None:
    stack = make_stack(redis_server, champion_data_dir, db=8)
    stack.start(timeout=180)
    try:
        r = redis.Redis.from_url(stack.broker_url)
        cards = [c["card_id"] for c in httpx.get(f"{stack.url}/cards", params={"page_size": 40}).json()["items"]]
        sent = 2000
        bodies = [{"card_id": cards[i % len(cards)]} for i in range(sent)]
        thread, box = in_background(f"{stack.url}/fair_price", bodies)
        time.sleep(1.0)  # mid-load
        victim = next(c for c in stack.children if c.name == "model-1")
        stopped_at = time.monotonic()
        os.kill(victim.process.pid, signal.SIGTERM)
        code = victim.process.wait(15)
        exit_s = time.monotonic() - stopped_at
        thread.join(120)
        outcomes = Counter(outcome(resp) for resp in box[0])
        print(f"\nsent {sent}; {dict(outcomes)}; model-1 exited {code} after {exit_s:.1f} s")
        assert code == 0 and exit_s <= 10
        assert outcomes["200"] == sent, dict(outcomes)
        consumers = {c["name"].decode(): c["pending"] for c in r.xinfo_consumers(keys.PREDICT_STREAM, keys.MODEL_GROUP)}
        assert consumers.get("model-1", 0) == 0, consumers
        assert "model-1" not in consumers, "a drained replica removes its consumer"
        assert r.hget(keys.REPLICAS_HASH, "model-1") is None, "and its heartbeat"
    finally:
        stack.stop()
