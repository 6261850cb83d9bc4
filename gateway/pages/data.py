"""What the pages show, read from Redis and the request path (no second source of truth).

Each card's latest signal and deviation come from the decision workers'
`pokewatch:last-signal` (kept current by the market scan); a card's fair
price, band and signals over its history come from one `/fair_price/batch`
style request through the streams; versions from the model events and the
pipeline's run records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ValidationError

from contracts import keys
from contracts.history import history_points
from contracts.messages import ItemError, ModelPublished, PipelineRun, PredictItem, SignalDecided
from contracts.watchlists import Alert
from gateway.broker import RequestBroker

MAX_CHART_DATES = 500  # one request of the request path (contracts.messages.MAX_BATCH)


@dataclass(frozen=True)
class LastSignal:
    date: str
    signal: str
    version: str
    market_price: float | None
    deviation_pct: float | None


def _last(raw: bytes | str | None) -> LastSignal | None:
    if raw is None:
        return None
    try:
        d = json.loads(raw)
        market = float(d["m"]) if d.get("m") is not None else None
        deviation = float(d["x"]) if d.get("x") is not None else None
        return LastSignal(d["d"], d["s"], d["v"], market, deviation)
    except (ValueError, KeyError, TypeError):
        return None


async def last_signals(redis: Any, card_ids: list[str] | None = None) -> dict[str, LastSignal]:
    """The decision workers' last record of these cards (all cards when None)."""
    if card_ids is None:
        raw = await redis.hgetall(keys.LAST_SIGNAL_HASH)
        items = [(k.decode() if isinstance(k, bytes) else k, v) for k, v in raw.items()]
    elif card_ids:
        items = list(zip(card_ids, await redis.hmget(keys.LAST_SIGNAL_HASH, card_ids), strict=True))
    else:
        items = []
    out = {}
    for card, raw_value in items:
        parsed = _last(raw_value)
        if parsed is not None:
            out[card] = parsed
    return out


async def history(redis: Any, card_id: str) -> list[dict[str, Any]] | None:
    raw = await redis.hget(keys.HISTORY_HASH, card_id)
    if raw is None:
        return None
    return history_points(raw if isinstance(raw, bytes) else raw.encode())


async def quotes(broker: RequestBroker, card_id: str, dates: list[str]) -> list[SignalDecided | ItemError]:
    """The model's answer for each date, in one request down the streams (as /fair_price/batch)."""
    items = [PredictItem(card_id=card_id, date=date.fromisoformat(d)) for d in dates[-MAX_CHART_DATES:]]
    reply = await broker.ask(items)
    return list(reply.results)


async def published(redis: Any, count: int = 200) -> list[ModelPublished]:
    """Recent model versions published to the replicas, newest first."""
    out = []
    for _, fields in await redis.xrevrange(keys.MODEL_EVENTS_STREAM, count=count):
        raw = fields.get(keys.PAYLOAD_FIELD.encode())
        try:
            event = ModelPublished.model_validate_json(raw or b"")
        except ValidationError:
            continue  # load failures and anything else
        if event.alias != "champion":
            continue  # challengers are shown by the lifecycle
        out.append(event)
    return out


async def runs(redis: Any, count: int = 50) -> list[PipelineRun]:
    out = []
    for _, fields in await redis.xrevrange(keys.PIPELINE_RUNS_STREAM, count=count):
        try:
            out.append(PipelineRun.model_validate_json(fields.get(keys.PAYLOAD_FIELD.encode()) or b""))
        except ValidationError:
            continue
    return out


async def alerts(redis: Any, owner: str, count: int = 1000, keep: int = 50) -> list[Alert]:
    """The owner's newest alerts (from the newest `count` of everyone's)."""
    out = []
    for _, fields in await redis.xrevrange(keys.ALERTS_STREAM, count=count):
        try:
            alert = Alert.model_validate_json(fields.get(keys.PAYLOAD_FIELD.encode()) or b"")
        except ValidationError:
            continue
        if alert.owner == owner:
            out.append(alert)
            if len(out) >= keep:
                break
    return out


async def lifecycle(redis: Any) -> dict[str, Any] | None:
    """The newest judge run's record (workers.pipeline.lifecycle), if any."""
    raw = await redis.get(keys.LIFECYCLE_KEY)
    if not raw:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


ROLE_ORDER = {"champion": 0, "challenger": 1, "previous": 2}
CHART_W, CHART_H, PAD = 640, 220, 36


def realized_chart(history: list[dict[str, Any]], roles: dict[str, str]) -> dict[str, Any] | None:
    """An SVG line chart of each live version's realized MAPE per forecast date (server-drawn: no script)."""
    points = [p for p in history if isinstance(p.get("mape"), int | float) and p.get("version") in roles]
    if not points:
        return None
    dates = sorted({p["date"] for p in points})
    top = max(p["mape"] for p in points) * 1.1 or 1.0
    span = max(len(dates) - 1, 1)

    def xy(p: dict[str, Any]) -> str:
        x = PAD + (CHART_W - 2 * PAD) * dates.index(p["date"]) / span
        y = CHART_H - PAD - (CHART_H - 2 * PAD) * p["mape"] / top
        return f"{x:.1f},{y:.1f}"

    series = []
    for version in sorted(roles, key=lambda v: ROLE_ORDER.get(roles[v], 9)):
        mine = sorted((p for p in points if p["version"] == version), key=lambda p: p["date"])
        if mine:
            series.append({"version": version, "role": roles[version], "points": " ".join(xy(p) for p in mine)})
    return {
        "width": CHART_W,
        "height": CHART_H,
        "pad": PAD,
        "top": round(top, 3),
        "first": dates[0],
        "last": dates[-1],
        "series": series,
    }
