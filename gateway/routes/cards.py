"""`GET /cards` and `GET /cards/{card_id}/history`: browsing what the serving model version knows."""

from __future__ import annotations

from typing import Annotated

import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException, Query, Request

from contracts import keys
from contracts.history import history_points
from gateway.broker import BrokerUnavailable
from gateway.routes import EDGE_ERRORS, broker_of
from gateway.schemas import CardHistory, CardsPage, ErrorBody, IsoDate, PricePoint

router = APIRouter(tags=["cards"])


@router.get("/cards", name="list_cards", response_model=CardsPage, responses={**EDGE_ERRORS, 503: {"model": ErrorBody}})
async def cards(
    request: Request,
    q: Annotated[str | None, Query(max_length=100, description="substring of the card name or id")] = None,
    set_name: Annotated[str | None, Query(max_length=100, description="substring of the set name")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CardsPage:
    """Tracked cards, paged, filtered by name and set (case-insensitive)."""
    try:
        found = await request.app.state.catalog.all()
    except (aioredis.RedisError, OSError) as exc:
        raise BrokerUnavailable(f"broker unreachable: {exc}") from exc
    if q:
        needle = q.lower()
        found = [c for c in found if needle in (c.card_name or "").lower() or needle in c.card_id.lower()]
    if set_name:
        needle = set_name.lower()
        found = [c for c in found if needle in (c.set_name or "").lower()]
    start = (page - 1) * page_size
    return CardsPage(total=len(found), page=page, page_size=page_size, items=found[start : start + page_size])


@router.get(
    "/cards/{card_id}/history",
    name="get_card_history",
    response_model=CardHistory,
    responses={**EDGE_ERRORS, 404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def history(
    card_id: str,
    request: Request,
    start: Annotated[IsoDate | None, Query(description="first date, inclusive (YYYY-MM-DD)")] = None,
    end: Annotated[IsoDate | None, Query(description="last date, inclusive (YYYY-MM-DD)")] = None,
) -> CardHistory:
    """The card's served price history (the days its model version knows)."""
    try:
        raw = await broker_of(request).redis.hget(keys.HISTORY_HASH, card_id)
    except (aioredis.RedisError, OSError) as exc:
        raise BrokerUnavailable(f"broker unreachable: {exc}") from exc
    if raw is None:
        raise HTTPException(404, f"unknown card {card_id!r}")
    points = history_points(raw if isinstance(raw, bytes) else raw.encode())
    if start:
        points = [p for p in points if p["date"] >= start.isoformat()]
    if end:
        points = [p for p in points if p["date"] <= end.isoformat()]
    return CardHistory(card_id=card_id, points=[PricePoint.model_validate(p) for p in points])
