"""The market scan on real processes: a new version with a known price move gives exactly the expected
signal changes, once, with two model replicas."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

import httpx
import pytest
import redis

from contracts import keys
from contracts.messages import SignalChanged
from tests.e2e.conftest import register_rule_model, running_stack, scan_decisions, two_days_of_prices
from workers.config import PipelineSettings

pytestmark = pytest.mark.slow

DAY1, DAY2 = date(2026, 1, 2), date(2026, 1, 3)
CARDS = 30
UP, DOWN = "demo-00003", "demo-00011"


class Follower(threading.Thread):
    """An SSE client of GET /signals/stream, recording (event id, data, arrival time) until stopped."""

    def __init__(self, url: str, last_event_id: str | None = None, **params: str) -> None:
        super().__init__(daemon=True)
        self.url, self.params = url, params
        self.headers = {"last-event-id": last_event_id} if last_event_id else {}
        self.events: list[tuple[str, dict, float]] = []
        self.connected = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.stream(
            "GET", f"{self.url}/signals/stream", params=self.params, headers=self.headers, timeout=30
        ) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            self.connected.set()
            entry_id = None
            for line in r.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith("id: "):
                    entry_id = line[4:]
                elif line.startswith("data: ") and entry_id:
                    self.events.append((entry_id, json.loads(line[6:]), time.time()))

    def wait_for(self, n: int, timeout: float = 30) -> list[tuple[str, dict, float]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.events


def test_a_new_version_gives_exactly_the_expected_changes_once(redis_server, tmp_path: Path) -> None:
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    data_dir = tmp_path / "data"
    settings = PipelineSettings(data_dir=data_dir, max_train_rows=100_000)
    # The next day every price stays, but one card jumps 60% and another falls 40%.
    day1, day2 = two_days_of_prices(tmp_path, CARDS, DAY1, {UP: 1.6, DOWN: 0.6})
    v1, _ = register_rule_model(settings, DAY1, day1)

    with running_stack(redis_server, data_dir, db=11) as stack:
        r = redis.Redis.from_url(stack.broker_url)
        first = scan_decisions(stack, v1, CARDS)
        v2, _ = register_rule_model(settings, DAY2, day2)
        from workers.model_events import publish_version

        live = Follower(stack.url)
        live.start()
        assert live.connected.wait(10)
        before_v2 = r.xlen(keys.SIGNAL_CHANGES_STREAM)
        publish_version(PipelineSettings(data_dir=data_dir), r, v2, make_champion=True)
        scan_decisions(stack, v2, CARDS)
        time.sleep(1.0)  # a second scan, if any replica started one, would land by now
        second = scan_decisions(stack, v2, CARDS, timeout=0)
        changes = [
            SignalChanged.model_validate_json(f[keys.PAYLOAD_FIELD.encode()])
            for _, f in r.xrange(keys.SIGNAL_CHANGES_STREAM)
        ]
        claims = sorted(k.decode() for k in r.scan_iter(f"{keys.SCAN_PREFIX}*"))
        ids = [i.decode() for i, _ in r.xrange(keys.SIGNAL_CHANGES_STREAM)]
        followed = live.wait_for(len(ids) - before_v2)
        live.stop.set()
        # Reconnecting with the id of the first change it saw, a client gets every later one.
        resumed = Follower(stack.url, last_event_id=followed[0][0])
        resumed.start()
        after = resumed.wait_for(len(followed) - 1)
        resumed.stop.set()
        only_up = Follower(stack.url, last_event_id="0-0", card_id=UP)
        only_up.start()
        up_events = only_up.wait_for(1)
        time.sleep(0.5)
        only_up.stop.set()

    # The live follower saw every change of the new version's scan, each within a second of its
    # append (the entry id is the server's clock in ms), and a reconnection missed none.
    assert [i for i, _, _ in followed] == ids[before_v2:]
    delays = [arrived - int(i.split("-")[0]) / 1000 for i, _, arrived in followed]
    print(f"\nSSE: {len(followed)} changes, slowest {max(delays) * 1000:.0f} ms after its append")
    assert max(delays) < 1.0, delays
    assert [i for i, _, _ in after] == ids[before_v2 + 1 :]
    assert [e["card_id"] for _, e, _ in up_events] == [UP] and up_events[0][1]["signal"] == "SELL"

    # Each version's scan decided every card exactly once, with that version, across two replicas.
    for decided, version in ((first, v1), (second, v2)):
        assert Counter(d["card_id"] for d in decided) == Counter({f"demo-{i:05d}": 1 for i in range(CARDS)})
        assert {d["model_version"] for d in decided} == {version}
    assert {d["served_by"] for d in first + second} <= {"model-1", "model-2"}
    assert claims == sorted([keys.scan_key(None, v1), keys.scan_key(v1, v2)])

    was = {d["card_id"]: d["signal"] for d in first}
    now = {d["card_id"]: d["signal"] for d in second}
    assert (now[UP], now[DOWN]) == ("SELL", "BUY"), "the known moves"
    expected = Counter(
        [(card, None, s) for card, s in was.items() if s != "HOLD"]
        + [(card, was[card], s) for card, s in now.items() if s != was[card]]
    )
    got = Counter((c.card_id, c.previous_signal, c.signal) for c in changes)
    print(f"\nscans: v{v1} {Counter(was.values())}, v{v2} {Counter(now.values())}; changes {sum(got.values())}")
    assert got == expected
    assert all(n == 1 for n in got.values()), "each change once"
    moved = {c.card_id: c for c in changes if c.decision.model_version == v2}
    assert moved[UP].previous_model_version == v1 and moved[UP].decision.reason
    assert moved[DOWN].decision.market_price < moved[DOWN].decision.fair_price
