"""`GET /health`: broker reachability and every worker replica with the model version it serves."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import ORJSONResponse

from contracts import keys
from gateway.routes import broker_of
from gateway.schemas import ChallengerHealth, Health, ReplicaStatus

router = APIRouter(tags=["ops"])


@router.get("/health", name="get_health", response_model=Health, responses={503: {"model": Health}})
async def health(request: Request) -> Any:
    """Broker reachability and every worker replica with the model version it serves."""
    broker = broker_of(request)
    if not await broker.ping():
        body = Health(status="down", broker=False, gateway_id=broker.gateway_id, model_versions=[], replicas=[])
        return ORJSONResponse(body.model_dump(), status_code=503)
    now = time.time()
    beats = await broker.replicas()
    replicas = [
        ReplicaStatus(
            replica_id=b.replica_id,
            role=b.role,
            model_version=b.model_version,
            live=broker.is_live(b, now),
            seconds_since_heartbeat=round(now - b.last_seen, 2),
            processed=b.processed,
            expired=b.expired,
            dead_lettered=b.dead_lettered,
            last_error=b.last_error,
        )
        for b in sorted(beats, key=lambda b: (b.role, b.replica_id))
    ]
    live = [r for r in replicas if r.live]
    versions = sorted({r.model_version for r in live if r.role == "model" and r.model_version})
    ready = any(r.role == "model" for r in live) and any(r.role == "decision" for r in live)
    shadow = [r for r in replicas if r.role == "challenger"]
    challenger = (
        ChallengerHealth(
            live=sum(r.live for r in shadow),
            down=sum(not r.live for r in shadow),
            versions=sorted({r.model_version for r in shadow if r.live and r.model_version}),
            lag=await broker.group_lag(keys.PREDICT_STREAM, keys.SHADOW_GROUP),
        )
        if shadow
        else None
    )
    return Health(
        status="ok" if ready else "degraded",
        broker=True,
        gateway_id=broker.gateway_id,
        model_versions=versions,
        replicas=replicas,
        challenger=challenger,
    )
