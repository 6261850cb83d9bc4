"""The pages' static files, the chart library from its wheel, and compression for both."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)
COMPRESSED = ("/ui", "/static/", "/vendor/", "/asyncapi")
CACHE = {"cache-control": "public, max-age=86400", "x-content-type-options": "nosniff"}


@functools.cache
def chart_library() -> bytes:
    """TradingView Lightweight Charts' standalone build, as the `lightweight-charts` wheel ships it."""
    return resources.files("lightweight_charts").joinpath("js/lightweight-charts.js").read_bytes()


@router.get("/vendor/lightweight-charts.js")
async def lightweight_charts() -> Response:
    return Response(chart_library(), media_type="text/javascript", headers=CACHE)


class PagesCompression:
    """gzip for the pages and their assets only: the pricing routes stay uncompressed (small, hot)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=1024)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(COMPRESSED):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    """Mount the static files and the pages' routes."""
    from gateway.pages import routes

    app.include_router(router)
    app.include_router(routes.router)
    app.mount("/static", StaticFiles(packages=[("gateway.pages", "static")]), name="static")
