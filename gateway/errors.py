"""Every error answer of the gateway: one exception, one code table, one JSON writer.

An error body is always `{error, message, detail}` with the status's code
name, whether it comes from a route, the fast path or the edge.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import ORJSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from contracts.validation import problems
from gateway.broker import BrokerUnavailable, DeadlineExceeded, NoLiveWorkers

CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid_input",
    429: "rate_limited",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}
BROKER_ERRORS = (BrokerUnavailable, NoLiveWorkers, DeadlineExceeded)


class ApiError(Exception):
    """An error answer: status code, message, optional detail and headers."""

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
    return ApiError(422, "invalid input: " + "; ".join(problems(detail, skip=("body",), root="body")), detail)


def broker_error(exc: Exception) -> ApiError:
    """504 when the deadline passed, 503 when the broker or the workers are away."""
    if isinstance(exc, DeadlineExceeded):
        return ApiError(504, str(exc))
    return ApiError(503, str(exc))


async def send_json(send: Any, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Write a whole JSON response on a raw ASGI `send`."""
    body = orjson.dumps(payload)
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Any, err: ApiError) -> None:
    """An ApiError as a raw ASGI response (401s also name the auth scheme)."""
    headers = list(err.headers)
    if err.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="pokewatch"'))
    await send_json(send, err.status, err.body(), headers)


def respond(err: ApiError) -> ORJSONResponse:
    return ORJSONResponse(err.body(), status_code=err.status, headers={k.decode(): v.decode() for k, v in err.headers})


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on the request's path (Starlette's 405 names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Route-layer errors in the same shape as the fast path's and the edge's."""

    async def api_error(request: Request, exc: Exception) -> ORJSONResponse:
        assert isinstance(exc, ApiError)
        return respond(exc)

    async def http_error(request: Request, exc: Exception) -> ORJSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        if exc.status_code == 405:
            headers["allow"] = ", ".join(allowed_methods(request))
        return respond(
            ApiError(exc.status_code, str(exc.detail), headers=[(k.encode(), v.encode()) for k, v in headers.items()])
        )

    async def invalid(request: Request, exc: Exception) -> ORJSONResponse:
        assert isinstance(exc, RequestValidationError)
        return respond(invalid_input(list(exc.errors()), prefix=()))

    async def broker_failure(request: Request, exc: Exception) -> ORJSONResponse:
        return respond(broker_error(exc))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    # Starlette's own (a body that is not JSON, a method not allowed): the same error shape.
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    for error_type in BROKER_ERRORS:
        app.add_exception_handler(error_type, broker_failure)
