"""`POST /fair_price`, `POST /fair_price/batch` (normally answered by gateway.fast_path first)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import ORJSONResponse

from gateway.pricing import price_batch, price_one
from gateway.routes import EDGE_ERRORS, broker_of
from gateway.schemas import BatchRequest, BatchResponse, ErrorBody, FairPriceRequest, FairPriceResponse

router = APIRouter(tags=["pricing"])

ERRORS: dict[int | str, dict[str, Any]] = {
    **EDGE_ERRORS,
    404: {"model": ErrorBody, "description": "unknown card, or no price on that date"},
    422: {"model": ErrorBody, "description": "invalid input"},
    503: {"model": ErrorBody, "description": "broker unreachable or no live model worker"},
    504: {"model": ErrorBody, "description": "no answer before the request's deadline"},
}


@router.post("/fair_price", name="get_fair_price", response_model=FairPriceResponse, responses=ERRORS)
async def fair_price(body: FairPriceRequest, request: Request) -> Any:
    """Market price, fair price with its 80% interval, deviation and signal for one card."""
    return ORJSONResponse(await price_one(broker_of(request), body))


@router.post("/fair_price/batch", name="get_fair_prices", response_model=BatchResponse, responses=ERRORS)
async def fair_price_batch(body: BatchRequest, request: Request) -> Any:
    """Up to 500 cards in one round trip; per-card errors come back inline with their status."""
    return ORJSONResponse(await price_batch(broker_of(request), body))
