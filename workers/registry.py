"""The MLflow model registry, for the pipeline and the serving replicas alike.

Everything that names or finds a model version lives here: the `champion`
alias, version references and their URIs, the artifacts logged beside a model
(the serving state) and loading a version with that state. The pipeline's
register step (workers.pipeline.register) writes versions through it; model
replicas (workers.serving) read them through it; neither imports the other.

MLflow is imported on first use (about 2 s), never at import time.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from workers.config import RegistrySettings

logger = logging.getLogger(__name__)

CHAMPION = "champion"
# The version challenger replicas shadow-score beside the champion (workers.pipeline.lifecycle).
CHALLENGER = "challenger"
# What a replica serves, logged in the model's run: the priced state
# (workers.priced), and each card's latest feature row (the champion's live
# scores re-run the model on them). Versions from before the priced state
# carry the feature rows (state.parquet) that a replica prices itself.
STATE_ARTIFACT_DIR = "serving"
PRICED_DIR = "priced"
LATEST_FILE = "latest.parquet"
STATE_FILE = "state.parquet"
# Explicit requirements make log_model ~3x faster (no environment inference).
PIP_REQUIREMENTS = ["scikit-learn", "pandas", "numpy", "pyarrow"]


class NoChampionError(LookupError):
    """No model version carries the `champion` alias yet."""


@dataclass(frozen=True)
class VersionRef:
    """One registered version: its number, the run that logged it, its URI."""

    version: str
    run_id: str
    model_uri: str


def mlflow() -> Any:
    import mlflow as _mlflow

    return _mlflow


def client(settings: RegistrySettings) -> Any:
    """An MlflowClient on the settings' tracking URI."""
    mlflow().set_tracking_uri(settings.tracking_uri)
    return mlflow().MlflowClient()


def configure(settings: RegistrySettings) -> str:
    """Point MLflow at the tracking URI and ensure the experiment exists.

    Returns:
        The experiment id.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ml = mlflow()
    ml.set_tracking_uri(settings.tracking_uri)
    exp = ml.get_experiment_by_name(settings.experiment_name)
    if exp is not None:
        return str(exp.experiment_id)
    return str(ml.create_experiment(settings.experiment_name, artifact_location=settings.artifact_root.as_uri()))


def model_uri(model_name: str, version: str) -> str:
    return f"models:/{model_name}/{version}"


def _ref(settings: RegistrySettings, mv: Any) -> VersionRef:
    return VersionRef(str(mv.version), str(mv.run_id), model_uri(settings.model_name, str(mv.version)))


def alias_ref(settings: RegistrySettings, alias: str) -> VersionRef:
    """The version an alias points at; NoChampionError if none does."""
    mlc = client(settings)
    try:
        mv = mlc.get_model_version_by_alias(settings.model_name, alias)
    except mlflow().exceptions.MlflowException as exc:
        raise NoChampionError(f"model {settings.model_name!r} has no {alias!r} version yet") from exc
    return _ref(settings, mv)


def champion_ref(settings: RegistrySettings) -> VersionRef:
    """The version the `champion` alias points at; NoChampionError if none."""
    return alias_ref(settings, CHAMPION)


def challenger_version(settings: RegistrySettings) -> str | None:
    try:
        return alias_ref(settings, CHALLENGER).version
    except NoChampionError:
        return None


def set_challenger(settings: RegistrySettings, version: str) -> None:
    client(settings).set_registered_model_alias(settings.model_name, CHALLENGER, version)


def clear_challenger(settings: RegistrySettings) -> None:
    """No version is the challenger any more (promoted, retired or withdrawn)."""
    mlc = client(settings)
    try:
        mlc.delete_registered_model_alias(settings.model_name, CHALLENGER)
    except mlflow().exceptions.MlflowException:
        pass  # there was none


def champion_version(settings: RegistrySettings) -> str | None:
    try:
        return champion_ref(settings).version
    except NoChampionError:
        return None


def version_ref(settings: RegistrySettings, version: str) -> VersionRef:
    return _ref(settings, client(settings).get_model_version(settings.model_name, version))


def set_champion(settings: RegistrySettings, version: str) -> None:
    client(settings).set_registered_model_alias(settings.model_name, CHAMPION, version)


def versions(settings: RegistrySettings) -> list[Any]:
    """Every registered version (MLflow ModelVersion objects), newest first."""
    found = client(settings).search_model_versions(f"name='{settings.model_name}'")
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def was_champion(tags: dict[str, str]) -> bool:
    """Whether a version served as champion (by the gate or by the lifecycle rule) and was not rolled back."""
    promoted = tags.get("gate.promoted") == "True" or tags.get("lifecycle.promoted") == "True"
    return promoted and tags.get("lifecycle.rolled_back") != "True"


def previous_champion(settings: RegistrySettings) -> str:
    """The newest version before the current champion that served as champion and was not rolled back."""
    current = int(champion_ref(settings).version)
    earlier = [int(v.version) for v in versions(settings) if int(v.version) < current and was_champion(v.tags)]
    if not earlier:
        raise LookupError(f"no version before champion {current} was ever promoted: nothing to roll back to")
    return str(max(earlier))


def previous_champion_version(settings: RegistrySettings) -> str | None:
    try:
        return previous_champion(settings)
    except (LookupError, NoChampionError):
        return None


def tag_version(settings: RegistrySettings, version: str, tags: dict[str, Any]) -> None:
    mlc = client(settings)
    for key, value in tags.items():
        mlc.set_model_version_tag(settings.model_name, version, key, str(value))


def run_metrics(settings: RegistrySettings, run_id: str, prefixes: tuple[str, ...]) -> dict[str, float]:
    """The run's logged metrics whose names start with one of `prefixes`."""
    run = client(settings).get_run(run_id)
    return {k: float(v) for k, v in run.data.metrics.items() if k.startswith(prefixes)}


