"""POST bodies are JSON, whatever their content type says.

`curl -d '{"card_id": ...}'` sends `application/x-www-form-urlencoded`; the
pricing API only speaks JSON, so it reads the body as JSON rather than
failing on a missing header. A pure ASGI middleware: no per-request copy.
"""

from __future__ import annotations

from typing import Any


class JSONBodyByDefault:
    JSON = (b"content-type", b"application/json")

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*headers, self.JSON]}
        await self.app(scope, receive, send)
