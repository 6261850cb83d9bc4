"""A load generator for the fault tests: N pricing requests from a pool of connections."""

from __future__ import annotations

import asyncio
import threading

import httpx


def post_many(
    url: str, bodies: list[dict], concurrency: int = 32, timeout: float = 30
) -> list[httpx.Response | Exception | None]:
    """POST every body to `url` with at most `concurrency` in flight; the client's error where no answer came."""
    results: list[httpx.Response | Exception | None] = [None] * len(bodies)

    async def go() -> None:
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
            sem = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                async with sem:
                    try:
                        results[i] = await client.post(url, json=bodies[i])
                    except httpx.HTTPError as exc:
                        results[i] = exc

            await asyncio.gather(*(one(i) for i in range(len(bodies))))

    asyncio.run(go())
    return results


def in_background(url: str, bodies: list[dict], **kw: float) -> tuple[threading.Thread, list[list]]:
    """Start `post_many` in a thread; the results land in the returned box when it ends."""
    box: list[list] = []
    thread = threading.Thread(target=lambda: box.append(post_many(url, bodies, **kw)))  # type: ignore[arg-type]
    thread.start()
    return thread, box


def outcome(resp: httpx.Response | Exception | None) -> str:
    """The fault tests' tally: "200", "4xx/5xx" or "never answered" (with the client's error)."""
    if resp is None or isinstance(resp, Exception):
        return "never answered" + (f" ({type(resp).__name__}: {resp})" if resp is not None else "")
    return "200" if resp.status_code == 200 else "4xx/5xx"
