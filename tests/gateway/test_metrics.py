"""The gateway's /metrics: every request counted by route template and status, edge refusals included."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_are_counted_by_route_template_never_by_card_id(gateway) -> None:
    client = gateway()
    for card in ("demo-00001", "demo-00002", "<script>"):
        client.get(f"/cards/{card}/history")
    client.get("/no/such/path")
    client.post("/fair_price", json={"card_id": "x"})  # the fast path: no live model worker -> 503
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    got = samples(resp.text)
    cards = [
        (k, v)
        for k, v in got.items()
        if k[0] == "pokewatch_gateway_requests_total" and ("route", "/cards/{card_id}/history") in k[1]
    ]
    assert sum(v for _, v in cards) == 3, cards
    assert (
        got[
            (
                "pokewatch_gateway_requests_total",
                frozenset({("route", "unmatched"), ("method", "GET"), ("status", "404")}),
            )
        ]
        == 1
    )
    fast = [
        v for k, v in got.items() if k[0] == "pokewatch_gateway_requests_total" and ("route", "/fair_price") in k[1]
    ]
    assert fast == [1.0]
    assert "demo-00001" not in resp.text and "<script>" not in resp.text
    assert got[("pokewatch_gateway_requests_in_flight", frozenset())] == 1, "the scrape itself"
    assert ("pokewatch_gateway_replies_waiting", frozenset()) in got


def test_edge_refusals_are_counted_and_metrics_need_a_key_when_auth_is_on(gateway) -> None:
    client = gateway(auth_required=True)
    assert client.get("/cards").status_code == 401
    assert client.get("/metrics").status_code == 401
    from tests.gateway.test_edge import _key

    key = _key(client.app.state.settings.redis_url)  # type: ignore[attr-defined]
    resp = client.get("/metrics", headers={"authorization": f"Bearer {key}"})
    assert resp.status_code == 200
    got = samples(resp.text)
    assert got[("pokewatch_gateway_rejected_total", frozenset({("status", "401")}))] == 2


def test_metrics_can_be_turned_off(gateway) -> None:
    assert gateway(metrics=False).get("/metrics").status_code == 404
