"""Model events on `pokewatch:model-events`: publishing, reading, and what counts as newer.

The stream is a broadcast: every model replica XREADs it without a consumer
group, so each replica sees each event. `publish_version` and `rollback` are
what the Airflow DAG's publish task and `pokewatch model publish|rollback`
call; replicas parse what they read with `parse` and announce a failed load
with `publish_event` too.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter

from contracts import keys
from contracts.messages import ModelDecision, ModelEvent, ModelLoadFailed, ModelPublished
from workers import registry
from workers.config import RegistrySettings

EVENTS: TypeAdapter[ModelPublished | ModelLoadFailed | ModelDecision] = TypeAdapter(ModelEvent)
EVENTS_MAXLEN = 10_000
Event = TypeVar("Event", ModelPublished, ModelLoadFailed, ModelDecision)
# The run metrics an event carries: the headline figures of the evaluation.
EVENT_METRICS = ("model.", "naive.", "model_vs")


def publish_event(client: Any, event: ModelPublished | ModelLoadFailed | ModelDecision) -> Any:
    """XADD the event. With a sync client returns the entry id; with an asyncio client, an awaitable of it."""
    return client.xadd(
        keys.MODEL_EVENTS_STREAM, {keys.PAYLOAD_FIELD: event.model_dump_json()}, maxlen=EVENTS_MAXLEN, approximate=True
    )


def parse(raw: bytes | str) -> ModelPublished | ModelLoadFailed | ModelDecision:
    """One event from an entry's payload; pydantic's ValidationError if it is not one."""
    return EVENTS.validate_json(raw)


def recent(client: Any, kind: type[Event], count: int = 1000) -> list[Event]:
    """The newest `count` events on the stream that are of `kind`, newest first (sync client)."""
    out = []
    for _, fields in client.xrevrange(keys.MODEL_EVENTS_STREAM, count=count):
        try:
            event = parse(fields.get(keys.PAYLOAD_FIELD.encode(), b""))
        except ValueError:
            continue  # not an event of this schema
        if isinstance(event, kind):
            out.append(event)
    return out


def is_newer(version: str, current: str | None) -> bool:
    """MLflow versions are increasing integers; anything is newer than nothing."""
    if current is None:
        return True
    try:
        return int(version) > int(current)
    except ValueError:
        return version != current


def published_event(
    settings: RegistrySettings, version: str, rollback: bool = False, alias: str = "champion"
) -> ModelPublished:
    """The ModelPublished event of a registered version, with its run's headline metrics."""
    ref = registry.version_ref(settings, version)
    return ModelPublished(
        model_name=settings.model_name,
        version=ref.version,
        model_uri=ref.model_uri,
        run_id=ref.run_id,
        metrics=registry.run_metrics(settings, ref.run_id, EVENT_METRICS),
        rollback=rollback,
        alias=alias,  # type: ignore[arg-type]
    )


def publish_version(
    settings: RegistrySettings,
    client: Any,
    version: str,
    rollback: bool = False,
    make_champion: bool = False,
    alias: str = "champion",
) -> dict[str, Any]:
    """Announce a registered version to every replica, with a sync redis client.

    With `make_champion` the `champion` alias moves to the version first, so
    replicas that start later (or poll the alias) serve it too.
    """
    event = published_event(settings, version, rollback, alias)
    if make_champion:
        registry.set_champion(settings, version)
    entry_id = publish_event(client, event)
    entry_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return {
        "version": event.version,
        "entry_id": entry_id,
        "rollback": rollback,
        "alias": alias,
        "model_uri": event.model_uri,
    }


def rollback(settings: RegistrySettings, client: Any) -> dict[str, Any]:
    """Point `champion` at the previous champion and tell every replica to load it."""
    current = registry.champion_ref(settings).version
    target = registry.previous_champion(settings)
    registry.set_champion(settings, target)
    registry.tag_version(settings, current, {"lifecycle.rolled_back": True})
    return publish_version(settings, client, target, rollback=True)
