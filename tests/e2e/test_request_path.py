"""End to end over real processes: REST -> predict stream -> model replicas -> quotes -> decision -> reply."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx
import pytest
import redis

from contracts import keys
from contracts.messages import PredictRequest
from tests.e2e.conftest import db_url
from workers.local.embedded import free_port

pytestmark = pytest.mark.slow


def _signals(stack) -> list[dict]:
    r = redis.Redis.from_url(stack.broker_url)
    return [json.loads(f[b"payload"]) for _, f in r.xrange(keys.SIGNALS_STREAM)]


def _first_cards(client: httpx.Client, n: int) -> list[dict]:
    page = client.get("/cards", params={"page_size": n}).json()
    assert page["total"] >= n
    return page["items"]


def test_health_lists_live_replicas_and_their_model_version(client: httpx.Client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["broker"] is True
    models = [r for r in body["replicas"] if r["role"] == "model" and r["live"]]
    assert {r["replica_id"] for r in models} == {"model-1", "model-2"}
    assert len(body["model_versions"]) == 1 and all(r["model_version"] == body["model_versions"][0] for r in models)


def test_cards_are_paged_and_filtered(client: httpx.Client) -> None:
    everything = client.get("/cards", params={"page_size": 500}).json()
    assert everything["total"] == 40 == len(everything["items"])
    page2 = client.get("/cards", params={"page": 2, "page_size": 15}).json()
    assert [c["card_id"] for c in page2["items"]] == [c["card_id"] for c in everything["items"][15:30]]
    name = everything["items"][7]["card_name"]
    found = client.get("/cards", params={"q": name.upper()}).json()
    assert name in [c["card_name"] for c in found["items"]]
    one_set = everything["items"][0]["set_name"]
    by_set = client.get("/cards", params={"set_name": one_set}).json()
    assert by_set["total"] >= 1 and all(c["set_name"] == one_set for c in by_set["items"])


def test_history_of_a_card_and_404_for_an_unknown_one(client: httpx.Client) -> None:
    card = _first_cards(client, 1)[0]
    hist = client.get(f"/cards/{card['card_id']}/history").json()
    assert len(hist["points"]) == card["observations"]
    assert hist["points"][-1]["date"] == card["last_date"]
    window = client.get(f"/cards/{card['card_id']}/history", params={"start": card["last_date"]}).json()
    assert len(window["points"]) == 1
    missing = client.get("/cards/no-such-card/history")
    assert missing.status_code == 404 and "no-such-card" in missing.json()["message"]


def test_fair_price_for_one_card_lands_on_the_signals_stream(client: httpx.Client, stack) -> None:
    card = _first_cards(client, 1)[0]
    # As `curl -d` sends it: no JSON content type.
    resp = client.post(
        "/fair_price",
        content=json.dumps({"card_id": card["card_id"]}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["card_id"] == card["card_id"] and body["date"] == card["last_date"]
    assert body["market_price"] == pytest.approx(card["last_price"])
    assert body["fair_price_low"] <= body["fair_price"] <= body["fair_price_high"]
    assert body["signal"] in {"BUY", "SELL", "HOLD"}
    assert body["deviation_pct"] == pytest.approx((body["market_price"] / body["fair_price"] - 1) * 100, abs=1e-3)
    # Each signal says which rule decided it and why, with the expected move and its interval.
    assert body["rule"] in {"fixed", "volatility", "probability", "none"} and body["reason"].startswith(body["signal"])
    assert body["expected_move_pct"] == pytest.approx((body["fair_price"] / body["market_price"] - 1) * 100, abs=1e-2)
    assert body["expected_move_low_pct"] <= body["expected_move_pct"] <= body["expected_move_high_pct"]
    assert body["typical_move_pct"] > 0
    decided = [s for s in _signals(stack) if s["request_id"] == body["request_id"]]
    assert len(decided) == 1 and decided[0]["signal"] == body["signal"]
    assert decided[0]["model_version"] == body["model_version"]
    assert (decided[0]["rule"], decided[0]["reason"]) == (body["rule"], body["reason"])


def test_past_date_is_answered_as_of_that_date(client: httpx.Client) -> None:
    card = _first_cards(client, 1)[0]
    hist = client.get(f"/cards/{card['card_id']}/history").json()["points"]
    past = hist[len(hist) // 2]
    body = client.post("/fair_price", json={"card_id": card["card_id"], "date": past["date"]}).json()
    assert body["date"] == past["date"] and body["market_price"] == pytest.approx(past["market_price"])


def test_batch_prices_many_cards_in_one_request(client: httpx.Client, stack) -> None:
    cards = [c["card_id"] for c in _first_cards(client, 40)]
    items = [{"card_id": c} for c in cards] + [{"card_id": "unknown-card"}]
    r = redis.Redis.from_url(stack.broker_url)
    before = r.xinfo_stream(keys.PREDICT_STREAM)["entries-added"]
    resp = client.post("/fair_price/batch", json={"items": items})
    after = r.xinfo_stream(keys.PREDICT_STREAM)["entries-added"]
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert after - before == 1, "a batch must travel as one stream entry"
    assert (body["priced"], body["failed"]) == (40, 1)
    assert [x["card_id"] for x in body["results"]] == [*cards, "unknown-card"]
    assert body["results"][-1]["status"] == 404


def test_batch_over_the_limit_is_422(client: httpx.Client) -> None:
    resp = client.post("/fair_price/batch", json={"items": [{"card_id": "c"}] * 501})
    assert resp.status_code == 422 and "items" in resp.json()["message"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"card_id": "no-such-card"}, 404, "unknown card 'no-such-card'"),
        ({"card_id": "__first__", "date": "2099-01-01"}, 404, "latest known price is on"),
        ({"card_id": "__first__", "date": "1990-01-01"}, 404, "served history starts on"),
        ({"card_id": "__first__", "date": "not-a-date"}, 422, "date"),
        ({"cardid": "x"}, 422, "card_id"),
        ({"card_id": ""}, 422, "card_id"),
    ],
)
def test_errors_are_json_with_a_clear_message(client: httpx.Client, body: dict, status: int, needle: str) -> None:
    if body.get("card_id") == "__first__":
        body = {**body, "card_id": _first_cards(client, 1)[0]["card_id"]}
    resp = client.post("/fair_price", json=body)
    assert resp.status_code == status, resp.text
    err = resp.json()
    assert needle in err["message"] and err["error"] in {"not_found", "invalid_input"}


def test_malformed_json_is_422(client: httpx.Client) -> None:
    resp = client.post("/fair_price", content=b"{oops")
    assert resp.status_code == 422 and resp.json()["error"] == "invalid_input"


def test_requests_spread_across_both_model_replicas(client: httpx.Client, stack) -> None:
    cards = [c["card_id"] for c in _first_cards(client, 40)]

    async def burst() -> list[str]:
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as ac:
            resps = await asyncio.gather(*(ac.post("/fair_price", json={"card_id": c}) for c in cards * 3))
        assert all(r.status_code == 200 for r in resps)
        return [r.json()["request_id"] for r in resps]

    ids = set(asyncio.run(burst()))
    served = {s["served_by"] for s in _signals(stack) if s["request_id"] in ids}
    assert served == {"model-1", "model-2"}


def test_garbage_on_every_stream_is_dead_lettered_while_workers_keep_serving(client: httpx.Client, stack) -> None:
    r = redis.Redis.from_url(stack.broker_url)
    before = r.xlen(keys.DEAD_LETTER_STREAM)
    garbage = [
        {keys.PAYLOAD_FIELD: b"\xff\xfe not json"},
        {keys.PAYLOAD_FIELD: json.dumps({"schema_version": 99})},
        {"no_payload": b"1"},
        {keys.PAYLOAD_FIELD: json.dumps({"schema_version": 1, "request_id": ["wrong type"]})},
        {keys.PAYLOAD_FIELD: b'{"schema_version": 1, "request_id": "' + b"x" * 4_000_000 + b'"}'},  # 4 MB
    ]
    # Every stream a worker reads; model events are read by each of the 2 model replicas.
    readers = {keys.PREDICT_STREAM: 1, keys.QUOTES_STREAM: 1, keys.MODEL_EVENTS_STREAM: 2}
    for stream in readers:
        for fields in garbage:
            r.xadd(stream, fields)
    expected = sum(readers.values()) * len(garbage)
    deadline = time.monotonic() + 20
    while r.xlen(keys.DEAD_LETTER_STREAM) - before < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    letters = [json.loads(f[b"payload"]) for _, f in r.xrange(keys.DEAD_LETTER_STREAM)][before:]
    counts = {s: sum(1 for d in letters if d["source_stream"] == s) for s in readers}
    print(f"\n{len(garbage)} garbage entries per stream; dead letters: {counts}")
    assert counts == {s: n * len(garbage) for s, n in readers.items()}, counts
    assert all(d["reason"] for d in letters)
    assert max(len(d["payload"]) for d in letters) <= 64 * 1024, "payloads are truncated in dead letters"
    card = _first_cards(client, 1)[0]["card_id"]
    assert client.post("/fair_price", json={"card_id": card}).status_code == 200
    for stream, group in keys.GROUPS.items():
        assert r.xpending(stream, group)["pending"] == 0
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model_versions"], health


def test_504_when_the_deadline_passes_and_workers_skip_the_expired_request(stack, redis_server) -> None:
    port = free_port()
    child = stack.spawn_gateway("gateway-504", port=port, env={"POKEWATCH_REQUEST_TIMEOUT_S": "0.001"})
    try:
        _wait_up(f"http://127.0.0.1:{port}")
        card = httpx.get(f"{stack.url}/cards", params={"page_size": 1}).json()["items"][0]["card_id"]
        expired_at_start = _expired(stack)
        resp = httpx.post(f"http://127.0.0.1:{port}/fair_price", json={"card_id": card}, timeout=10)
        assert resp.status_code == 504 and resp.json()["error"] == "timeout"
        # A request whose deadline has passed before a worker reads it is acked and skipped.
        r = redis.Redis.from_url(stack.broker_url)
        late = PredictRequest(
            request_id="late-1",
            reply_to=keys.reply_channel("nobody"),
            deadline=time.time() - 1,
            items=[{"card_id": card}],
        )
        # The request that just timed out is itself skipped as expired by a
        # worker; its count reaches the heartbeats up to one period later.
        settle = time.monotonic() + 5
        while _expired(stack) == expired_at_start and time.monotonic() < settle:
            time.sleep(0.2)
        expired_before = _expired(stack)
        r.xadd(keys.PREDICT_STREAM, {keys.PAYLOAD_FIELD: late.model_dump_json()})
        deadline = time.monotonic() + 10
        while _expired(stack) == expired_before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _expired(stack) == expired_before + 1
        assert not [s for s in _signals(stack) if s["request_id"] == "late-1"]
        assert r.xpending(keys.PREDICT_STREAM, keys.MODEL_GROUP)["pending"] == 0
    finally:
        child.process.terminate()
        child.process.wait(15)


def test_503_without_a_live_model_worker(stack, redis_server) -> None:
    port = free_port()
    empty_db = db_url(redis_server, 7)
    child = stack.spawn_gateway("gateway-503-workers", port=port, env={"REDIS_URL": empty_db})
    try:
        _wait_up(f"http://127.0.0.1:{port}")
        resp = httpx.post(f"http://127.0.0.1:{port}/fair_price", json={"card_id": "x"}, timeout=10)
        assert resp.status_code == 503 and "no live model worker" in resp.json()["message"]
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["status"] == "degraded"
    finally:
        child.process.terminate()
        child.process.wait(15)


def test_503_when_the_broker_is_unreachable(stack) -> None:
    port = free_port()
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    child = stack.spawn_gateway("gateway-503-broker", port=port, env={"REDIS_URL": dead_broker})
    try:
        _wait_up(f"http://127.0.0.1:{port}", status=503)
        resp = httpx.post(f"http://127.0.0.1:{port}/fair_price", json={"card_id": "x"}, timeout=10)
        assert resp.status_code == 503 and "broker unreachable" in resp.json()["message"]
        assert httpx.get(f"http://127.0.0.1:{port}/health").json() == {
            **httpx.get(f"http://127.0.0.1:{port}/health").json(),
            "status": "down",
            "broker": False,
        }
    finally:
        child.process.terminate()
        child.process.wait(15)


def _expired(stack) -> int:
    beats = httpx.get(f"{stack.url}/health").json()["replicas"]
    return sum(b["expired"] for b in beats if b["role"] == "model")


def _wait_up(url: str, status: int = 200, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code in (status, 200):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not up")


def test_oversized_body_is_413_with_a_message(client: httpx.Client) -> None:
    huge = b'{"items": [' + b'{"card_id": "x"},' * 80_000 + b'{"card_id": "x"}]}'
    assert len(huge) > 1024 * 1024
    resp = client.post("/fair_price/batch", content=huge)
    assert resp.status_code == 413 and resp.json()["error"] == "too_large"
    assert client.get("/health").status_code == 200


def test_worker_probes_answer_for_kubernetes(stack) -> None:
    port = free_port()
    args = [sys.executable, "-m", "workers.cli", "worker", "decision", "--replica", "decision-probe"]
    child = stack.spawn("decision-probe", args, {"POKEWATCH_HEALTH_PORT": str(port)})
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, ready
        assert ready.json()["replica_id"] == "decision-probe" and ready.json()["role"] == "decision"
        assert httpx.get(f"{base}/livez").status_code == 200
        assert httpx.get(f"{base}/elsewhere").status_code == 404
    finally:
        child.process.terminate()
        assert child.process.wait(20) == 0
        stack.children.remove(child)
