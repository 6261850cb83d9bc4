"""The browsing and health routes read what the workers publish in Redis."""

from __future__ import annotations

import json
import time
from datetime import date

import orjson
import redis

from contracts import keys
from contracts.history import day_number
from contracts.messages import Heartbeat


def _publish_catalog(url: str) -> None:
    r = redis.Redis.from_url(url)
    cards = {
        "base1-4": ("Charizard", "Base Set"),
        "base1-2": ("Blastoise", "Base Set"),
        "sv3-1": ("Charmander", "Obsidian Flames"),
    }
    r.hset(
        keys.CATALOG_HASH,
        mapping={
            cid: json.dumps(
                {
                    "card_id": cid,
                    "card_name": name,
                    "set_name": set_name,
                    "currency": "USD",
                    "first_date": "2024-01-01",
                    "last_date": "2024-01-03",
                    "last_price": 10.0,
                    "observations": 3,
                }
            )
            for cid, (name, set_name) in cards.items()
        },
    )
    days = [day_number(date(2024, 1, d)) for d in (1, 2, 3)]
    doc = orjson.dumps({"days": days, "price": [9.0, 9.5, 10.0], "volume": [None, 2.0, None]})
    r.hset(keys.HISTORY_HASH, "base1-4", doc)
    r.set(keys.CATALOG_VERSION_KEY, "1")
    r.close()


def test_cards_are_filtered_by_name_id_and_set_and_paged(gateway, broker_url: str) -> None:
    _publish_catalog(broker_url)
    client = gateway()
    everything = client.get("/cards").json()
    assert everything["total"] == 3 and [c["card_id"] for c in everything["items"]] == ["base1-2", "base1-4", "sv3-1"]
    assert [c["card_id"] for c in client.get("/cards", params={"q": "char"}).json()["items"]] == ["base1-4", "sv3-1"]
    assert client.get("/cards", params={"set_name": "obsidian"}).json()["total"] == 1
    page = client.get("/cards", params={"page": 2, "page_size": 2}).json()
    assert (page["total"], [c["card_id"] for c in page["items"]]) == (3, ["sv3-1"])


def test_history_is_the_served_points_between_the_dates(gateway, broker_url: str) -> None:
    _publish_catalog(broker_url)
    client = gateway()
    points = client.get("/cards/base1-4/history").json()["points"]
    assert points == [
        {"date": "2024-01-01", "market_price": 9.0, "volume": None},
        {"date": "2024-01-02", "market_price": 9.5, "volume": 2.0},
        {"date": "2024-01-03", "market_price": 10.0, "volume": None},
    ]
    some = client.get("/cards/base1-4/history", params={"start": "2024-01-02", "end": "2024-01-02"}).json()
    assert [p["date"] for p in some["points"]] == ["2024-01-02"]


def test_health_is_degraded_until_both_roles_are_live(gateway, broker_url: str) -> None:
    client = gateway()
    assert client.get("/health").json()["status"] == "degraded"
    r = redis.Redis.from_url(broker_url)
    now = time.time()
    for role, rid in (("model", "model-a"), ("decision", "decision-a")):
        beat = Heartbeat(replica_id=rid, role=role, model_version="4" if role == "model" else None, host="h", pid=1,
                         started_at=now, last_seen=now)  # fmt: skip
        r.hset(keys.REPLICAS_HASH, rid, beat.model_dump_json())
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["model_versions"] == ["4"]
    assert {x["replica_id"]: x["live"] for x in body["replicas"]} == {"decision-a": True, "model-a": True}
    r.close()


def test_the_openapi_schema_documents_the_rule_and_reason_of_each_signal() -> None:
    from gateway.main import create_app

    schema = create_app().openapi()
    response = schema["components"]["schemas"]["FairPriceResponse"]
    assert {"rule", "reason", "expected_move_pct", "expected_move_low_pct", "typical_move_pct"} <= set(
        response["required"]
    )
    rule = response["properties"]["rule"]
    assert (
        rule["enum"] == ["fixed", "volatility", "probability", "momentum", "reversion", "none"]
        and "POKEWATCH_TRADE_FEE" in rule["description"]
    )
    assert "expected move" in response["properties"]["reason"]["description"]


def test_operation_ids_read_as_what_a_generated_client_calls() -> None:
    from gateway.main import create_app

    ids = {
        (method.upper(), path): op["operationId"]
        for path, ops in create_app().openapi()["paths"].items()
        for method, op in ops.items()
    }
    assert ids == {
        ("GET", "/health"): "get_health",
        ("POST", "/fair_price"): "get_fair_price",
        ("POST", "/fair_price/batch"): "get_fair_prices",
        ("GET", "/cards"): "list_cards",
        ("GET", "/cards/{card_id}/history"): "get_card_history",
        ("GET", "/watchlists"): "list_watchlists",
        ("POST", "/watchlists"): "create_watchlist",
        ("GET", "/watchlists/{watchlist_id}"): "get_watchlist",
        ("DELETE", "/watchlists/{watchlist_id}"): "delete_watchlist",
    }


def test_the_signal_stream_refuses_a_bad_resume_id_and_needs_a_key_when_auth_is_on(gateway) -> None:
    client = gateway()
    bad = client.get("/signals/stream", headers={"last-event-id": "0-0\nevent: forged"})
    assert bad.status_code == 422 and "Last-Event-ID" in bad.json()["message"]
    assert client.get("/signals/stream", params={"card_id": "x" * 129}).status_code == 422
    locked = gateway(auth_required=True)
    assert locked.get("/signals/stream").status_code == 401


def test_the_signal_stream_is_refused_with_503_when_every_slot_is_taken(gateway) -> None:
    client = gateway(sse_max_clients=1)
    slots = client.app.state.followers.slots  # type: ignore[attr-defined]
    client.portal.call(slots.acquire)  # type: ignore[union-attr]
    refused = client.get("/signals/stream")
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
