"""Fault: the server loses the streams (FLUSHDB, as after a restart without its data).

Workers' reads answer NOGROUP; FastStream stops the app, and the worker runs
it again: start-up recreates the consumer groups (from id 0, so requests
accepted meanwhile are served) and the model replica republishes the
catalog. Nobody restarts a process.
"""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest
import redis

from contracts import keys
from tests.e2e.conftest import make_stack

pytestmark = pytest.mark.slow


def test_workers_recreate_lost_groups_and_resume(redis_server, champion_data_dir) -> None:
    stack = make_stack(redis_server, champion_data_dir, db=9)
    stack.start(timeout=180)
    try:
        r = redis.Redis.from_url(stack.broker_url)
        pids = {c.name: c.process.pid for c in stack.children}
        with httpx.Client(base_url=stack.url, timeout=10) as c:
            card = c.get("/cards", params={"page_size": 1}).json()["items"][0]["card_id"]
            assert c.post("/fair_price", json={"card_id": card}).status_code == 200

            r.flushdb()
            lost_at = time.monotonic()
            outcomes: Counter[int] = Counter()
            first_ok = None
            while time.monotonic() - lost_at < 20:
                status = c.post("/fair_price", json={"card_id": card}).status_code
                outcomes[status] += 1
                if status == 200:
                    first_ok = time.monotonic() - lost_at
                    break
                time.sleep(0.1)
            print(f"\nafter FLUSHDB: {dict(outcomes)}; first 200 after {first_ok} s")
            assert first_ok is not None, dict(outcomes)
            assert set(outcomes) <= {200, 503, 504}, dict(outcomes)

            # Both groups are back, the catalog is republished, and a burst is served in full.
            groups = {s: [g["name"].decode() for g in r.xinfo_groups(s)] for s in keys.GROUPS}
            assert groups == {s: [g] for s, g in keys.GROUPS.items()}, groups
            deadline = time.monotonic() + 10
            while not c.get("/cards").json()["items"] and time.monotonic() < deadline:
                time.sleep(0.2)
            assert c.get("/cards").json()["items"], "catalog republished"
            burst = Counter(c.post("/fair_price", json={"card_id": card}).status_code for _ in range(50))
            assert burst == Counter({200: 50}), burst
        assert {c.name: c.process.pid for c in stack.children} == pids
        assert all(c.process.poll() is None for c in stack.children), "no process died or was restarted"
    finally:
        stack.stop()
