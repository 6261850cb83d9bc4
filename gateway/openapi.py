"""The OpenAPI schema: the generated one plus the API-key schemes the edge enforces."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

PUBLIC = "/health"


def install(app: FastAPI, auth_required: bool) -> None:
    """Declare the ApiKey and Bearer schemes; with auth on, require one on every operation but /health."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema.setdefault("components", {})["securitySchemes"] = {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            }
            if auth_required:
                for path, operations in schema["paths"].items():
                    for operation in operations.values():
                        operation["security"] = [] if path == PUBLIC else [{"ApiKey": []}, {"Bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
