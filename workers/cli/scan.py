"""`pokewatch scan`: decide every tracked card now, with the version the replicas serve.

The scan a swap starts by itself (workers.serving.scan), on demand: after
prices were published without a new model, or to rebuild the signal changes'
baseline. It goes through the ordinary request path like any scan.
"""

from __future__ import annotations

import asyncio
import json

import typer

from contracts import keys
from workers.cli.common import broker, fail
from workers.config import WorkerSettings


def scan() -> None:
    """Scan the market: every card of the served catalog through the request path, once."""
    from contracts.connection import redis_client
    from workers.serving.scan import scan_requests, send_paced, serving_version

    settings = WorkerSettings()
    client = broker()
    try:
        version = serving_version(client.hgetall(keys.REPLICAS_HASH), 3 * settings.heartbeat_s)
        cards = sorted(c.decode() if isinstance(c, bytes) else str(c) for c in client.hkeys(keys.CATALOG_HASH))
        requests = scan_requests(cards, version, settings.scan_batch)

        async def send() -> None:
            paced = redis_client(settings.redis_url, max_connections=2, socket_timeout=10)
            try:
                await send_paced(paced, requests, settings.stream_maxlen)
            finally:
                await paced.aclose()

        asyncio.run(send())
    except Exception as exc:  # the broker or the replicas: say which and why
        fail(exc)
    typer.echo(json.dumps({"version": version, "cards": len(cards), "requests": len(requests)}))
