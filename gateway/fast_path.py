"""A pure-ASGI fast path for `POST /fair_price` and `POST /fair_price/batch`.

These two routes are the hot path. Profiles under load showed FastAPI's
routing, dependency and response-model layers costing about 40% of the
gateway's CPU for them, so this middleware answers them directly:

1. read the body (its size is capped by the edge, gateway.edge);
2. validate it with the same pydantic models the OpenAPI schema documents;
3. ask the broker (gateway.pricing);
4. write the JSON with orjson.

Errors have the same `{error, message, detail}` shape and status codes as the
rest of the API. The FastAPI routes stay declared, with the same functions
behind them, so `/docs` and the OpenAPI schema are unchanged and the fast path
can be turned off (POKEWATCH_GATEWAY_FAST_PATH=false).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from gateway.errors import BROKER_ERRORS, ApiError, broker_error, invalid_input, send_json
from gateway.pricing import price_batch, price_one
from gateway.schemas import BatchRequest, FairPriceRequest

ROUTES: dict[str, tuple[Any, Any]] = {
    "/fair_price": (FairPriceRequest, price_one),
    "/fair_price/batch": (BatchRequest, price_batch),
}


class PricingFastPath:
    """Answers the pricing POSTs; everything else passes through."""

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
        await send_json(send, status, payload)


async def _read_body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "client disconnected")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
