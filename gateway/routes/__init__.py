"""The REST routes, one module per resource; each delegates to plain functions."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from gateway.broker import RequestBroker
from gateway.schemas import ErrorBody

# Answered by the edge (gateway.edge) on every protected route.
EDGE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "API key missing, invalid or revoked (when auth is on)"},
    413: {"model": ErrorBody, "description": "request body too large"},
    429: {"model": ErrorBody, "description": "rate limit exceeded; see the Retry-After header"},
}


def broker_of(request: Request) -> RequestBroker:
    return request.app.state.broker  # type: ignore[no-any-return]
