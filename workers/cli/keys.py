"""`pokewatch keys ...` and `pokewatch redis-acl`: who may use the gateway and the broker."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from contracts.api_keys import ApiKeyStore
from contracts.connection import redis_client
from contracts.settings import BrokerSettings, redacted
from workers.cli.common import console

app = typer.Typer(help="Gateway API keys (stored hashed in Redis; REDIS_URL selects the broker).")


def _with_store(action: Callable[[ApiKeyStore], Awaitable[Any]]) -> Any:
    """Run `action(store)` against the broker of REDIS_URL; a clear error if it is unreachable."""
    import redis.asyncio as aioredis

    url = BrokerSettings().redis_url

    async def go() -> Any:
        client = redis_client(url, max_connections=2, socket_timeout=5)
        try:
            return await action(ApiKeyStore(client))
        finally:
            await client.aclose()

    try:
        return asyncio.run(go())
    except (aioredis.RedisError, OSError) as exc:
        console.print(f"[red]cannot reach the broker at {redacted(url)}: {exc}[/red] (set REDIS_URL)")
        raise typer.Exit(2) from None


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="who or what the key is for")],
    rate: Annotated[float | None, typer.Option("--rate", min=0.001, help="requests/s (default: the gateway's)")] = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    key, record = _with_store(lambda store: store.create(name, rate))
    console.print(f"key id {record.key_id} for {name!r}; send it as `X-API-Key: <key>`. It is not shown again:")
    print(key)


@app.command("list")
def list_keys() -> None:
    """Every key: id, name, created, revoked, rate (never the key)."""
    records = _with_store(lambda store: store.list())
    table = Table(title=f"API keys ({len(records)})")
    for col in ("key id", "name", "created (UTC)", "revoked (UTC)", "rate/s"):
        table.add_column(col)

    def when(ts: float | None) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else ""

    for r in records:
        table.add_row(
            r.key_id, r.name, when(r.created_at), when(r.revoked_at), f"{r.rate_per_s:g}" if r.rate_per_s else "default"
        )
    Console().print(table)  # data goes to stdout


@app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key id shown by `keys list`")]) -> None:
    """Revoke a key: every gateway refuses it within seconds (their cache)."""
    record = _with_store(lambda store: store.revoke(key_id))
    if record is None:
        console.print(f"[red]no key with id {key_id!r}[/red]")
        raise typer.Exit(1)
    console.print(f"key {key_id} ({record.name}) revoked")


def redis_acl(
    from_env: Annotated[
        bool, typer.Option("--from-env", help="fill passwords from REDIS_<ROLE>_PASSWORD (else placeholders)")
    ] = False,
) -> None:
    """Print the Redis ACL file: one user per role (gateway, worker, pipeline, admin), default user off."""
    from contracts.acl import ROLE_RULES, acl_file

    passwords = {}
    if from_env:
        missing = [r for r in ROLE_RULES if not os.environ.get(f"REDIS_{r.upper()}_PASSWORD")]
        if missing:
            console.print(f"[red]missing: {', '.join(f'REDIS_{r.upper()}_PASSWORD' for r in missing)}[/red]")
            raise typer.Exit(2)
        passwords = {r: os.environ[f"REDIS_{r.upper()}_PASSWORD"] for r in ROLE_RULES}
    print(acl_file(passwords), end="")
