"""A small, fast HTTP/1.1 load generator: N keep-alive connections, fixed request, bounded time.

Runs as its own process so that its CPU is not the server's. Written on raw
asyncio streams (a prebuilt request, Content-Length parsing) because a
general client (httpx) costs more CPU per request than the servers under
test. It measures its own CPU time and prints one JSON line:

    {"requests", "errors", "non_2xx", "seconds", "rps", "p50_ms", "p95_ms", "p99_ms", "client_cpu_s"}

    python bench/loadgen.py --url http://127.0.0.1:8000/fair_price --body '{"card_id": "x"}' -c 64 -d 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np


def _request(host: str, port: int, path: str, body: bytes | None, headers: list[str] | None = None) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers or [])
    if body is None:
        return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _connection(
    host: str, port: int, request: bytes, stop_at: float, latencies: list[float], counts: dict[str, Any]
) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        counts["errors"] += 1
        return
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            if not status_line:
                counts["errors"] += 1
                return
            status = int(status_line.split(b" ", 2)[1])
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            payload = await reader.readexactly(length) if length else b""
            latencies.append(time.perf_counter() - started)
            if status >= 300:
                counts["non_2xx"] += 1
                counts.setdefault("first_error", f"HTTP {status}: {payload[:200]!r}")
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        counts["errors"] += 1
        counts.setdefault("first_error", repr(exc)[:200])  # type: ignore[arg-type]
    finally:
        writer.close()


async def run(
    url: str, body: bytes | None, connections: int, duration: float, headers: list[str] | None = None
) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = _request(host, port, parts.path or "/", body, headers)
    latencies: list[float] = []
    counts: dict[str, Any] = {"errors": 0, "non_2xx": 0}
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    stop_at = started + duration
    await asyncio.gather(*(_connection(host, port, request, stop_at, latencies, counts) for _ in range(connections)))
    seconds = time.perf_counter() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    lat = np.array(latencies) * 1000 if latencies else np.array([float("nan")])
    return {
        "requests": len(latencies),
        "errors": counts["errors"],
        "non_2xx": counts["non_2xx"],
        "seconds": round(seconds, 3),
        "rps": round(len(latencies) / seconds, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p95_ms": round(float(np.percentile(lat, 95)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "client_cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2),
        **({"first_error": counts["first_error"]} if "first_error" in counts else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", default=None, help="JSON body (POST); omitted: GET")
    parser.add_argument("-c", "--connections", type=int, default=64)
    parser.add_argument("-d", "--duration", type=float, default=5.0)
    parser.add_argument("-H", "--header", action="append", default=[], help="extra header, e.g. 'X-API-Key: ...'")
    opts = parser.parse_args()
    body = opts.body.encode() if opts.body is not None else None
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(opts.url, body, opts.connections, opts.duration, opts.header))))


if __name__ == "__main__":
    main()
