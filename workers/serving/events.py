"""Model events on `pokewatch:model-events`: publishing them, and what counts as newer.

The stream is a broadcast: every model replica XREADs it without a consumer
group, so each replica sees each event.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from contracts import keys
from contracts.messages import ModelEvent, ModelLoadFailed, ModelPublished

EVENTS: TypeAdapter[ModelPublished | ModelLoadFailed] = TypeAdapter(ModelEvent)
EVENTS_MAXLEN = 10_000


def publish_event(client: Any, event: ModelPublished | ModelLoadFailed) -> str:
    """XADD the event with a sync redis client (the CLI, an Airflow RedisHook connection)."""
    entry_id = client.xadd(
        keys.MODEL_EVENTS_STREAM, {keys.PAYLOAD_FIELD: event.model_dump_json()}, maxlen=EVENTS_MAXLEN, approximate=True
    )
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def is_newer(version: str, current: str | None) -> bool:
    """MLflow versions are increasing integers; anything is newer than nothing."""
    if current is None:
        return True
    try:
        return int(version) > int(current)
    except ValueError:
        return version != current
