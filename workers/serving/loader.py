"""Load a registered model version together with its serving state from MLflow."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from workers.config import PipelineSettings
from workers.pipeline import registry
from workers.serving.state import STATE_ARTIFACT_DIR, STATE_FILE, ServingState

logger = logging.getLogger(__name__)


class NoChampionError(LookupError):
    """No model version carries the `champion` alias yet."""


@dataclass(frozen=True)
class VersionRef:
    version: str
    run_id: str
    model_uri: str


def champion_ref(settings: PipelineSettings) -> VersionRef:
    mlflow = registry._mlflow()
    mlflow.set_tracking_uri(settings.tracking_uri)
    client = mlflow.MlflowClient()
    try:
        mv = client.get_model_version_by_alias(settings.model_name, registry.CHAMPION)
    except mlflow.exceptions.MlflowException as exc:
        raise NoChampionError(f"model {settings.model_name!r} has no {registry.CHAMPION!r} version yet") from exc
    return VersionRef(str(mv.version), str(mv.run_id), f"models:/{settings.model_name}/{mv.version}")


def version_ref(settings: PipelineSettings, version: str) -> VersionRef:
    mlflow = registry._mlflow()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mv = mlflow.MlflowClient().get_model_version(settings.model_name, version)
    return VersionRef(str(mv.version), str(mv.run_id), f"models:/{settings.model_name}/{mv.version}")


def load_state(settings: PipelineSettings, ref: VersionRef) -> ServingState:
    """The model of `ref` and its serving state, with every state row already priced."""
    mlflow = registry._mlflow()
    mlflow.set_tracking_uri(settings.tracking_uri)
    model = registry.load_version(settings, ref.version)
    path = mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path=f"{STATE_ARTIFACT_DIR}/{STATE_FILE}")
    state = pd.read_parquet(path)
    built = ServingState.build(ref.version, state, model)
    del state
    release_memory()
    logger.info("loaded model version %s with %d cards, %d state rows", ref.version, len(built.cards), len(built))
    return built


def release_memory() -> None:
    """Hand the feature frame's memory back to the OS once the state is priced.

    pyarrow keeps freed buffers in its pool and glibc keeps freed heap pages;
    without this a replica serving 10,000 cards keeps its load peak as RSS.
    """
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(ImportError, AttributeError):
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)
