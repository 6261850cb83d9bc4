"""Fault: SIGKILL one of two model workers in the middle of a 2,000-request load.

What the killed replica had read but not acked stays pending in the group;
the other replica's claimer takes it over after `claim_idle_ms` and answers
it within the request deadline (tests/e2e/test_claimer.py makes that case
certain by freezing the victim while it holds an entry; here it is whatever
the kill catches). Outputs and acks go in one transaction, so
nothing is answered twice.
"""

from __future__ import annotations

import json
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


def test_sigkill_under_load_loses_nothing_and_answers_once(redis_server, champion_data_dir) -> None:
    stack = make_stack(redis_server, champion_data_dir, db=13, POKEWATCH_REQUEST_TIMEOUT_S="20")
    stack.start(timeout=180)
    try:
        r = redis.Redis.from_url(stack.broker_url)
        cards = [c["card_id"] for c in httpx.get(f"{stack.url}/cards", params={"page_size": 40}).json()["items"]]
        version = httpx.get(f"{stack.url}/health").json()["model_versions"]
        sent = 2000
        bodies = [{"card_id": cards[i % len(cards)]} for i in range(sent)]
        thread, box = in_background(f"{stack.url}/fair_price", bodies, timeout=40)
        time.sleep(1.0)  # mid-load
        victim = next(c for c in stack.children if c.name == "model-1")
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.wait(10)
        killed_at = time.monotonic()
        held = len(r.xpending_range(keys.PREDICT_STREAM, keys.MODEL_GROUP, "-", "+", 10_000, consumername="model-1"))
        thread.join(180)
        tail_s = time.monotonic() - killed_at
        responses = box[0]
        outcomes = Counter(outcome(resp) for resp in responses)
        wrong, request_ids = [], []
        for body, resp in zip(bodies, responses, strict=True):
            if resp is not None and resp.status_code == 200:
                answer = resp.json()
                request_ids.append(answer["request_id"])
                if answer["card_id"] != body["card_id"] or [answer["model_version"]] != version:
                    wrong.append(f"asked {body['card_id']}, got {answer['card_id']} v{answer['model_version']}")

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
