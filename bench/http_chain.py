"""Comparator (not shipped): the old architecture, gateway -> model service -> decision service over HTTP.

Same model, same serving state, same decision rule as the streams path; each
hop is a FastAPI app under uvicorn, called with one shared httpx.AsyncClient.
The role comes from HTTP_CHAIN_ROLE (gateway | model | decision).

    HTTP_CHAIN_ROLE=model uvicorn bench.http_chain:create_app --factory --port 8201
    HTTP_CHAIN_ROLE=decision uvicorn bench.http_chain:create_app --factory --port 8202
    HTTP_CHAIN_ROLE=gateway MODEL_URL=http://127.0.0.1:8201 DECISION_URL=http://127.0.0.1:8202 \\
        uvicorn bench.http_chain:create_app --factory --port 8200
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import ORJSONResponse
from pydantic import TypeAdapter

from contracts.messages import ItemError, PredictItem, Quote

RESULTS: TypeAdapter[list[Quote | ItemError]] = TypeAdapter(list[Quote | ItemError])


def _model_app() -> FastAPI:
    from workers import registry
    from workers.config import WorkerSettings
    from workers.serving.loader import load_state

    settings = WorkerSettings()
    state = load_state(settings, registry.champion_ref(settings))
    app = FastAPI(default_response_class=ORJSONResponse)

    @app.post("/predict")
    async def predict(body: dict[str, Any]) -> ORJSONResponse:
        items = [PredictItem.model_validate(i) for i in body["items"]]
        results = state.quote(items, "http-model")
        return ORJSONResponse([r.model_dump(mode="json") for r in results])

    return app


def _decision_app() -> FastAPI:
    from workers.config import WorkerSettings
    from workers.serving.decision_worker import decide_quotes

    s = WorkerSettings()
    app = FastAPI(default_response_class=ORJSONResponse)

    @app.post("/decide")
    async def decide(request: Request) -> ORJSONResponse:
        body = await request.json()
        quotes = RESULTS.validate_python(body["results"])
        out = decide_quotes(quotes, body["request_id"], s.rule)
        return ORJSONResponse([r.model_dump(mode="json") for r in out])

    return app


def _gateway_app() -> FastAPI:
    model_url, decision_url = os.environ["MODEL_URL"], os.environ["DECISION_URL"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            app.state.client = client
            yield

    app = FastAPI(default_response_class=ORJSONResponse, lifespan=lifespan)

    @app.post("/fair_price")
    async def fair_price(body: dict[str, Any], request: Request) -> ORJSONResponse:
        client: httpx.AsyncClient = request.app.state.client
        request_id = uuid.uuid4().hex
        quotes = (await client.post(f"{model_url}/predict", json={"items": [body]})).json()
        results = (
            await client.post(f"{decision_url}/decide", json={"request_id": request_id, "results": quotes})
        ).json()
        result = results[0]
        if result.get("kind") == "error":
            raise HTTPException(result["status"], result["error"])
        return ORJSONResponse(result)

    return app


def create_app() -> FastAPI:
    role = os.environ.get("HTTP_CHAIN_ROLE", "gateway")
    return {"model": _model_app, "decision": _decision_app, "gateway": _gateway_app}[role]()
