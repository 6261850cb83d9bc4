"""API keys as stored in Redis: created and revoked by `pokewatch keys`, checked by the gateway.

Keys look like `pw_<key id>_<secret>`. Redis keeps, per key id, the key's
name, its SHA-256 hash and its rate (never the key itself), in the
`pokewatch:api-keys` hash, so every gateway replica sees the same keys and a
revocation reaches all of them. A random 192-bit secret needs no slow hash: a
leaked hash cannot be brute-forced back into a key.

The record format is a contract between the command line (which writes it)
and the gateway's edge (which reads it), so it lives here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from pydantic import BaseModel, Field

from contracts import keys

KEY_PREFIX = "pw"


class ApiKeyRecord(BaseModel):
    """What Redis keeps about one key (the secret only as a hash)."""

    key_id: str
    name: str
    sha256: str
    created_at: float
    revoked_at: float | None = None
    rate_per_s: float | None = Field(default=None, gt=0, description="overrides the default rate")

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def matches(self, secret: str) -> bool:
        """Whether `secret` is this key's (compared in constant time)."""
        return hmac.compare_digest(self.sha256, _hash(secret))


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """`pw_<id>_<secret>` -> (id, secret), or None if it is not shaped like a key."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class ApiKeyStore:
    """Create, list, revoke and verify keys in the `pokewatch:api-keys` hash.

    Args:
        redis: a `redis.asyncio.Redis` client.
    """

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def create(self, name: str, rate_per_s: float | None = None) -> tuple[str, ApiKeyRecord]:
        """A new key: returns the key (shown once, never stored) and its record."""
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(24)
        record = ApiKeyRecord(
            key_id=key_id, name=name, sha256=_hash(secret), created_at=time.time(), rate_per_s=rate_per_s
        )
        if not await self.redis.hsetnx(keys.API_KEYS_HASH, key_id, record.model_dump_json()):
            return await self.create(name, rate_per_s)  # a 32-bit id collided: draw again
        return f"{KEY_PREFIX}_{key_id}_{secret}", record

    async def list(self) -> list[ApiKeyRecord]:
        raw = await self.redis.hgetall(keys.API_KEYS_HASH)
        return sorted((ApiKeyRecord.model_validate_json(v) for v in raw.values()), key=lambda r: r.created_at)

    async def revoke(self, key_id: str) -> ApiKeyRecord | None:
        raw = await self.redis.hget(keys.API_KEYS_HASH, key_id)
        if raw is None:
            return None
        record = ApiKeyRecord.model_validate_json(raw)
        if record.active:
            record.revoked_at = time.time()
            await self.redis.hset(keys.API_KEYS_HASH, key_id, record.model_dump_json())
        return record

    async def verify(self, key: str) -> ApiKeyRecord | None:
        """The active record of a presented key, or None."""
        parts = split_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        raw = await self.redis.hget(keys.API_KEYS_HASH, key_id)
        if raw is None:
            return None
        record = ApiKeyRecord.model_validate_json(raw)
        return record if record.active and record.matches(secret) else None
