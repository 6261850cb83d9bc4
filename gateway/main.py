"""PokeWatch REST gateway: wiring only (lifespan, middleware order, routers, errors).

The gateway never calls a worker: every pricing request is one entry on
`pokewatch:predict` and its answer arrives on this process's reply channel
(gateway.broker). Card browsing reads the catalog the model replicas
publish in Redis (gateway.catalog).

Run: `python -m gateway`, `pokewatch gateway`, or
`uvicorn gateway.main:create_app --factory`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import ORJSONResponse

from contracts.connection import redis_client
from contracts.settings import redacted
from gateway import errors, openapi
from gateway.broker import RequestBroker
from gateway.catalog import Catalog
from gateway.config import GatewaySettings
from gateway.edge import EdgeGuard, EdgePolicy
from gateway.fast_path import PricingFastPath
from gateway.json_body import JSONBodyByDefault
from gateway.metrics import CONTENT_TYPE, GatewayMetrics, MetricsMiddleware
from gateway.pages import assets as pages
from gateway.pages.assets import PagesCompression
from gateway.routes import asyncapi, cards, health, pricing, signals, watchlists
from gateway.routes.signals import Followers

logger = logging.getLogger(__name__)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = RequestBroker(settings)
        await broker.start()
        app.state.broker = broker
        app.state.catalog = Catalog(broker.redis)
        app.state.settings = settings
        followers = redis_client(settings.redis_url, max_connections=settings.sse_max_clients + 1, wait_s=2)
        app.state.followers = Followers(followers, settings.sse_max_clients)
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
        await followers.aclose()
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
        # Operation ids are the routes' names (get_fair_price, list_cards, create_watchlist, ...), so
        # a client generated from /openapi.json reads well; FastAPI's default appends path and method.
        generate_unique_id_function=lambda route: route.name,
    )

    # Starlette runs the last added outermost: metrics, CORS, the edge guard, then the fast path.
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

    if settings.metrics:
        # Outermost: it counts what the edge refuses and what the fast path answers too.
        metrics = GatewayMetrics(app)
        app.add_middleware(MetricsMiddleware, metrics=metrics, routes=app.router.routes)

        @app.get("/metrics", include_in_schema=False)
        async def prometheus_metrics() -> Response:
            return Response(metrics.render(), media_type=CONTENT_TYPE)

    if settings.pages:
        app.add_middleware(PagesCompression)
    errors.install(app)
    for module in (health, pricing, cards, signals, watchlists, asyncapi):
        app.include_router(module.router)
    if settings.pages:
        pages.install(app)
    openapi.install(app, settings.auth_required)
    return app
