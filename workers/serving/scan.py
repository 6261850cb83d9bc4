"""The market scan: every tracked card decided once whenever the served version changes.

When a model replica swaps to another version (or first loads one), it tries
to claim the scan of that swap with SET NX on `pokewatch:scan:<from>-><to>`
(contracts.keys.scan_key). Every replica of the set makes the same swap, so
exactly one wins. The winner waits until every live model replica serves the
new version (their heartbeats; at most POKEWATCH_SCAN_WAIT_S), so no card of
the scan is priced by a replica still on the old one, then sends
PredictRequests for all the version's cards, POKEWATCH_SCAN_BATCH a request,
paced so that only a couple are outstanding at once (user requests are never
queued behind the whole scan), down the ordinary request path: model workers price them, decision workers
decide them and record every changed signal on `pokewatch:signal-changes`
(workers.serving.changes). There is no second pricing code path.

Scan requests reply on a channel nobody waits on (keys.SCAN_REPLY_TO) and are
named `scan-<version>-<n>` in the signals streams.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from pydantic import ValidationError

from contracts import keys
from contracts.messages import Heartbeat, PredictItem, PredictRequest
from workers.config import WorkerSettings

logger = logging.getLogger(__name__)

# A claim outlives any scan: it only has to stop a second scan of the same swap.
CLAIM_TTL_S = 7 * 24 * 3600
# Scan requests wait in the stream behind user traffic; nobody times them out.
SCAN_DEADLINE_S = 3600.0
# Scan requests outstanding at once (see send_paced), and how often to look.
SCAN_WINDOW = 2
PACE_POLL_S = 0.002
PACE_MAX_S = 0.25


async def claim(redis: Any, served: str | None, loaded: str, replica_id: str) -> bool:
    """True for the one replica that claims the scan of the swap from `served` to `loaded`."""
    return bool(await redis.set(keys.scan_key(served, loaded), replica_id, nx=True, ex=CLAIM_TTL_S))


def live_models(heartbeats: dict[Any, Any], live_s: float) -> list[Heartbeat]:
    """The heartbeats (the `pokewatch:replicas` hash) of model replicas seen within `live_s`."""
    now = time.time()
    beats = []
    for raw in heartbeats.values():
        try:
            beat = Heartbeat.model_validate_json(raw)
        except ValidationError:
            continue
        if beat.role == "model" and now - beat.last_seen <= live_s:
            beats.append(beat)
    return beats


async def replicas_behind(redis: Any, version: str, live_s: float) -> list[str]:
    """Live model replicas that serve another version than `version`."""
    beats = live_models(await redis.hgetall(keys.REPLICAS_HASH), live_s)
    return [b.replica_id for b in beats if b.model_version != version]


def scan_requests(cards: list[str], version: str, batch: int) -> list[PredictRequest]:
    """The PredictRequests of one scan: every card on its latest date, `batch` cards a request."""
    tag = f"scan-{version}-{secrets.token_hex(3)}"[:56]
    deadline = time.time() + SCAN_DEADLINE_S
    return [
        PredictRequest(
            request_id=f"{tag}-{n}",
            reply_to=keys.SCAN_REPLY_TO,
            deadline=deadline,
            items=[PredictItem(card_id=card) for card in chunk],
        )
        for n, chunk in enumerate(cards[i : i + batch] for i in range(0, len(cards), batch))
    ]


async def outstanding(redis: Any) -> int:
    """Requests on the predict stream that the model group has not finished: not yet read, or read and not acked."""
    for group in await redis.xinfo_groups(keys.PREDICT_STREAM):
        name = group["name"].decode() if isinstance(group["name"], bytes) else group["name"]
        if name == keys.MODEL_GROUP:
            return int(group.get("lag") or 0) + int(group.get("pending") or 0)
    return 0


async def send_paced(redis: Any, requests: list[PredictRequest], maxlen: int, window: int = SCAN_WINDOW) -> None:
    """Send a scan's requests, each only once fewer than `window` requests are outstanding.

    A model replica reads up to a batch of entries at once and prices them in
    one go: twenty 500-card scan requests read together held user requests
    behind 10,000 cards (p99 2 s during a 10,000-card scan). Paced, a user
    request waits for at most `window` small scan requests.
    """
    for request in requests:
        pause = PACE_POLL_S
        while await outstanding(redis) >= window:
            await asyncio.sleep(pause)
            pause = min(2 * pause, PACE_MAX_S)  # a stalled group is not polled 500 times a second
        await redis.xadd(
            keys.PREDICT_STREAM, {keys.PAYLOAD_FIELD: request.model_dump_json()}, maxlen=maxlen, approximate=True
        )


def serving_version(heartbeats: dict[Any, Any], live_s: float) -> str:
    """The one version every live model replica serves; ValueError if none or several."""
    versions = {b.model_version for b in live_models(heartbeats, live_s) if b.model_version}
    if len(versions) != 1:
        raise ValueError(f"live model replicas serve {sorted(versions) or 'no version'}: nothing or no one to scan")
    return versions.pop()


async def run_scan(
    redis: Any, settings: WorkerSettings, served: str | None, version: str, cards: list[str], replica_id: str
) -> int:
    """Claim the scan of a swap and, if this replica won it, send its requests.

    Returns:
        The number of scan requests sent (0 when another replica has the claim).
    """
    if not await claim(redis, served, version, replica_id):
        return 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.scan_wait_s
    live_s = 3 * settings.heartbeat_s
    while (behind := await replicas_behind(redis, version, live_s)) and loop.time() < deadline:
        await asyncio.sleep(settings.heartbeat_s / 2)
    if behind:
        logger.warning("scanning version %s while %s still serve another version", version, behind)
    requests = scan_requests(sorted(cards), version, settings.scan_batch)
    await send_paced(redis, requests, settings.stream_maxlen)
    logger.info(
        "market scan of version %s (was %s): %d cards in %d requests", version, served, len(cards), len(requests)
    )
    return len(requests)
