"""A model replica dies holding pending requests: the other replica's claimer answers them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections import Counter

import httpx
import pytest
import redis

from contracts import keys
from tests.e2e.conftest import make_stack

pytestmark = pytest.mark.slow


def _pending_of(r: redis.Redis, consumer: str) -> int:
    for c in r.xinfo_consumers(keys.PREDICT_STREAM, keys.MODEL_GROUP):
        if c["name"].decode() == consumer:
            return int(c["pending"])
    return 0


def test_sigkilled_replica_pending_requests_are_claimed_and_answered(redis_server, champion_data_dir) -> None:
    # Long blocking reads keep each replica parked in XREADGROUP, so a frozen
    # replica still receives entries from the server: they sit in its pending list.
    stack = make_stack(redis_server, champion_data_dir, db=2, POKEWATCH_POLL_MS="5000", POKEWATCH_CLAIM_IDLE_MS="2000")
    stack.start(timeout=180)
    try:
        r = redis.Redis.from_url(stack.broker_url)
        cards = [c["card_id"] for c in httpx.get(f"{stack.url}/cards", params={"page_size": 20}).json()["items"]]
        victim = next(c for c in stack.children if c.name == "model-1")
        os.kill(victim.process.pid, signal.SIGSTOP)

        results: list[httpx.Response] = []
        sent_at = time.time()

        def load() -> None:
            async def go() -> None:
                async with httpx.AsyncClient(base_url=stack.url, timeout=30) as ac:
                    results.extend(await asyncio.gather(*(ac.post("/fair_price", json={"card_id": c}) for c in cards)))

            asyncio.run(go())

        thread = threading.Thread(target=load)
        thread.start()
        deadline = time.monotonic() + 10
        while _pending_of(r, "model-1") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        held = _pending_of(r, "model-1")
        assert held >= 1, "the frozen replica never received a request"
        os.kill(victim.process.pid, signal.SIGKILL)
        thread.join(60)

        statuses = Counter(resp.status_code for resp in results)
        print(f"\nsent {len(cards)}; held by the killed replica {held}; answers {dict(statuses)}")
        assert len(results) == len(cards)
        # 200, or 504 only when the answer came after the request's deadline.
        late = [resp for resp in results if resp.status_code == 504]
        assert all(time.time() - sent_at >= 10 for _ in late)
        assert statuses[200] + len(late) == len(cards)
        assert statuses[200] == len(cards), "the claimer answers well within the 10 s deadline"

        ids = [resp.json()["request_id"] for resp in results]
        decided = [json.loads(f[b"payload"]) for _, f in r.xrange(keys.SIGNALS_STREAM)]
        per_request = Counter(d["request_id"] for d in decided if d["request_id"] in set(ids))
        assert set(per_request.values()) == {1}, "no request is answered twice"
        assert {d["served_by"] for d in decided if d["request_id"] in set(ids)} == {"model-2"}
        assert _pending_of(r, "model-1") == 0
        assert r.xpending(keys.PREDICT_STREAM, keys.MODEL_GROUP)["pending"] == 0
    finally:
        stack.stop()
