"""Stored dates (days since 1970-01-01) and the price-history document in `pokewatch:history`.

Written by a model replica for each card, columnar so that 10,000 cards x 400
days cost no Python object per point:
`{"days": [days since 1970-01-01], "price": [market prices], "volume": [volumes or null]}`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

EPOCH = dt.date(1970, 1, 1)


def day_number(day: dt.date) -> int:
    """Days since EPOCH: how every stored date is counted."""
    return (day - EPOCH).days


def date_of(days: int) -> dt.date:
    """The date `days` after EPOCH."""
    return EPOCH + dt.timedelta(days=days)


def history_points(raw: bytes) -> list[dict[str, Any]]:
    """`[{date, market_price, volume?}]` in date order from one history document."""
    doc = orjson.loads(raw)
    return [
        {
            "date": date_of(int(d)).isoformat(),
            "market_price": round(p, 4),
            **({"volume": v} if v is not None else {}),
        }
        for d, p, v in zip(doc["days"], doc["price"], doc["volume"], strict=True)
    ]
