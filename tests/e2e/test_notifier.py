"""The notifier on real processes (gateway, decision worker, notifier) and real webhook receivers on loopback.

Prices enter as the model workers send them (PriceQuotes on `pokewatch:quotes`), so the real decision
worker decides the signals, records the changes and price updates, and the notifier alerts from those.
The receivers listen on 127.0.0.1, which both the gateway and the notifier allow-list explicitly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from contracts import keys
from contracts.messages import DeadLetter, PriceQuotes
from contracts.watchlists import Alert
from tests.e2e.conftest import db_url
from tests.e2e.receiver import Receiver
from tests.e2e.test_scan import Follower
from tests.factories import make_quote
from workers.local.embedded import free_port
from workers.local.stack import LocalStack

pytestmark = pytest.mark.slow

LOOPBACK = "127.0.0.1/32"
# An alert left pending by a dead notifier is claimed by another after 1 s (3 s by default).
NOTIFIER_ENV = {"POKEWATCH_CLAIM_IDLE_MS": "1000"}


@contextlib.contextmanager
def notify_stack(
    redis_server, tmp_path: Path, db: int, **notifier_env: str
) -> Iterator[tuple[LocalStack, redis.Redis]]:
    """Gateway, one decision worker and notifier-1 on their own database (no model workers: the test prices)."""
    url = db_url(redis_server, db)
    r = redis.Redis.from_url(url)
    r.flushdb()
    stack = LocalStack(
        tmp_path / "data",
        port=free_port(),
        redis_url=url,
        model_replicas=0,
        extra_env={"POKEWATCH_HEARTBEAT_S": "0.5", "POKEWATCH_WEBHOOK_ALLOW": LOOPBACK},
    )
    stack.spawn_decision("decision-1")
    stack.spawn_notifier("notifier-1", {**NOTIFIER_ENV, **notifier_env})
    stack.spawn_gateway(env={"POKEWATCH_WEBHOOK_ALLOW": notifier_env.get("GATEWAY_ALLOW", LOOPBACK)})
    try:
        wait_for_roles(stack, r, {"decision", "notifier"})
        yield stack, r
    finally:
        stack.stop()
        r.flushdb()


def wait_for_roles(stack: LocalStack, r: redis.Redis, roles: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in stack.children:
            assert child.process.poll() is None, f"{child.name} exited; see {child.log.read_text()[-2000:]}"
        live = {json.loads(v)["role"] for v in r.hgetall(keys.REPLICAS_HASH).values()}
        with contextlib.suppress(httpx.HTTPError):
            if roles <= live and httpx.get(f"{stack.url}/health", timeout=2).status_code in (200, 503):
                return
        time.sleep(0.2)
    raise TimeoutError(f"{roles} not live within {timeout} s")


def watch(stack: LocalStack, name: str, items: list[dict], webhook_url: str | None) -> dict:
    resp = httpx.post(f"{stack.url}/watchlists", json={"name": name, "items": items, "webhook_url": webhook_url})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def any_change(*cards: str) -> list[dict]:
    return [{"card_id": c, "rule": "signal", "signal": "ANY"} for c in cards]


def price(r: redis.Redis, day: str, *cards: tuple[str, float, float]) -> None:
    """What a model worker sends: quotes (card, market, fair) for `day`, to the decision workers."""
    quotes = [
        make_quote(c, market=m, fair=f).model_copy(update={"date": dt.date.fromisoformat(day)}) for c, m, f in cards
    ]
    msg = PriceQuotes(
        request_id=f"t-{day}-{time.time()}",
        reply_to="pokewatch:reply:nobody",
        deadline=time.time() + 60,
        results=quotes,
    )
    r.xadd(keys.QUOTES_STREAM, {keys.PAYLOAD_FIELD: msg.model_dump_json()})


def alerts(r: redis.Redis) -> list[Alert]:
    return [Alert.model_validate_json(f[b"payload"]) for _, f in r.xrange(keys.ALERTS_STREAM)]


def dead(r: redis.Redis) -> list[DeadLetter]:
    return [DeadLetter.model_validate_json(f[b"payload"]) for _, f in r.xrange(keys.DEAD_LETTER_STREAM)]


def pending(r: redis.Redis) -> int:
    return int(r.xpending(keys.ALERTS_STREAM, keys.NOTIFIER_GROUP)["pending"])


def until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_sigkill_mid_delivery_loses_no_alert_and_duplicates_keep_their_id(redis_server, tmp_path: Path) -> None:
    hook = Receiver(free_port(), delay_s=1.0).start()  # every answer takes a second: deliveries are in flight
    cards = [f"s{i}" for i in range(12)]
    try:
        with notify_stack(redis_server, tmp_path, db=12) as (stack, r):
            created = watch(stack, "buys", any_change(*cards), f"{hook.url}/hook")
            secret = created["webhook_secret"]
            price(r, "2026-01-02", *[(c, 80.0, 100.0) for c in cards])  # first seen as BUY: 12 changes
            until(lambda: len(hook.received) >= 3, 20, "deliveries started")
            killed = stack.children[1]
            assert killed.name == "notifier-1"
            killed.process.kill()
            killed.process.wait()
            at_kill = len(hook.received)
            stack.spawn_notifier("notifier-2", NOTIFIER_ENV)
            made = alerts(r)  # all made by now: twelve changes, one watchlist
            until(
                lambda: (
                    {h.headers["webhook-id"] for h in hook.received} >= {a.alert_id for a in made} and pending(r) == 0
                ),
                60,
                "every alert delivered and acked",
            )
    finally:
        hook.stop()

    assert len(made) == len(cards) and len({a.alert_id for a in made}) == len(cards)
    assert {a.card_id for a in made} == set(cards) and {a.trigger for a in made} == {"signal none -> BUY"}
    by_id: dict[str, set[bytes]] = {}
    for h in hook.received:
        assert h.headers["idempotency-key"] == h.headers["webhook-id"]
        by_id.setdefault(h.headers["webhook-id"], set()).add(h.body)
        assert Webhook(secret).verify(h.body, h.headers)["alert_id"] == h.headers["webhook-id"]
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + "QUJD" * 8).verify(h.body, h.headers)
    assert all(len(bodies) == 1 for bodies in by_id.values()), "a duplicate is the same alert"
    copies = Counter(h.headers["webhook-id"] for h in hook.received)
    print(f"\n{at_kill} POSTs in flight at SIGKILL; {len(hook.received)} POSTs for {len(made)} alerts")
    assert at_kill >= 3 and max(copies.values()) >= 2, "the killed notifier's deliveries were sent again"


def test_a_failing_receiver_dead_letters_while_the_others_are_served(redis_server, tmp_path: Path) -> None:
    main = Receiver(free_port(), answers={"/fail": (500, {"retry-after": "1"})}).start()
    late = Receiver(free_port())  # down for the first 10 s
    env = {
        "POKEWATCH_WEBHOOK_ATTEMPTS": "6",
        "POKEWATCH_WEBHOOK_BACKOFF_S": "0.5",
        "POKEWATCH_WEBHOOK_BACKOFF_MAX_S": "8",
        "GATEWAY_ALLOW": "127.0.0.0/8",  # the gateway stores 127.0.0.2; the notifier (127.0.0.1 only) refuses it
    }
    try:
        with notify_stack(redis_server, tmp_path, db=12, **env) as (stack, r):
            failing = watch(stack, "failing", any_change(*[f"f{i}" for i in range(5)]), f"{main.url}/fail")
            served = watch(stack, "served", any_change(*[f"k{i}" for i in range(5)]), f"{main.url}/ok")
            watch(stack, "late", any_change("d0", "d1", "d2"), f"{late.url}/hook")
            refused = watch(stack, "refused", any_change("k0"), f"http://127.0.0.2:{main.port}/ok")
            prices = [
                {"card_id": "p0", "rule": "price_above", "target": 11},
                {"card_id": "p1", "rule": "price_below", "target": 9},
                {"card_id": "p2", "rule": "deviation", "deviation_pct": 15},
            ]
            watch(stack, "prices", prices, f"{main.url}/ok")
            flat = [("p0", 10.0, 10.0), ("p1", 10.0, 10.0), ("p2", 10.0, 10.0)]
            price(r, "2026-01-02", *flat)
            buys = [(f"{p}{i}", 80.0, 100.0) for p, n in (("f", 5), ("k", 5), ("d", 3)) for i in range(n)]
            start = time.time()
            price(r, "2026-01-02", *buys)
            price(r, "2026-01-03", ("p0", 12.0, 10.0), ("p1", 8.5, 10.0), ("p2", 12.0, 10.0))
            price(r, "2026-01-04", ("p0", 12.5, 10.0), ("p1", 8.0, 10.0), ("p2", 12.5, 10.0))  # still past: no repeat
            until(lambda: len(main.on("/ok")) >= 8, 10, "the healthy watchlists' alerts")
            served_by = time.time()
            time.sleep(max(0.0, start + 10 - time.time()))
            late.start()
            until(lambda: len(late.received) >= 3, 30, "the late receiver's alerts after it returned")
            until(lambda: len([d for d in dead(r) if d.source_stream == keys.ALERTS_STREAM]) >= 6, 30, "dead letters")
            until(lambda: pending(r) == 0, 10, "nothing left pending")
            with_watchlist = Follower(stack.url, last_event_id="0-0", watchlist=served["id"])
            with_watchlist.start()
            followed = with_watchlist.wait_for(5, timeout=10)
            with_watchlist.stop.set()
            missing = httpx.get(f"{stack.url}/signals/stream", params={"watchlist": "nope"}, timeout=5)
            made, letters = alerts(r), [d for d in dead(r) if d.source_stream == keys.ALERTS_STREAM]
    finally:
        main.stop()
        late.stop()

    triggers = sorted(a.trigger for a in made if a.card_id.startswith("p"))
    # Each fired once: not again the next day, while the price stays past the target.
    assert triggers == sorted(
        ["market 12 crossed above 11", "market 8.5 crossed below 9", "market 20.0% over fair (alert at 15%)"]
    )
    ok = {h.headers["webhook-id"] for h in main.on("/ok")}
    assert ok == {a.alert_id for a in made if a.watchlist_name in ("served", "prices")} and len(ok) == 8
    assert served_by - start < 5, "a receiver failing forever does not hold up the others"
    assert min(h.at for h in late.received) >= start + 10 and len({h.headers["webhook-id"] for h in late.received}) == 3

    failed = [d for d in letters if failing["id"] in d.reason]
    assert len(failed) == 5 and all("answered 500" in d.reason and "after 6 attempts" in d.reason for d in failed)
    attempts = Counter(h.headers["webhook-id"] for h in main.on("/fail"))
    assert set(attempts.values()) == {6}
    first = sorted(h.at for h in main.on("/fail") if h.headers["webhook-id"] == next(iter(attempts)))
    assert min(b - a for a, b in itertools.pairwise(first)) >= 0.9, "Retry-After: 1 is honoured"
    refusals = [d for d in letters if refused["id"] in d.reason]
    assert len(refusals) == 1 and "refused before sending" in refusals[0].reason and "127.0.0.2" in refusals[0].reason
    assert {e["card_id"] for _, e, _ in followed} == {f"k{i}" for i in range(5)}
    assert missing.status_code == 404
    print(f"\nhealthy receiver served {served_by - start:.1f} s after the prices; {len(letters)} dead letters")
