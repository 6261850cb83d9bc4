"""PokeWatch REST gateway.

The gateway never calls a worker: every pricing request is one entry on
`pokewatch:predict` and its answer arrives on this process's reply channel
(see gateway.broker). Card browsing reads the catalog the model replicas
publish in Redis.

Run: `pokewatch gateway` or `uvicorn gateway.app:create_app --factory`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import ORJSONResponse

from contracts import keys
from contracts.history import history_points
from contracts.settings import ServingSettings, redacted
from gateway.broker import BrokerUnavailable, RequestBroker
from gateway.pricing import (
    BROKER_ERRORS,
    ApiError,
    PricingFastPath,
    broker_error,
    invalid_input,
    price_batch,
    price_one,
)
from gateway.schemas import (
    BatchRequest,
    BatchResponse,
    CardHistory,
    CardsPage,
    CardSummary,
    ErrorBody,
    FairPriceRequest,
    FairPriceResponse,
    Health,
    PricePoint,
    ReplicaStatus,
)
from gateway.security import EdgeGuard, EdgePolicy

logger = logging.getLogger(__name__)

# Answered by the edge (gateway.security) on every protected route.
EDGE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "API key missing, invalid or revoked (when auth is on)"},
    413: {"model": ErrorBody, "description": "request body too large"},
    429: {"model": ErrorBody, "description": "rate limit exceeded; see the Retry-After header"},
}
ERRORS: dict[int | str, dict[str, Any]] = {
    **EDGE_ERRORS,
    404: {"model": ErrorBody, "description": "unknown card, or no price on that date"},
    422: {"model": ErrorBody, "description": "invalid input"},
    503: {"model": ErrorBody, "description": "broker unreachable or no live model worker"},
    504: {"model": ErrorBody, "description": "no answer before the request's deadline"},
}


def _respond(err: ApiError) -> ORJSONResponse:
    return ORJSONResponse(err.body(), status_code=err.status)


class Catalog:
    """The card catalog from Redis, cached until its version changes."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.version: bytes | str | None = None
        self.cards: list[CardSummary] = []

    async def all(self) -> list[CardSummary]:
        version = await self.redis.get(keys.CATALOG_VERSION_KEY)
        if version is None:
            return []
        if version != self.version:
            raw = await self.redis.hgetall(keys.CATALOG_HASH)
            cards = [CardSummary.model_validate_json(v) for v in raw.values()]
            self.cards = sorted(cards, key=lambda c: c.card_id)
            self.version = version
        return self.cards


