"""Fault: restart the broker under load. 503 while it is away, recovery by itself once it is back.

The server is stopped (SIGTERM: it flushes its append-only file), left down
3 s and started again on the same port with its data. The gateway notices
its reply subscription is gone: requests waiting for a reply and new ones
are answered 503 at once; once the server is back it resubscribes within a
second. Workers retry their reads (FastStream backs off up to 5 s), so
requests accepted just after the return wait for them but are answered
within their deadline.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest
import redis

from workers.local.embedded import EmbeddedRedis, free_port
from workers.local.stack import LocalStack

pytestmark = pytest.mark.slow


def test_broker_restart_gives_503_then_recovers_without_restarting_anything(tmp_path, champion_data_dir) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    stack = LocalStack(
        champion_data_dir,
        port=free_port(),
        redis_url=server.url,
        extra_env={
            "POKEWATCH_HEARTBEAT_S": "0.5",
            "POKEWATCH_REPLICA_TTL_S": "3",
            "MLFLOW_TRACKING_URI": f"sqlite:///{(champion_data_dir / 'mlflow.db').resolve()}",
        },
    )
    stack.start(timeout=180)
    log: list[tuple[float, int]] = []
    messages: list[tuple[float, int, str]] = []
    durations: list[tuple[float, float]] = []
    stop = threading.Event()
    try:
        cards = [c["card_id"] for c in httpx.get(f"{stack.url}/cards", params={"page_size": 20}).json()["items"]]

        def client() -> None:
            with httpx.Client(base_url=stack.url, timeout=10) as c:
                i = 0
                while not stop.is_set():
                    sent_at = time.monotonic()
                    try:
                        resp = c.post("/fair_price", json={"card_id": cards[i % len(cards)]})
                        status = resp.status_code
                        if status != 200:
                            messages.append((time.monotonic(), status, resp.json().get("message", "")))
                    except httpx.HTTPError:
                        status = 0
                    log.append((time.monotonic(), status))
                    durations.append((sent_at, time.monotonic() - sent_at))
                    i += 1

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(2)
        down_at = time.monotonic()
        server.stop()
        time.sleep(3)
        server.start()
        back_at = time.monotonic()
        time.sleep(10)
        stop.set()
        for t in threads:
            t.join(30)

        before = Counter(s for t, s in log if t < down_at)
        away = Counter(s for t, s in log if down_at <= t < back_at)
        after = Counter(s for t, s in log if t >= back_at + 5)
        total = Counter("200" if s == 200 else "never answered" if s == 0 else "4xx/5xx" for _, s in log)
        print(f"\nsent {len(log)}: {dict(total)}")
        print(f"before {dict(before)}; while away {dict(away)}; from 5 s after its return {dict(after)}")
        slowest_away = max((d for t, d in durations if down_at + 0.5 <= t < back_at), default=0.0)
        print(f"slowest answer to a request sent while away: {slowest_away:.2f} s")
        late = [round(t - back_at, 2) for t, s in log if t >= back_at and s != 200]
        print(f"non-200 answers after its return: {len(late)}, the last {max(late, default=0)} s after")
        for t, status, message in messages:
            if t >= back_at + 5:
                print(f"  {t - back_at:.2f} s after: {status} {message[:150]}")
        assert set(before) == {200}
        assert away[503] > 0 and set(away) <= {200, 503}, away
        assert slowest_away < 1.0, "503 at once while the broker is away"
        assert total["never answered"] == 0
        assert set(after) == {200} and after[200] > 50, after
        assert all(c.process.poll() is None for c in stack.children), "no process died or was restarted"
        health = httpx.get(f"{stack.url}/health").json()
        assert health["status"] == "ok"
        assert redis.Redis.from_url(server.url).ping()
    finally:
        stop.set()
        stack.stop()
        server.stop()
