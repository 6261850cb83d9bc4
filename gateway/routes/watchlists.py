"""`/watchlists`: each API key's watchlists (contracts.watchlists); another key's are invisible (404).

Every change also adds the owner to `pokewatch:watchlist-owners` and bumps
`pokewatch:watchlist-version`, in the same transaction, so the notifier knows
whose watchlists to read and when to read them again.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time

import redis.asyncio as aioredis
from fastapi import APIRouter, Request, Response

from contracts import keys
from contracts.watchlists import MAX_WATCHLISTS, StoredWatchlist, Watchlist, WatchlistCreated, WatchlistIn
from contracts.webhooks import Unresolved, UnsafeWebhook, check_webhook_url
from gateway.errors import ApiError
from gateway.routes import EDGE_ERRORS, broker_of
from gateway.schemas import ErrorBody

router = APIRouter(tags=["watchlists"])
ERRORS = {
    **EDGE_ERRORS,
    400: {"model": ErrorBody, "description": "the body is not JSON"},
    404: {"model": ErrorBody},
    409: {"model": ErrorBody, "description": "the key already keeps the most watchlists it may"},
    422: {"model": ErrorBody},
    503: {"model": ErrorBody},
}
LOCAL_OWNER = "local"


def owner_of(request: Request) -> str:
    """The API key id that asked (set by the edge), or `local` when the gateway runs without keys."""
    return str(getattr(request.state, "key_id", None) or LOCAL_OWNER)


async def stored_watchlists(request: Request) -> dict[str, StoredWatchlist]:
    try:
        raw = await broker_of(request).redis.hgetall(keys.watchlists_key(owner_of(request)))
    except (aioredis.RedisError, OSError) as exc:
        raise ApiError(503, f"broker unreachable: {exc}") from exc
    lists = (StoredWatchlist.model_validate_json(v) for v in raw.values())
    return {w.id: w for w in sorted(lists, key=lambda w: w.created_at)}


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


async def stored_watchlist(request: Request, watchlist_id: str) -> StoredWatchlist:
    """One of the calling key's watchlists; 404 for a missing one or anyone else's."""
    found = (await stored_watchlists(request)).get(watchlist_id)
    if found is None:
        raise ApiError(404, f"no watchlist {watchlist_id!r} for this key")
    return found


def _public(stored: StoredWatchlist) -> Watchlist:
    return Watchlist.model_validate(stored.model_dump(exclude={"owner", "webhook_secret"}))


@router.post("/watchlists", name="create_watchlist", status_code=201, response_model=WatchlistCreated, responses=ERRORS)
async def create(body: WatchlistIn, request: Request) -> WatchlistCreated:
    """Create a watchlist for the calling key; the webhook secret is in this answer only."""
    if body.webhook_url is not None:
        allow = request.app.state.settings.webhook_allow
        try:
            await asyncio.to_thread(check_webhook_url, body.webhook_url, allow)
        except Unresolved:
            pass  # a name that does not resolve yet is stored; every delivery checks the URL again
        except UnsafeWebhook as exc:
            raise ApiError(422, str(exc), [{"loc": ["body", "webhook_url"], "msg": str(exc)}]) from exc
    owner = owner_of(request)
    if len(await stored_watchlists(request)) >= MAX_WATCHLISTS:
        raise ApiError(409, f"a key may keep at most {MAX_WATCHLISTS} watchlists; delete one first")
    stored = StoredWatchlist(
        **body.model_dump(),
        id=secrets.token_urlsafe(9),
        created_at=time.time(),
        owner=owner,
        webhook_secret=new_secret() if body.webhook_url else None,
    )
    pipe = broker_of(request).redis.pipeline(transaction=True)
    pipe.hset(keys.watchlists_key(owner), stored.id, stored.model_dump_json())
    pipe.sadd(keys.WATCHLIST_OWNERS, owner)
    pipe.incr(keys.WATCHLIST_VERSION)
    await pipe.execute()
    return WatchlistCreated.model_validate(stored.model_dump(exclude={"owner"}))


@router.get("/watchlists", response_model=list[Watchlist], responses=ERRORS)
async def list_watchlists(request: Request) -> list[Watchlist]:
    """The calling key's watchlists, oldest first."""
    return [_public(w) for w in (await stored_watchlists(request)).values()]


@router.get("/watchlists/{watchlist_id}", response_model=Watchlist, responses=ERRORS)
async def get_watchlist(watchlist_id: str, request: Request) -> Watchlist:
    """One of the calling key's watchlists (404 for anyone else's)."""
    return _public(await stored_watchlist(request, watchlist_id))


@router.delete("/watchlists/{watchlist_id}", status_code=204, response_class=Response, responses=ERRORS)
async def delete_watchlist(watchlist_id: str, request: Request) -> Response:
    """Delete one of the calling key's watchlists (404 for anyone else's)."""
    try:
        pipe = broker_of(request).redis.pipeline(transaction=True)
        pipe.hdel(keys.watchlists_key(owner_of(request)), watchlist_id)
        pipe.incr(keys.WATCHLIST_VERSION)
        removed, _ = await pipe.execute()
    except (aioredis.RedisError, OSError) as exc:
        raise ApiError(503, f"broker unreachable: {exc}") from exc
    if not removed:
        raise ApiError(404, f"no watchlist {watchlist_id!r} for this key")
    return Response(status_code=204)
