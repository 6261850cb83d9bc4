"""Every error has the `{error, message, detail}` shape; dates are `YYYY-MM-DD` strings only."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("date", [0, 20240601, "0", "2024-06-01T00:00:00", "01/06/2024", True])
def test_a_date_that_is_not_an_iso_string_is_422(gateway, fast_path: bool, date: object) -> None:
    client = gateway(gateway_fast_path=fast_path)
    for path, body in (
        ("/fair_price", {"card_id": "x", "date": date}),
        ("/fair_price/batch", {"items": [{"card_id": "x", "date": date}]}),
    ):
        resp = client.post(path, json=body)
        assert resp.status_code == 422, (path, date, resp.text)
        err = resp.json()
        assert err["error"] == "invalid_input" and "date" in err["message"], err
        assert "YYYY-MM-DD" in err["message"]


@pytest.mark.parametrize("start", ["0", "1700000000", "2024-6-1"])
def test_history_dates_are_iso_strings_only(gateway, start: str) -> None:
    resp = gateway().get("/cards/x/history", params={"start": start})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"] == "invalid_input" and "start" in resp.json()["message"]


def test_without_a_live_model_worker_pricing_is_503_with_the_way_out(gateway) -> None:
    resp = gateway().post("/fair_price", json={"card_id": "x", "date": "2024-06-01"})
    assert resp.status_code == 503
    assert resp.json() == {
        "error": "unavailable",
        "message": "no live model worker: start one with `pokewatch worker model`",
        "detail": None,
    }


def test_unknown_card_history_is_404_in_the_same_shape(gateway) -> None:
    resp = gateway().get("/cards/nope/history")
    assert resp.status_code == 404
    assert resp.json() == {"error": "not_found", "message": "unknown card 'nope'", "detail": None}


def test_unknown_fields_and_malformed_json_are_422(gateway) -> None:
    client = gateway()
    assert client.post("/fair_price", json={"card_id": "x", "extra": 1}).json()["error"] == "invalid_input"
    resp = client.post("/fair_price", content=b"{nope")
    assert resp.status_code == 422 and resp.json()["error"] == "invalid_input"