class JSONBodyByDefault:
    """Treat POST bodies as JSON whatever their content type says.

    `curl -d '{"card_id": ...}'` sends `application/x-www-form-urlencoded`;
    the pricing API only speaks JSON, so it reads the body as JSON rather than
    failing on a missing header. A pure ASGI middleware: no per-request copy.
    """

    JSON = (b"content-type", b"application/json")

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*headers, self.JSON]}
        await self.app(scope, receive, send)


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    settings = settings or ServingSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = RequestBroker(settings)
        await broker.start()
        app.state.broker = broker
        app.state.catalog = Catalog(broker.redis)
        logger.info("gateway %s up; broker %s", broker.gateway_id, redacted(settings.redis_url))
        if settings.auth_required:
            logger.info(
                "API keys required (rate %g/s per key, burst %d)", settings.rate_limit_per_s, settings.rate_limit_burst
            )
        else:
            logger.warning(
                "authentication is OFF: anyone who reaches this gateway may use every endpoint "
                "(set POKEWATCH_AUTH_REQUIRED=true and create keys with `pokewatch keys create`)"
            )
        yield
        await broker.stop()

    app = FastAPI(
        title="PokeWatch",
        version="1.0",
        summary="Fair prices and BUY/SELL/HOLD signals for Pokémon cards.",
        description=(
            "Every pricing request travels over Redis streams to the model and decision workers. "
            "Errors are JSON: `{error, message, detail}`."
        ),
        default_response_class=ORJSONResponse,
        lifespan=lifespan,
    )

    # Starlette runs the last added outermost: CORS, then the edge guard, then the fast path.
    app.add_middleware(JSONBodyByDefault)
    app.add_middleware(PricingFastPath, enabled=settings.gateway_fast_path)
    app.add_middleware(
        EdgeGuard,
        policy=EdgePolicy(
            auth_required=settings.auth_required,
            rate_per_s=settings.rate_limit_per_s,
            burst=settings.rate_limit_burst,
            anonymous_rate_per_s=settings.anonymous_rate_limit_per_s,
            max_body_bytes=settings.max_body_bytes,
        ),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "x-api-key", "authorization"],
        )

    # One error shape everywhere: the same ApiError the fast path answers with.
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> ORJSONResponse:
        return _respond(exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> ORJSONResponse:
        return _respond(ApiError(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> ORJSONResponse:
        return _respond(invalid_input(list(exc.errors()), prefix=()))

    async def broker_failure(request: Request, exc: Exception) -> ORJSONResponse:
        return _respond(broker_error(exc))

    for error_type in BROKER_ERRORS:
        app.add_exception_handler(error_type, broker_failure)

    def broker_of(request: Request) -> RequestBroker:
        return request.app.state.broker  # type: ignore[no-any-return]

    @app.get("/health", response_model=Health, responses={503: {"model": Health}}, tags=["ops"])
    async def health(request: Request) -> Any:
        """Broker reachability and every worker replica with the model version it serves."""
        broker = broker_of(request)
        if not await broker.ping():
            body = Health(status="down", broker=False, gateway_id=broker.gateway_id, model_versions=[], replicas=[])
            return ORJSONResponse(body.model_dump(), status_code=503)
        now = time.time()
        beats = await broker.replicas()
        replicas = [
            ReplicaStatus(
                replica_id=b.replica_id,
                role=b.role,
                model_version=b.model_version,
                live=broker.is_live(b, now),
                seconds_since_heartbeat=round(now - b.last_seen, 2),
                processed=b.processed,
                expired=b.expired,
                dead_lettered=b.dead_lettered,
                last_error=b.last_error,
            )
            for b in sorted(beats, key=lambda b: (b.role, b.replica_id))
        ]
        live = [r for r in replicas if r.live]
        versions = sorted({r.model_version for r in live if r.role == "model" and r.model_version})
        ready = any(r.role == "model" for r in live) and any(r.role == "decision" for r in live)
        return Health(
            status="ok" if ready else "degraded",
            broker=True,
            gateway_id=broker.gateway_id,
            model_versions=versions,
            replicas=replicas,
        )

    @app.post("/fair_price", response_model=FairPriceResponse, responses=ERRORS, tags=["pricing"])
    async def fair_price(body: FairPriceRequest, request: Request) -> Any:
        """Market price, fair price with its 80% interval, deviation and signal for one card."""
        return ORJSONResponse(await price_one(broker_of(request), body))

    @app.post("/fair_price/batch", response_model=BatchResponse, responses=ERRORS, tags=["pricing"])
    async def fair_price_batch(body: BatchRequest, request: Request) -> Any:
        """Up to 500 cards in one round trip; per-card errors come back inline with their status."""
        return ORJSONResponse(await price_batch(broker_of(request), body))

    @app.get("/cards", response_model=CardsPage, responses={**EDGE_ERRORS, 503: {"model": ErrorBody}}, tags=["cards"])
    async def cards(
        request: Request,
        q: Annotated[str | None, Query(max_length=100, description="substring of the card name or id")] = None,
        set_name: Annotated[str | None, Query(max_length=100, description="substring of the set name")] = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> CardsPage:
        """Tracked cards, paged, filtered by name and set (case-insensitive)."""
        try:
            everything = await request.app.state.catalog.all()
        except (aioredis.RedisError, OSError) as exc:
            raise BrokerUnavailable(f"broker unreachable: {exc}") from exc
        found = everything
        if q:
            needle = q.lower()
            found = [c for c in found if needle in (c.card_name or "").lower() or needle in c.card_id.lower()]
        if set_name:
            needle = set_name.lower()
            found = [c for c in found if needle in (c.set_name or "").lower()]
        start = (page - 1) * page_size
        return CardsPage(total=len(found), page=page, page_size=page_size, items=found[start : start + page_size])

    @app.get(
        "/cards/{card_id}/history",
        response_model=CardHistory,
        responses={**EDGE_ERRORS, 404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
        tags=["cards"],
    )
    async def history(
        card_id: str,
        request: Request,
        start: Annotated[dt.date | None, Query(description="first date, inclusive")] = None,
        end: Annotated[dt.date | None, Query(description="last date, inclusive")] = None,
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

    def openapi() -> dict[str, Any]:
        """The generated schema plus the API-key scheme the edge enforces (when auth is on)."""
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema.setdefault("components", {})["securitySchemes"] = {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            }
            if settings.auth_required:
                for path, operations in schema["paths"].items():
                    for operation in operations.values():
                        operation["security"] = [] if path == "/health" else [{"ApiKey": []}, {"Bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
