"""Comparator (not shipped): a bare FastAPI endpoint returning a fixed JSON body.

Served by the same uvicorn settings as the gateway; nothing on this machine
can answer a POST faster through FastAPI, so it is the ceiling.

    uvicorn bench.ceiling:app --port 8100
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse

BODY = {
    "request_id": "fixed",
    "card_id": "demo-00000",
    "date": "2026-01-01",
    "market_price": 10.0,
    "fair_price": 10.0,
    "fair_price_low": 9.5,
    "fair_price_high": 10.5,
    "deviation_pct": 0.0,
    "signal": "HOLD",
    "model_version": "1",
}

app = FastAPI(default_response_class=ORJSONResponse)


@app.post("/fair_price")
async def fair_price(request: Request) -> ORJSONResponse:
    await request.body()
    return ORJSONResponse(BODY)