# ---------------------------------------------------------------- the model artifact


class PriceModelPyfunc:
    """MLflow pyfunc wrapper: features in, log-ratio forecasts out."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        fc = self.model.predict(model_input)
        return pd.DataFrame({"ret": fc.ret, "low": fc.low, "high": fc.high, "fair": fc.fair})


def pyfunc_of(model: Any) -> Any:
    """The model wrapped as an MLflow PythonModel, ready for `log_model`."""

    class _Wrapper(PriceModelPyfunc, mlflow().pyfunc.PythonModel):  # type: ignore[misc, name-defined]
        pass

    _Wrapper.__name__ = "PriceModelPyfunc"
    _Wrapper.__qualname__ = "PriceModelPyfunc"
    return _Wrapper(model)


def load_model(settings: RegistrySettings, version: str) -> Any:
    """A registered version's PokeWatch model object (not the pyfunc shell)."""
    return _unwrap(settings, model_uri(settings.model_name, version))


def _unwrap(settings: RegistrySettings, uri: str) -> Any:
    mlflow().set_tracking_uri(settings.tracking_uri)
    return mlflow().pyfunc.load_model(uri).unwrap_python_model().model


def log_serving_state(state: pd.DataFrame) -> None:
    """Log feature rows for a replica to price itself (the older layout; tests and baselines)."""
    with tempfile.TemporaryDirectory(prefix="pokewatch-state-") as tmp:
        path = Path(tmp) / STATE_FILE
        state.to_parquet(path, index=False)
        mlflow().log_artifact(str(path), artifact_path=STATE_ARTIFACT_DIR)


def log_serving(priced_dir: Path, latest: Path | None = None) -> None:
    """Log the merged priced state (workers.priced) and the cards' latest feature rows into the active run."""
    mlflow().log_artifacts(str(priced_dir), artifact_path=f"{STATE_ARTIFACT_DIR}/{PRICED_DIR}")
    if latest is not None:
        mlflow().log_artifact(str(latest), artifact_path=STATE_ARTIFACT_DIR)


def _artifacts(ref: VersionRef) -> set[str]:
    return {Path(a.path).name for a in mlflow().MlflowClient().list_artifacts(ref.run_id, STATE_ARTIFACT_DIR)}


def priced_dir(settings: RegistrySettings, ref: VersionRef) -> Path | None:
    """Where the version's priced state is on this machine (None for a version without one).

    With a local artifact store, the logged directory itself: every replica
    on the machine maps the same files and shares their pages. Otherwise it
    is downloaded once into `<data dir>/serving-cache/<run id>`, which the
    replicas of the machine share. (MLflow's own download would copy it into
    a new temporary directory per load.)
    """
    mlflow().set_tracking_uri(settings.tracking_uri)
    if PRICED_DIR not in _artifacts(ref):
        return None
    path = f"{STATE_ARTIFACT_DIR}/{PRICED_DIR}"
    root = urllib.parse.urlparse(mlflow().get_run(ref.run_id).info.artifact_uri)
    if root.scheme in ("", "file"):
        local = Path(urllib.request.url2pathname(root.path)) / path
        if (local / "meta.json").exists():
            return local
    cache = Path(settings.data_dir) / "serving-cache" / ref.run_id
    if not (cache / PRICED_DIR / "meta.json").exists():
        tmp = cache.with_name(f".{ref.run_id}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        mlflow().artifacts.download_artifacts(run_id=ref.run_id, artifact_path=path, dst_path=str(tmp))
        shutil.rmtree(cache, ignore_errors=True)
        os.replace(tmp / STATE_ARTIFACT_DIR, cache)
        shutil.rmtree(tmp, ignore_errors=True)
    return cache / PRICED_DIR


def load_version(settings: RegistrySettings, ref: VersionRef) -> tuple[Any, pd.DataFrame]:
    """The model of `ref` and the feature rows logged with it: each card's latest row, or
    (older versions) every served row."""
    model = _unwrap(settings, ref.model_uri)
    name = LATEST_FILE if LATEST_FILE in _artifacts(ref) else STATE_FILE
    path = mlflow().artifacts.download_artifacts(run_id=ref.run_id, artifact_path=f"{STATE_ARTIFACT_DIR}/{name}")
    return model, pd.read_parquet(path)
