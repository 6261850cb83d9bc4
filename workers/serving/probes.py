"""Kubernetes probes of a worker replica: `/livez` and `/readyz` on POKEWATCH_HEALTH_PORT,
and its Prometheus metrics at `/metrics` (workers.serving.metrics).

A minimal HTTP/1.1 answer on a plain asyncio server: the worker has no web
framework, and a probe needs none.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

# A probe answers a path with a status and a JSON body, or with the metrics text.
Probe = Callable[[str], tuple[int, dict[str, Any] | bytes]]
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def answer(age_s: float | None, heartbeat_s: float, body: dict[str, Any], path: str) -> tuple[int, dict[str, Any]]:
    """`/livez` while the event loop runs; `/readyz` while the last heartbeat
    reached the broker within 3 periods."""
    body = {**body, "seconds_since_heartbeat": round(age_s, 2) if age_s is not None else None}
    if path == "/livez":
        return 200, body
    if path == "/readyz":
        ready = age_s is not None and age_s <= 3 * heartbeat_s
        return (200 if ready else 503), body
    return 404, {"error": "not_found", "message": "probes: /livez, /readyz"}


async def serve(probe: Probe, host: str, port: int) -> asyncio.Server:
    """Start the probe server; `probe(path)` gives the status and JSON body."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 2)
            parts = line.decode("latin-1").split()
            status, body = probe(parts[1].split("?")[0] if len(parts) > 1 else "/")
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            kind = METRICS_TYPE if isinstance(body, bytes) else "application/json"
            writer.write(
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Ready'}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
