"""The edge in front of every route: body size, API keys, rate limits (keys in real Redis)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from contracts.api_keys import ApiKeyStore


def _key(url: str, rate: float | None = None, revoke: bool = False) -> str:
    async def go() -> str:
        client = aioredis.Redis.from_url(url)
        store = ApiKeyStore(client)
        key, record = await store.create("test", rate)
        if revoke:
            await store.revoke(record.key_id)
        await client.aclose()
        return key

    return asyncio.run(go())


def test_a_body_over_the_limit_is_413_before_it_is_read(gateway) -> None:
    client = gateway(max_body_bytes=1024)
    resp = client.post("/fair_price/batch", content=b"x" * 2048)
    assert resp.status_code == 413 and resp.json()["error"] == "too_large"


def test_with_auth_on_a_key_is_needed_and_checked(gateway, broker_url: str) -> None:
    client = gateway(auth_required=True)
    missing = client.get("/cards")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/cards", headers={"X-API-Key": "pw_nope_nope"}).status_code == 401
    revoked = _key(broker_url, revoke=True)
    assert client.get("/cards", headers={"X-API-Key": revoked}).status_code == 401
    good = _key(broker_url)
    assert client.get("/cards", headers={"X-API-Key": good}).status_code == 200
    assert client.get("/cards", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    assert client.get("/health").status_code in (200, 503), "health stays public"


def test_a_key_past_its_rate_gets_429_with_retry_after(gateway, broker_url: str) -> None:
    client = gateway(auth_required=True, rate_limit_burst=2)
    key = _key(broker_url, rate=0.01)
    codes = [client.get("/cards", headers={"X-API-Key": key}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = client.get("/cards", headers={"X-API-Key": key})
    assert limited.json()["error"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
