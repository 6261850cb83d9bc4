"""A stopping replica leaves nothing behind: no heartbeat, no consumer, nothing pending for it.

A read the server was still serving when the subscribers stopped (a blocked
XREADGROUP) can deliver entries to this replica, or create its consumer
again after its deletion. So: let one block period pass, answer whatever was
delivered to us, delete the consumers, check; up to three times.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from workers.serving.entries import Entry

logger = logging.getLogger(__name__)

Handler = Callable[[list[Entry], bool], Awaitable[None]]


async def release_consumers(
    redis: Any, stream: str, group: str, mine: set[str], block_s: float, batch: int, handle: Handler
) -> None:
    """Answer what was delivered to the consumers `mine`, then delete them from the group."""
    for _ in range(3):
        await asyncio.sleep(block_s)
        drained = await drain_own_pending(
            redis, stream, group, mine & await consumers(redis, stream, group), batch, handle
        )
        if drained:
            logger.info("answered %d entries delivered while stopping", drained)
        for consumer in mine:
            info = await redis.xpending_range(stream, group, "-", "+", 1, consumername=consumer)
            if not info:
                await redis.xgroup_delconsumer(stream, group, consumer)
        await asyncio.sleep(block_s)
        if not (mine & await consumers(redis, stream, group)):
            return


async def consumers(redis: Any, stream: str, group: str) -> set[str]:
    return {c["name"].decode() for c in await redis.xinfo_consumers(stream, group)}


async def drain_own_pending(
    redis: Any, stream: str, group: str, existing: set[str], batch: int, handle: Handler
) -> int:
    """Handle the entries pending for these existing consumers (read, never
    answered). Reading as a consumer that does not exist would create it, so
    callers pass only existing ones."""
    handled = 0
    for consumer in sorted(existing):
        seen: set[bytes] = set()
        while True:
            reply: list[tuple[bytes, list[Entry]]] = await redis.xreadgroup(group, consumer, {stream: "0"}, count=batch)
            items = [(i, f) for _, entries in reply for i, f in entries if i not in seen]
            if not items:
                break
            seen.update(i for i, _ in items)
            gone = [i for i, f in items if not f]  # trimmed from the stream meanwhile
            if gone:
                await redis.xack(stream, group, *gone)
            await handle([(i, f) for i, f in items if f], True)
            handled += len(items)
    return handled
