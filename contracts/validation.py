"""How a pydantic validation error is told to a person, for HTTP 422 answers and dead letters alike."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SHOWN = 5


def problems(errors: Iterable[Any], skip: tuple[str, ...] = (), root: str = "payload") -> list[str]:
    """`location: message` for the first few errors (pydantic's `errors()` dicts).

    Args:
        errors: pydantic error dicts (`loc`, `msg`, ...).
        skip: location parts left out of the text (e.g. FastAPI's leading "body").
        root: the name of an empty location (the whole document).
    """
    out = []
    for err in list(errors)[:SHOWN]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in skip)
        out.append(f"{loc or root}: {err.get('msg')}")
    return out
