"""The pricing endpoints' logic, and a pure-ASGI fast path that serves them.

`POST /fair_price` and `POST /fair_price/batch` are the hot path. Profiles
under load showed FastAPI's routing, dependency and response-model layers
costing about 40% of the gateway's CPU for these two routes, so a small ASGI
middleware answers them directly:

1. read the body (its size is capped by gateway.security.EdgeGuard);
2. validate it with the same pydantic models the OpenAPI schema documents;
3. ask the broker;
4. write the JSON with orjson.

Errors have the same `{error, message, detail}` shape and status codes as the
rest of the API. The FastAPI routes stay declared, with the same functions
behind them, so `/docs` and the OpenAPI schema are unchanged and the fast path
can be turned off (POKEWATCH_GATEWAY_FAST_PATH=false).
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from contracts.messages import ItemError, PredictItem, SignalDecided
from gateway.broker import BrokerUnavailable, DeadlineExceeded, NoLiveWorkers, RequestBroker
from gateway.schemas import BatchRequest, FairPriceRequest

RESPONSE_FIELDS = {
    "request_id",
    "card_id",
    "card_name",
    "date",
    "market_price",
    "fair_price",
    "fair_price_low",
    "fair_price_high",
    "deviation_pct",
    "signal",
    "currency",
    "model_version",
}
CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    413: "too_large",
    422: "invalid_input",
    429: "rate_limited",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}


class ApiError(Exception):
    """An error answer: status code, message, optional detail."""

    def __init__(
        self, status: int, message: str, detail: Any = None, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers or []

    def body(self) -> dict[str, Any]:
        return {"error": CODES.get(self.status, "error"), "message": self.message, "detail": self.detail}


def invalid_input(errors: list[Any], prefix: tuple[str, ...] = ("body",)) -> ApiError:
    """422 from pydantic-style errors: a readable message plus the structured list."""
    detail = [{"loc": [*prefix, *e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")} for e in errors]
    parts = [f"{'.'.join(str(p) for p in d['loc'] if p != 'body') or 'body'}: {d['msg']}" for d in detail[:5]]
    return ApiError(422, "invalid input: " + "; ".join(parts), detail)


def result_body(result: SignalDecided) -> dict[str, Any]:
    return result.model_dump(mode="json", include=RESPONSE_FIELDS)


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
    results = [
        result_body(r)
        if isinstance(r, SignalDecided)
        else {
            "card_id": r.card_id,
            "date": r.date.isoformat() if r.date else None,
            "status": r.status,
            "error": r.error,
        }
        for r in reply.results
    ]
    failed = sum(1 for r in reply.results if isinstance(r, ItemError))
    return {"request_id": reply.request_id, "priced": len(results) - failed, "failed": failed, "results": results}


def broker_error(exc: Exception) -> ApiError:
    if isinstance(exc, DeadlineExceeded):
        return ApiError(504, str(exc))
    return ApiError(503, str(exc))


BROKER_ERRORS = (BrokerUnavailable, NoLiveWorkers, DeadlineExceeded)


ROUTES: dict[str, tuple[Any, Any]] = {
    "/fair_price": (FairPriceRequest, price_one),
    "/fair_price/batch": (BatchRequest, price_batch),
}


class PricingFastPath:
    """Pure ASGI middleware answering POST /fair_price and /fair_price/batch; everything else passes through."""

    def __init__(self, app: Any, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        route = ROUTES.get(scope.get("path", "")) if scope["type"] == "http" and self.enabled else None
        if route is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        model, handler = route
        try:
            raw = await _read_body(receive)
            try:
                body = model.model_validate_json(raw)
            except ValidationError as exc:
                raise invalid_input(exc.errors()) from None
            try:
                status, payload = 200, await handler(scope["app"].state.broker, body)
            except BROKER_ERRORS as exc:
                raise broker_error(exc) from None
        except ApiError as err:
            status, payload = err.status, err.body()
        await _send_json(send, status, payload)


async def _read_body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "client disconnected")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(send: Any, status: int, payload: Any) -> None:
    body = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
