"""A load generator for the fault tests: N pricing requests from a pool of connections."""

from __future__ import annotations

import asyncio
import threading

import httpx


def post_many(url: str, bodies: list[dict], concurrency: int = 32, timeout: float = 30) -> list[httpx.Response | None]:
    """POST every body to `url` with at most `concurrency` in flight; None where no answer came."""
    results: list[httpx.Response | None] = [None] * len(bodies)

    async def go() -> None:
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
            sem = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                async with sem:
                    try:
                        results[i] = await client.post(url, json=bodies[i])
                    except httpx.HTTPError:
                        results[i] = None

            await asyncio.gather(*(one(i) for i in range(len(bodies))))

    asyncio.run(go())
    return results


def in_background(url: str, bodies: list[dict], **kw: float) -> tuple[threading.Thread, list[list]]:
    """Start `post_many` in a thread; the results land in the returned box when it ends."""
    box: list[list] = []
    thread = threading.Thread(target=lambda: box.append(post_many(url, bodies, **kw)))  # type: ignore[arg-type]
    thread.start()
    return thread, box


def outcome(resp: httpx.Response | None) -> str:
    """The fault tests' tally: "200", "4xx/5xx" or "never answered"."""
    if resp is None:
        return "never answered"
    return "200" if resp.status_code == 200 else "4xx/5xx"
