"""Fault: SIGKILL one of two model workers in the middle of a 2,000-request load.

What the killed replica had read but not acked stays pending in the group;
the other replica's claimer takes it over after `claim_idle_ms` and answers
it within the request deadline (tests/e2e/test_claimer.py makes that case
certain by freezing the victim while it holds an entry; here it is whatever
the kill catches). Outputs and acks go in one transaction, so
nothing is answered twice.
"""

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


def test_sigkill_under_load_loses_nothing_and_answers_once(redis_server, champion_data_dir) -> None:
    stack = make_stack(redis_server, champion_data_dir, db=13, POKEWATCH_REQUEST_TIMEOUT_S="20")
    stack.start(timeout=180)
    try:
        r = redis.Redis.from_url(stack.broker_url)
        cards = [c["card_id"] for c in httpx.get(f"{stack.url}/cards", params={"page_size": 40}).json()["items"]]
        version = httpx.get(f"{stack.url}/health").json()["model_versions"]
        outcomes: Counter[str] = Counter()
        wrong: list[str] = []
        request_ids: list[str] = []
        sent = 2000

        def load() -> None:
            async def go() -> None:
                limits = httpx.Limits(max_connections=32)
                async with httpx.AsyncClient(base_url=stack.url, timeout=40, limits=limits) as ac:
                    sem = asyncio.Semaphore(32)

                    async def one(i: int) -> None:
                        card = cards[i % len(cards)]
                        async with sem:
                            try:
                                resp = await ac.post("/fair_price", json={"card_id": card})
                            except httpx.HTTPError:
                                outcomes["never answered"] += 1
                                return
                        if resp.status_code != 200:
                            outcomes["4xx/5xx"] += 1
                            return
                        outcomes["200"] += 1
                        body = resp.json()
                        request_ids.append(body["request_id"])
                        if body["card_id"] != card or [body["model_version"]] != version:
                            wrong.append(f"asked {card}, got {body['card_id']} v{body['model_version']}")

                    await asyncio.gather(*(one(i) for i in range(sent)))

            asyncio.run(go())

        thread = threading.Thread(target=load)
        thread.start()
        time.sleep(1.0)  # mid-load
        victim = next(c for c in stack.children if c.name == "model-1")
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.wait(10)
        killed_at = time.monotonic()
        held = len(r.xpending_range(keys.PREDICT_STREAM, keys.MODEL_GROUP, "-", "+", 10_000, consumername="model-1"))
        thread.join(180)
        tail_s = time.monotonic() - killed_at

        answers = Counter()
        for _, fields in r.xrange(keys.SIGNALS_STREAM):
            answers[json.loads(fields[b"payload"])["request_id"]] += 1
        twice = [rid for rid in request_ids if answers[rid] > 1]
        claimed = r.xpending(keys.PREDICT_STREAM, keys.MODEL_GROUP)
        print(
            f"\nsent {sent}; {dict(outcomes)}; wrong answers {len(wrong)}; answered twice {len(twice)}; "
            f"held by the killed replica {held}; load finished {tail_s:.1f} s after the kill; "
            f"pending now {claimed['pending']}"
        )
        assert outcomes["200"] == sent, dict(outcomes)
        assert wrong == [] and twice == []
        assert all(answers[rid] == 1 for rid in request_ids)
        assert claimed["pending"] == 0, claimed
    finally:
        stack.stop()
