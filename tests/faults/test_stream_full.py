"""Fault: every worker stopped (SIGSTOP) while requests pour in and the request stream fills to its cap.

The gateway keeps answering quickly: 504 at the request deadline while the
frozen replicas' heartbeats are still fresh, then 503 at once; the stream
stays at its MAXLEN (older entries trimmed), and neither the gateway's nor
the server's memory grows without bound. Once the workers continue they
work through what is left and serve new requests at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter

import httpx
import psutil
import pytest
import redis

from contracts import keys
from contracts.messages import PredictItem, PredictRequest
from tests.e2e.conftest import make_stack

pytestmark = pytest.mark.slow

MAXLEN = 1000


def test_full_stream_with_workers_stopped_stays_bounded_and_recovers(redis_server, champion_data_dir) -> None:
    stack = make_stack(
        redis_server,
        champion_data_dir,
        db=11,
        POKEWATCH_STREAM_MAXLEN=str(MAXLEN),
        POKEWATCH_REQUEST_TIMEOUT_S="1",
        POKEWATCH_REPLICA_TTL_S="3",
    )
    stack.start(timeout=180)
    workers = [c for c in stack.children if not c.name.startswith("gateway")]
    gateway = psutil.Process(next(c for c in stack.children if c.name == "gateway").process.pid)
    try:
        r = redis.Redis.from_url(stack.broker_url)
        card = httpx.get(f"{stack.url}/cards", params={"page_size": 1}).json()["items"][0]["card_id"]
        assert httpx.post(f"{stack.url}/fair_price", json={"card_id": card}).status_code == 200
        rss_before = gateway.memory_info().rss
        server_before = int(r.info("memory")["used_memory"])

        for w in workers:
            os.kill(w.process.pid, signal.SIGSTOP)
        # Fill the stream well past its cap directly (as a burst of other gateways would).
        filler = PredictRequest(
            request_id="filler", reply_to=keys.reply_channel("nobody"), deadline=time.time() + 120,
            items=[PredictItem(card_id=card)],
        ).model_dump_json()  # fmt: skip
        pipe = r.pipeline(transaction=False)
        for _ in range(3 * MAXLEN):
            pipe.xadd(keys.PREDICT_STREAM, {keys.PAYLOAD_FIELD: filler}, maxlen=MAXLEN, approximate=True)
        pipe.execute()

        outcomes: Counter[int] = Counter()
        latencies: list[float] = []

        async def pound(seconds: float) -> None:
            async with httpx.AsyncClient(base_url=stack.url, timeout=10) as ac:
                end = time.monotonic() + seconds

                async def client() -> None:
                    while time.monotonic() < end:
                        t = time.monotonic()
                        resp = await ac.post("/fair_price", json={"card_id": card})
                        latencies.append(time.monotonic() - t)
                        outcomes[resp.status_code] += 1

                await asyncio.gather(*(client() for _ in range(16)))

        asyncio.run(pound(6.0))
        length = r.xlen(keys.PREDICT_STREAM)
        rss_growth = (gateway.memory_info().rss - rss_before) / 2**20
        server_growth = (int(r.info("memory")["used_memory"]) - server_before) / 2**20
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99)]
        print(
            f"\nworkers stopped: {sum(outcomes.values())} requests {dict(outcomes)}; p99 {p99 * 1000:.0f} ms, "
            f"max {latencies[-1] * 1000:.0f} ms; stream length {length} (cap {MAXLEN}); "
            f"gateway RSS +{rss_growth:.1f} MB, server memory +{server_growth:.1f} MB"
        )
        assert set(outcomes) <= {503, 504} and outcomes[503] > 0, outcomes
        assert latencies[-1] < 2.0, "every answer within the 1 s deadline plus slack"
        assert length <= 2 * MAXLEN, "approximate trimming keeps the stream near its cap"
        assert rss_growth < 50 and server_growth < 50

        continued = time.monotonic()
        for w in workers:
            os.kill(w.process.pid, signal.SIGCONT)
        first_ok = None
        while time.monotonic() - continued < 15:
            if httpx.post(f"{stack.url}/fair_price", json={"card_id": card}, timeout=5).status_code == 200:
                first_ok = time.monotonic() - continued
                break
            time.sleep(0.05)
        print(f"workers continued: first 200 after {first_ok} s")
        assert first_ok is not None and first_ok < 5
        burst = Counter(httpx.post(f"{stack.url}/fair_price", json={"card_id": card}).status_code for _ in range(50))
        assert burst == Counter({200: 50}), burst
    finally:
        for w in workers:
            if w.process.poll() is None:
                os.kill(w.process.pid, signal.SIGCONT)
        stack.stop()
