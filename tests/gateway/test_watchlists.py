"""Watchlists per API key on a real Redis: create, list, read, delete; another key's are invisible;
webhook URLs that point inside are refused unless allow-listed."""

from __future__ import annotations

import base64

import pytest
import redis

from contracts import keys
from contracts.webhooks import UnsafeWebhook, check_webhook_url
from tests.gateway.test_edge import _key

ITEMS = [
    {"card_id": "demo-00001", "rule": "signal", "signal": "BUY"},
    {"card_id": "demo-00002", "rule": "price_below", "target": 12.5},
    {"card_id": "demo-00003", "rule": "deviation", "deviation_pct": 20},
]


def test_each_key_sees_only_its_own_watchlists(gateway, broker_url: str) -> None:
    client = gateway(auth_required=True, rate_limit_per_s=1000, rate_limit_burst=1000)
    alice, bob = ({"x-api-key": _key(broker_url)} for _ in range(2))
    created = client.post("/watchlists", json={"name": "grails", "items": ITEMS}, headers=alice)
    assert created.status_code == 201, created.text
    mine = created.json()
    assert mine["webhook_secret"] is None and len(mine["items"]) == 3
    assert [w["id"] for w in client.get("/watchlists", headers=alice).json()] == [mine["id"]]
    assert client.get("/watchlists", headers=bob).json() == []
    assert client.get(f"/watchlists/{mine['id']}", headers=bob).status_code == 404
    assert client.delete(f"/watchlists/{mine['id']}", headers=bob).status_code == 404
    assert client.get(f"/watchlists/{mine['id']}", headers=alice).json()["name"] == "grails"
    assert client.get("/watchlists").status_code == 401
    assert client.delete(f"/watchlists/{mine['id']}", headers=alice).status_code == 204
    assert client.get(f"/watchlists/{mine['id']}", headers=alice).status_code == 404


def test_changes_tell_the_notifier_whose_watchlists_to_read_again(gateway, broker_url: str) -> None:
    client = gateway(auth_required=True, rate_limit_per_s=1000, rate_limit_burst=1000)
    key = _key(broker_url)
    r = redis.Redis.from_url(broker_url)
    before = int(r.get(keys.WATCHLIST_VERSION) or 0)
    created = client.post("/watchlists", json={"name": "g", "items": ITEMS}, headers={"x-api-key": key}).json()
    owners = {o.decode() for o in r.smembers(keys.WATCHLIST_OWNERS)}
    assert any(r.hexists(keys.watchlists_key(o), created["id"]) for o in owners), owners
    assert client.delete(f"/watchlists/{created['id']}", headers={"x-api-key": key}).status_code == 204
    assert int(r.get(keys.WATCHLIST_VERSION) or 0) == before + 2, "bumped by the create and the delete"
    other = client.get("/signals/stream", params={"watchlist": created["id"]}, headers={"x-api-key": key})
    assert other.status_code == 404, "a deleted (or another key's) watchlist cannot be followed"


def test_items_need_the_parameter_of_their_rule(gateway) -> None:
    client = gateway()
    for item, why in (
        ({"card_id": "a", "rule": "signal"}, "items.0.signal.signal: Field required"),
        ({"card_id": "a", "rule": "price_above", "target": 5, "signal": "BUY"}, "Extra inputs are not permitted"),
        ({"card_id": "a", "rule": "deviation", "deviation_pct": -3}, "greater than 0"),
        ({"card_id": "a", "rule": "teleport"}, "does not match any of the expected tags"),
    ):
        resp = client.post("/watchlists", json={"name": "x", "items": [item]})
        assert resp.status_code == 422 and why in resp.json()["message"], (item, resp.text)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/admin",
        "http://[::1]/hook",
        "http://localhost/hook",
        "ftp://example.com/hook",
        "https://user:pw@example.com/hook",
        "http://[::1/hook",  # unparseable (found by the API fuzzer: it was a 500)
    ],
)
def test_a_webhook_pointing_inside_is_refused_with_422(gateway, url: str) -> None:
    resp = gateway().post("/watchlists", json={"name": "x", "items": ITEMS[:1], "webhook_url": url})
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"] == ["body", "webhook_url"]


def test_an_allow_listed_receiver_is_accepted_and_gets_a_secret_once(gateway) -> None:
    client = gateway(webhook_allow="127.0.0.1/32")
    url = "http://127.0.0.1:9/hook"
    created = client.post("/watchlists", json={"name": "x", "items": ITEMS[:1], "webhook_url": url}).json()
    assert created["webhook_secret"].startswith("whsec_") and created["webhook_url"] == url
    # The Standard Webhooks form: base64 of 24 random bytes, which a receiver's library reads.
    assert len(base64.b64decode(created["webhook_secret"].removeprefix("whsec_"), validate=True)) == 24
    assert "webhook_secret" not in client.get(f"/watchlists/{created['id']}").json()
    assert (
        client.post(
            "/watchlists", json={"name": "x", "items": ITEMS[:1], "webhook_url": "http://10.0.0.1/"}
        ).status_code
        == 422
    )


def test_every_resolved_address_must_be_public() -> None:
    # A name that resolves to a public and a private address (DNS rebinding) is refused.
    both = lambda host, port: ["93.184.216.34", "10.0.0.7"]  # noqa: E731
    with pytest.raises(UnsafeWebhook, match=r"10\.0\.0\.7"):
        check_webhook_url("https://hooks.example/x", resolver=both)
    public = lambda host, port: ["93.184.216.34"]  # noqa: E731
    assert check_webhook_url("https://hooks.example/x", resolver=public) == "https://hooks.example/x"
    assert check_webhook_url("https://hooks.internal/x", allow="hooks.internal", resolver=both)


def test_a_wrong_method_names_every_method_of_the_path(gateway) -> None:
    resp = gateway().put("/watchlists/abc")
    assert resp.status_code == 405 and resp.headers["allow"] == "DELETE, GET"
    assert resp.json()["error"] == "method_not_allowed" and resp.json()["message"] == "Method Not Allowed"


def test_a_key_keeps_at_most_the_quota_of_watchlists(gateway) -> None:
    from contracts.watchlists import MAX_WATCHLISTS

    client = gateway()
    for _ in range(MAX_WATCHLISTS):
        assert client.post("/watchlists", json={"name": "x", "items": ITEMS[:1]}).status_code == 201
    over = client.post("/watchlists", json={"name": "x", "items": ITEMS[:1]})
    assert over.status_code == 409 and "at most" in over.json()["message"]
