"""Announce a model version to every serving replica, and move the champion back.

Used by the Airflow DAG's publish task (through the Redis provider's
connection) and by `pokewatch model publish|rollback` (through REDIS_URL).
"""

from __future__ import annotations

from typing import Any

from contracts.messages import ModelPublished
from workers.config import PipelineSettings
from workers.pipeline import registry
from workers.serving.events import publish_event
from workers.serving.loader import champion_ref, version_ref


def model_event(settings: PipelineSettings, version: str, rollback: bool = False) -> ModelPublished:
    """The ModelPublished event of a registered version, with its run's headline metrics."""
    ref = version_ref(settings, version)
    mlflow = registry._mlflow()
    run = mlflow.MlflowClient().get_run(ref.run_id)
    metrics = {k: float(v) for k, v in run.data.metrics.items() if k.startswith(("model.", "naive.", "model_vs"))}
    return ModelPublished(
        model_name=settings.model_name,
        version=ref.version,
        model_uri=ref.model_uri,
        run_id=ref.run_id,
        metrics=metrics,
        rollback=rollback,
    )


def publish_version(
    settings: PipelineSettings, client: Any, version: str, rollback: bool = False, make_champion: bool = False
) -> dict[str, Any]:
    """XADD the version's event on the model-events stream with a sync redis client.

    With `make_champion` the `champion` alias moves to the version first, so
    replicas that start later (or poll the alias) serve it too.
    """
    event = model_event(settings, version, rollback)
    if make_champion:
        registry._mlflow().MlflowClient().set_registered_model_alias(settings.model_name, registry.CHAMPION, version)
    entry_id = publish_event(client, event)
    return {"version": event.version, "entry_id": entry_id, "rollback": rollback, "model_uri": event.model_uri}


def previous_champion(settings: PipelineSettings) -> str:
    """The newest version before the current champion that the gate once promoted."""
    current = champion_ref(settings).version
    mlflow = registry._mlflow()
    client = mlflow.MlflowClient()
    versions = client.search_model_versions(f"name='{settings.model_name}'")
    promoted = sorted(
        (int(v.version) for v in versions if v.tags.get("gate.promoted") == "True" and int(v.version) < int(current)),
        reverse=True,
    )
    if not promoted:
        raise LookupError(f"no version before champion {current} was ever promoted: nothing to roll back to")
    return str(promoted[0])


def rollback(settings: PipelineSettings, client: Any) -> dict[str, Any]:
    """Point `champion` at the previous champion and tell every replica to load it."""
    target = previous_champion(settings)
    mlflow = registry._mlflow()
    mlflow.MlflowClient().set_registered_model_alias(settings.model_name, registry.CHAMPION, target)
    return publish_version(settings, client, target, rollback=True)
