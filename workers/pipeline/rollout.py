"""Moving the aliases: promote, roll back, retire, set or clear the challenger, and announce it.

What the lifecycle rule (workers.pipeline.lifecycle) and a person
(`pokewatch model challenger`) do once a decision is taken: the MLflow
aliases move, the versions are tagged, the replicas are told on
`pokewatch:model-events`, and the `shadow` group follows the challenger.
After a promotion `watch_rollout` watches the model replicas load the new
champion and rolls it back at once if they cannot.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from contracts import keys
from contracts.messages import Heartbeat, ModelDecision, ModelLoadFailed
from workers import model_events, registry
from workers.config import PipelineSettings
from workers.pipeline.promotion import Decision

logger = logging.getLogger(__name__)
# A model replica whose heartbeat is older than this is not counted as live.
LIVE_S = 15.0


def act(settings: PipelineSettings, client: Any | None, decision: Decision, champion: str | None) -> None:
    """Move the aliases as the decision says, tag the versions, announce to the replicas."""
    version = str(decision.version)
    stamp = {"lifecycle.reason": decision.reason[:5000], "lifecycle.decided_at": round(time.time(), 3)}
    if decision.action == "promote":
        registry.set_champion(settings, version)
        clear_challenger(settings, client)
        registry.tag_version(settings, version, {"lifecycle.promoted": True, **stamp})
        if client is not None:
            model_events.publish_version(settings, client, version)
            if champion:
                watch_rollout(settings, client, version, champion)
    elif decision.action == "rollback":
        registry.set_champion(settings, version)
        if champion:
            registry.tag_version(settings, champion, {"lifecycle.rolled_back": True, **stamp})
        if client is not None:
            model_events.publish_version(settings, client, version, rollback=True)
    elif decision.action == "retire":
        clear_challenger(settings, client)
        registry.tag_version(settings, version, {"lifecycle.retired": True, **stamp})
    if decision.action in ("promote", "retire"):
        fill_challenger(settings, client)


def watch_rollout(settings: PipelineSettings, client: Any, version: str, previous: str) -> dict[str, Any]:
    """After `version` was published as champion: watch the live model replicas load it.

    If they announce load failures for it and none serves it (every live replica
    failed, or `rollout_timeout_s` passed), the champion goes back to `previous`
    at once, recorded as a rollback: replicas that start later would otherwise
    find a champion they cannot load. With no live model replica there is nothing
    to watch."""
    started = time.time()
    deadline = time.monotonic() + settings.rollout_timeout_s
    while True:
        live = live_models(client)
        serving = [b for b in live.values() if b.model_version == version]
        failed = load_failures(client, version, since=started - 1)
        out = {"version": version, "replicas": len(live), "serving": len(serving), "failed": len(failed)}
        if not live or len(serving) == len(live):
            return {**out, "rollout": "complete" if live else "no live model replica"}
        timed_out = time.monotonic() >= deadline
        if failed and not serving and (set(live) <= set(failed) or timed_out):
            error = next(iter(failed.values()))[:300]
            decision = Decision(
                "rollback", previous, f"champion {version} failed to load on {len(failed)} replica(s): {error}"
            )
            act(settings, client, decision, version)
            model_events.publish_event(
                client,
                ModelDecision(
                    model_name=settings.model_name,
                    action="rollback",
                    version=previous,
                    champion=version,
                    reason=decision.reason,
                    numbers={"failed": len(failed), "replicas": len(live)},
                ),
            )
            logger.warning("rolled back to %s: %s", previous, decision.reason)
            return {**out, "rollout": "rolled back"}
        if timed_out:
            return {**out, "rollout": "timed out"}
        time.sleep(1)


def live_models(client: Any) -> dict[str, Heartbeat]:
    """The model replicas whose heartbeat is fresh, by replica id."""
    now = time.time()
    beats = (Heartbeat.model_validate_json(v) for v in client.hvals(keys.REPLICAS_HASH))
    return {b.replica_id: b for b in beats if b.role == "model" and now - b.last_seen < LIVE_S}


def load_failures(client: Any, version: str, since: float = 0.0) -> dict[str, str]:
    """The replicas that announced a failed load of `version` (at `since` or later), with the newest error."""
    failed: dict[str, str] = {}
    for event in model_events.recent(client, ModelLoadFailed):
        if event.version == version and event.failed_at >= since:
            failed.setdefault(event.replica_id, event.error)
    return failed


def fill_challenger(settings: PipelineSettings, client: Any | None) -> str | None:
    """Make the newest version waiting for the slot the challenger, if the slot is free."""
    if registry.challenger_version(settings) is not None:
        return None
    champion = registry.champion_version(settings)
    waiting = [
        str(v.version)
        for v in registry.versions(settings)
        if v.tags.get("lifecycle.waiting") == "True" and (champion is None or int(v.version) > int(champion))
    ]
    if not waiting:
        return None
    return make_challenger(settings, client, waiting[0])


def make_challenger(settings: PipelineSettings, client: Any | None, version: str) -> str:
    """Point the `challenger` alias at `version` and tell the challenger replicas to load it.

    The `shadow` group is created at the request stream's end: its lag is what a
    challenger Deployment scales on, and old requests were answered already."""
    registry.set_challenger(settings, version)
    if client is not None:
        try:
            client.xgroup_create(keys.PREDICT_STREAM, keys.SHADOW_GROUP, id="$", mkstream=True)
        except Exception as exc:  # BUSYGROUP: it exists
            if "BUSYGROUP" not in str(exc):
                raise
    registry.tag_version(settings, version, {"lifecycle.waiting": False, "lifecycle.challenger_since": time.time()})
    if client is not None:
        model_events.publish_version(settings, client, version, alias="challenger")
    return version


def clear_challenger(settings: PipelineSettings, client: Any | None) -> None:
    """No challenger: the alias goes, and the `shadow` group with it, so nothing lags behind."""
    registry.clear_challenger(settings)
    if client is not None and client.exists(keys.PREDICT_STREAM):
        client.xgroup_destroy(keys.PREDICT_STREAM, keys.SHADOW_GROUP)
