"""The edge with auth on: API keys from the CLI, a rate limit shared by two gateways, CORS, size limits.

Real processes: the session's server, two uvicorn gateways, model and
decision workers; keys are created and revoked with `pokewatch keys`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import httpx
import pytest
import redis

from contracts import keys
from tests.e2e.conftest import make_stack
from workers.local.embedded import free_port

ORIGIN = "https://app.example"


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "keys", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _create(url: str, *args: str) -> str:
    out = _cli(url, "create", *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def secured(redis_server, champion_data_dir):
    stack = make_stack(
        redis_server,
        champion_data_dir,
        db=10,
        POKEWATCH_AUTH_REQUIRED="true",
        POKEWATCH_RATE_LIMIT_PER_S="1",
        POKEWATCH_RATE_LIMIT_BURST="5",
        POKEWATCH_CORS_ORIGINS=json.dumps([ORIGIN]),
    )
    stack.start(timeout=180)
    second = free_port()
    stack.spawn_gateway("gateway-2", port=second)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{second}/health").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    yield stack, f"http://127.0.0.1:{second}"
    stack.stop()


def test_public_paths_need_no_key_and_the_rest_does(secured) -> None:
    stack, _ = secured
    for path in ("/health", "/docs", "/openapi.json"):
        assert httpx.get(stack.url + path).status_code == 200, path
    for method, path in (("POST", "/fair_price"), ("POST", "/fair_price/batch"), ("GET", "/cards")):
        resp = httpx.request(method, stack.url + path, json={"card_id": "x"})
        assert resp.status_code == 401, (path, resp.text)
        assert "API key" in resp.json()["message"] and resp.headers["www-authenticate"].startswith("Bearer")
    schema = httpx.get(stack.url + "/openapi.json").json()
    assert schema["components"]["securitySchemes"]["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schema["paths"]["/fair_price"]["post"]["security"] == [{"ApiKey": []}, {"Bearer": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert {"401", "413", "429"} <= set(schema["paths"]["/fair_price"]["post"]["responses"])
    bad = httpx.get(stack.url + "/cards", headers={"X-API-Key": "pw_deadbeef_not-a-real-secret"})
    assert bad.status_code == 401 and bad.json()["message"] == "invalid or revoked API key"


def test_created_key_works_is_stored_hashed_and_revocation_reaches_every_gateway(secured) -> None:
    stack, second = secured
    key = _create(stack.broker_url, "--name", "collector", "--rate", "50")
    key_id = key.split("_")[1]
    for base in (stack.url, second):
        card = httpx.get(f"{base}/cards", headers={"X-API-Key": key}).json()["items"][0]["card_id"]
        resp = httpx.post(f"{base}/fair_price", json={"card_id": card}, headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
    stored = redis.Redis.from_url(stack.broker_url).hget(keys.API_KEYS_HASH, key_id)
    assert stored is not None and key.split("_", 2)[2].encode() not in stored, "only the hash is stored"
    listed = _cli(stack.broker_url, "list")
    assert key_id in listed.stdout and "collector" in listed.stdout and key not in listed.stdout

    assert _cli(stack.broker_url, "revoke", key_id).returncode == 0
    assert _cli(stack.broker_url, "revoke", "00000000").returncode == 1
    deadline = time.monotonic() + 8  # gateways cache a key for 5 s
    statuses: set[int] = set()
    while time.monotonic() < deadline:
        statuses = {httpx.get(f"{base}/cards", headers={"X-API-Key": key}).status_code for base in (stack.url, second)}
        if statuses == {401}:
            break
        time.sleep(0.5)
    assert statuses == {401}


def test_rate_limit_is_per_key_and_shared_by_gateways(secured) -> None:
    stack, second = secured
    slow = _create(stack.broker_url, "--name", "slow")  # the gateways' default: 1/s, burst 5
    other = _create(stack.broker_url, "--name", "other")
    outcomes: Counter[int] = Counter()
    retry_after = set()
    started = time.monotonic()
    for i in range(16):
        resp = httpx.get(f"{(stack.url, second)[i % 2]}/cards", headers={"X-API-Key": slow})
        outcomes[resp.status_code] += 1
        if resp.status_code == 429:
            retry_after.add(int(resp.headers["retry-after"]))
            assert "rate limit" in resp.json()["message"]
    elapsed = time.monotonic() - started
    print(f"\n16 requests over two gateways in {elapsed:.1f} s with one key (1/s, burst 5): {dict(outcomes)}")
    assert outcomes[200] <= 5 + int(elapsed) + 1 and outcomes[429] >= 8, outcomes
    assert retry_after and min(retry_after) >= 1
    assert httpx.get(f"{stack.url}/cards", headers={"X-API-Key": other}).status_code == 200, "other keys unaffected"


def test_cors_and_body_limits(secured) -> None:
    stack, _ = secured
    pre = httpx.options(
        f"{stack.url}/fair_price",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key",
        },
    )
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == ORIGIN
    other = httpx.options(
        f"{stack.url}/fair_price", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in other.headers
    big = httpx.post(f"{stack.url}/fair_price", content=b"x" * (1024 * 1024 + 1))
    assert big.status_code == 413 and "body over" in big.json()["message"]

    def chunks():
        for _ in range(20):
            yield b"y" * 65536

    key = _create(stack.broker_url, "--name", "uploader")
    streamed = httpx.post(f"{stack.url}/fair_price", content=chunks(), headers={"X-API-Key": key})
    assert streamed.status_code == 413 and "body over" in streamed.json()["message"]
