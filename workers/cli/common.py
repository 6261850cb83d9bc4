"""What every command shares: the console, logging, errors, dates, the broker client."""

from __future__ import annotations

import logging
import os
from datetime import date
from typing import Any, NoReturn

import typer
from rich.console import Console

from contracts import logs
from contracts.connection import sync_client
from contracts.settings import BrokerSettings

console = Console(stderr=True)


def setup_logging(verbose: bool) -> None:
    """Commands log warnings only, unless --verbose; the long-running ones log INFO (serving_logging)."""
    logs.configure("cli", level=logging.INFO if verbose else logging.WARNING)
    # MLflow sets its logger's level when it is imported (later, lazily), so the
    # level also goes through its own environment variable.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "INFO" if verbose else "ERROR")
    logging.getLogger("mlflow").setLevel(logging.INFO if verbose else logging.ERROR)


def serving_logging(service: str) -> None:
    """A long-running process (worker, gateway): INFO unless POKEWATCH_LOG_LEVEL says otherwise."""
    logs.configure(service)


def day(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"--date must be YYYY-MM-DD, got {value!r}") from exc


def fail(exc: Exception) -> NoReturn:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(code=2)


def broker() -> Any:
    """A sync client on REDIS_URL."""
    return sync_client(BrokerSettings().redis_url)
