"""One log format for every PokeWatch process, with the request id on every line of a request.

`configure(service)` is called once by each entry point (gateway, model and
decision workers, the CLI). Each line names the process (`service`) and,
while a request is being handled, its `request_id`: the gateway sets it when
it publishes the request, the workers while they price and decide it, so
`grep <request id> logs/*.log` follows one request through every process.
FastStream's own lines go through the same handler.

Format: plain text by default; one JSON object per line with
`POKEWATCH_LOG_FORMAT=json`. Level: `POKEWATCH_LOG_LEVEL` (default INFO);
per-request lines are DEBUG, so tracing one request costs nothing unless
asked for.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
from collections.abc import Iterator

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(service)s %(name)s [%(request_id)s] %(message)s"
# Libraries whose INFO lines are noise at the default level.
QUIET = ("mlflow", "alembic", "httpx", "urllib3", "git")


@contextlib.contextmanager
def request_context(rid: str) -> Iterator[None]:
    """Log lines inside the block carry `rid`."""
    token = request_id.set(rid)
    try:
        yield
    finally:
        request_id.reset(token)


class ContextFilter(logging.Filter):
    """Stamps `service` and `request_id` (an explicit `extra=` wins) on every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id.get() or "-"
        record.service = self.service
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, service, logger, request_id, message (and exc)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "service": getattr(record, "service", "-"),
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure(service: str, level: str | int | None = None, fmt: str | None = None) -> None:
    """Install the one handler on the root logger (replacing any), for this process.

    Args:
        service: the process's name on every line (e.g. `gateway`, a replica id).
        level: default `POKEWATCH_LOG_LEVEL`, else INFO.
        fmt: `text` or `json`; default `POKEWATCH_LOG_FORMAT`, else text.
    """
    level = level or os.environ.get("POKEWATCH_LOG_LEVEL", "INFO").upper()
    fmt = (fmt or os.environ.get("POKEWATCH_LOG_FORMAT", "text")).lower()
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter(service))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    # uvicorn's loggers write through their own handlers unless told to propagate.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
