"""The API client against a local HTTP server serving recorded-shape responses."""

from __future__ import annotations

import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from workers.pipeline.schema import validate
from workers.pipeline.sources.base import SourceError
from workers.pipeline.sources.pokemonpricetracker import (
    PokemonPriceTrackerSource,
    SourceAuthError,
    SourceNotFoundError,
)
from workers.pipeline.tracked_cards import TrackedCard, TrackedCards

KEY = "test-key-placeholder"


def _card(card_id: str, nested: bool = False) -> dict:
    points = [
        {"date": "2026-11-01", "market": 10.0, "volume": 2},
        {"date": "2026-11-02", "market": 11.5, "volume": 0},
    ]
    history: object = {"conditions": {"Near Mint": {"history": points}}} if nested else points
    return {
        "id": card_id,
        "name": f"Card {card_id}",
        "setName": "151",
        "prices": {"market": 11.5},
        "priceHistory": history,
    }


class FakeAPI:
    """Scripted responses: a queue of (status, headers, body) per query key, then pages."""

    def __init__(self) -> None:
        self.script: dict[str, list[tuple[int, dict, object]]] = {}
        self.requests: list[dict] = []

    def handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                api.requests.append({"path": url.path, "query": q, "auth": self.headers.get("Authorization")})
                if self.headers.get("Authorization") != f"Bearer {KEY}":
                    return self._send(401, {}, {"error": "invalid key"})
                key = q.get("set") or q.get("cardId")
                queue = api.script.get(f"{key}@{q.get('offset', '0')}", [])
                status, headers, body = queue.pop(0) if queue else (404, {}, {"error": "not found"})
                return self._send(status, headers, body)

            def _send(self, status, headers, body):
                payload = json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


@pytest.fixture
def api():
    fake = FakeAPI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/api/v2"
    yield fake
    server.shutdown()
    server.server_close()


def _source(api, tracked, key=KEY, attempts=4):
    return PokemonPriceTrackerSource(key, tracked, base_url=api.url, attempts=attempts, timeout=5)


def test_pages_of_a_set_and_single_cards(api):
    api.script["sv3pt5@0"] = [
        (200, {}, {"data": [_card("sv3pt5-1"), _card("sv3pt5-2")], "metadata": {"hasMore": True}})
    ]
    api.script["sv3pt5@2"] = [(200, {}, {"data": [_card("sv3pt5-3", nested=True)], "metadata": {"hasMore": False}})]
    api.script["base1-4@0"] = [(200, {}, {"data": [_card("base1-4")], "metadata": {"hasMore": False}})]
    tracked = TrackedCards(sets=("sv3pt5",), cards=(TrackedCard("base1-4"),))
    df = _source(api, tracked).fetch(date(2026, 11, 3))
    assert sorted(df["card_id"].unique()) == ["base1-4", "sv3pt5-1", "sv3pt5-2", "sv3pt5-3"]
    assert len(df) == 8
    assert all(r["auth"] == f"Bearer {KEY}" for r in api.requests)
    assert api.requests[0]["query"]["includeHistory"] == "true"
    clean = validate(df).clean
    assert len(clean) == 8 and clean["volume"].notna().all()


def test_retries_429_and_5xx_then_succeeds(api):
    ok = (200, {}, {"data": [_card("x-1")], "metadata": {"hasMore": False}})
    api.script["x@0"] = [(429, {"Retry-After": "0"}, {}), (503, {}, {}), (500, {}, {}), ok]
    df = _source(api, TrackedCards(sets=("x",))).fetch(date.today())
    assert len(df) == 2
    assert len(api.requests) == 4


def test_gives_up_after_persistent_5xx(api):
    api.script["x@0"] = [(502, {}, {})] * 10
    with pytest.raises(SourceError, match="gave up after 3 attempts"):
        _source(api, TrackedCards(sets=("x",)), attempts=3).fetch(date.today())
    assert len(api.requests) == 3


def test_401_is_a_clear_auth_error_without_retry(api):
    with pytest.raises(SourceAuthError, match="POKEMONPRICETRACKER_API_KEY"):
        _source(api, TrackedCards(sets=("x",)), key="wrong").fetch(date.today())
    assert len(api.requests) == 1


def test_404_names_the_missing_set(api):
    with pytest.raises(SourceNotFoundError, match="nope"):
        _source(api, TrackedCards(sets=("nope",))).fetch(date.today())


def test_missing_key_fails_before_any_request():
    with pytest.raises(SourceAuthError, match="no API key"):
        PokemonPriceTrackerSource(None, TrackedCards())
