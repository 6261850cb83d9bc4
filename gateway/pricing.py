"""The pricing endpoints' logic, shared by their routes and the fast path.

Each function asks the broker and shapes the reply as the OpenAPI schema
says (gateway.schemas); the response fields come from those models, so the
two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from contracts.messages import ItemError, PredictItem, SignalDecided
from gateway.broker import RequestBroker
from gateway.errors import ApiError
from gateway.schemas import BatchRequest, FairPriceRequest, FairPriceResponse

RESPONSE_FIELDS = set(FairPriceResponse.model_fields)


def result_body(result: SignalDecided) -> dict[str, Any]:
    return result.model_dump(mode="json", include=RESPONSE_FIELDS)


def error_body(error: ItemError) -> dict[str, Any]:
    return {
        "card_id": error.card_id,
        "date": error.date.isoformat() if error.date else None,
        "status": error.status,
        "error": error.error,
    }


async def price_one(broker: RequestBroker, body: FairPriceRequest) -> dict[str, Any]:
    reply = await broker.ask([PredictItem(card_id=body.card_id, date=body.date)])
    if len(reply.results) != 1:
        raise ApiError(502, f"expected one result, got {len(reply.results)}")
    result = reply.results[0]
    if isinstance(result, ItemError):
        raise ApiError(result.status, result.error)
    return result_body(result)


async def price_batch(broker: RequestBroker, body: BatchRequest) -> dict[str, Any]:
    reply = await broker.ask([PredictItem(card_id=i.card_id, date=i.date) for i in body.items])
    results = [result_body(r) if isinstance(r, SignalDecided) else error_body(r) for r in reply.results]
    failed = sum(1 for r in reply.results if isinstance(r, ItemError))
    return {"request_id": reply.request_id, "priced": len(results) - failed, "failed": failed, "results": results}
