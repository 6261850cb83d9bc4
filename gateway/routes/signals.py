"""`GET /signals/stream`: signal changes as Server-Sent Events, resumable with Last-Event-ID.

Each event is one entry of `pokewatch:signal-changes` (a `SignalChanged`):
`id:` is the stream entry id, so a browser's EventSource that reconnects
sends it back as `Last-Event-ID` and resumes right after it, missing nothing
the stream still holds (it is capped near POKEWATCH_CHANGES_MAXLEN entries).
Without one the stream starts at the newest change. Streams read on their
own connection pool, at most `sse_max_clients` at once per gateway process,
so followers never take connections from the request path.

`card_id` (repeatable) keeps only those cards; `watchlist` only the cards of
one of the caller's watchlists (404 for anyone else's).

Errors: 422 for a Last-Event-ID that is not a stream entry id or a bad card
id, 401 / 429 from the edge as on every route, 503 when every slot is taken
or the broker is away.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from contracts import keys
from contracts.messages import CardId
from gateway.errors import ApiError
from gateway.routes.watchlists import stored_watchlist

router = APIRouter(tags=["signals"])

ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")
# A read blocks this long; an idle stream then gets a comment line, which keeps
# proxies from closing it and lets the gateway notice a client that left.
READ_BLOCK_MS = 5000
RETRY_MS = 2000


class Followers:
    """The connection pool and the slots of one gateway process's event streams."""

    def __init__(self, redis: Any, max_clients: int) -> None:
        self.redis = redis
        self.slots = asyncio.Semaphore(max_clients)

    async def latest_id(self) -> str:
        newest = await self.redis.xrevrange(keys.SIGNAL_CHANGES_STREAM, count=1)
        if not newest:
            return "0-0"
        entry_id = newest[0][0]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def followers_of(request: Request) -> Followers:
    return request.app.state.followers  # type: ignore[no-any-return]


def event(entry_id: str, payload: bytes) -> bytes:
    """One SSE event. The payload is compact JSON, one line (newlines inside strings are escaped)."""
    return b"id: " + entry_id.encode() + b"\nevent: signal_change\ndata: " + payload + b"\n\n"


# Not in the OpenAPI schema: a response that never ends cannot be described
# there, and a client generated from the schema (or a fuzzer) would wait on it
# forever. docs/subscribers/sse.md documents it.
@router.get("/signals/stream", response_class=StreamingResponse, include_in_schema=False)
async def signal_changes(
    request: Request,
    card_id: Annotated[list[CardId] | None, Query(max_length=100, description="only these cards")] = None,
    watchlist: Annotated[
        str | None, Query(min_length=1, max_length=64, description="only the cards of this watchlist of yours")
    ] = None,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=41, description="resume after this event id")
    ] = None,
) -> StreamingResponse:
    """Follow signal changes live (text/event-stream), optionally for some cards only."""
    if last_event_id is not None and not ENTRY_ID.fullmatch(last_event_id):
        raise ApiError(422, f"Last-Event-ID must be a stream entry id like 1700000000000-0, got {last_event_id!r}")
    followers = followers_of(request)
    if followers.slots.locked():
        raise ApiError(503, "too many signal streams on this gateway; retry later", headers=[(b"retry-after", b"5")])
    try:
        start = last_event_id or await followers.latest_id()
    except (aioredis.RedisError, OSError) as exc:
        raise ApiError(503, f"broker unreachable: {exc}") from exc
    wanted = set(card_id or ())
    if watchlist is not None:
        followed = {item.card_id for item in (await stored_watchlist(request, watchlist)).items}
        wanted = wanted & followed if wanted else followed
        wanted = wanted or {""}  # no card of the list is asked for: nothing passes

    async def events() -> AsyncIterator[bytes]:
        async with followers.slots:
            last = start
            yield f"retry: {RETRY_MS}\n\n".encode()
            while not await request.is_disconnected():
                read = await followers.redis.xread({keys.SIGNAL_CHANGES_STREAM: last}, count=200, block=READ_BLOCK_MS)
                if not read:
                    yield b": idle\n\n"
                    continue
                for raw_id, fields in read[0][1]:
                    last = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                    payload = fields.get(keys.PAYLOAD_FIELD.encode(), b"{}")
                    if wanted and json.loads(payload).get("card_id") not in wanted:
                        continue
                    yield event(last, payload)

    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
