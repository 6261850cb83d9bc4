"""The register step: log a candidate to MLflow, gate it against the champion, promote.

Gate. The candidate's walk-forward MAPE is compared on the same evaluation
window with (a) the naive baseline and (b) the current champion, re-scored on
that window. It becomes `champion` only if it is no worse than naive (a
candidate that fell back to naive ties naive by construction, and is still
shippable when there is no champion) and beats the champion by more than
noise: the lower end of the 90% card-resampled interval of its MAPE
improvement over the champion is above zero. A candidate equal to the
champion, or better by a hair, is not promoted.
A rejected candidate stays registered, unpromoted; the decision and the
numbers are tags on the model version.

The champion re-scored on the window was trained on all data of its day, which
may include that window: the comparison is tilted in the champion's favour,
so a second run on unchanged data never promotes a worse (or equal) model.
"""

from __future__ import annotations

import logging
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workers import registry
from workers.config import PipelineSettings
from workers.pipeline.metrics import ape_of_returns, card_bootstrap_improvement, mape_of_returns

logger = logging.getLogger(__name__)


@dataclass
class GateDecision:
    version: str
    promoted: bool
    reason: str
    candidate_mape: float
    naive_mape: float
    champion_version: str | None
    champion_mape: float | None
    vs_champion_interval: tuple[float, float] | None = None
    # Passed the gate while a champion serves: on trial as the challenger, or waiting for the slot.
    challenger: bool = False
    waiting: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def decide_gate(
    candidate: float, naive: float, champion: float | None, vs_champion: tuple[float, float] | None = None
) -> tuple[bool, str]:
    """The promotion rule; see the module docstring.

    Args:
        candidate, naive, champion: MAPEs (%) on the evaluation window.
        vs_champion: the 90% card-resampled interval (%) of the candidate's
            MAPE improvement over the champion.
    """
    if candidate > naive:
        return False, f"candidate MAPE {candidate:.4f}% is worse than naive {naive:.4f}%"
    if champion is None:
        return True, "no champion yet and candidate is no worse than naive"
    low, high = vs_champion if vs_champion is not None else (candidate - champion, candidate - champion)
    margin = f"improvement 90% interval {low:+.2f}% .. {high:+.2f}%"
    if candidate < champion and low > 0:
        return True, f"candidate MAPE {candidate:.4f}% beats champion {champion:.4f}% ({margin})"
    return False, f"candidate MAPE {candidate:.4f}% does not beat champion {champion:.4f}% beyond noise ({margin})"


def improvement_over(test: pd.DataFrame, champion_ret: np.ndarray, n_boot: int = 1000) -> tuple[float, float]:
    """The 90% card-resampled interval (%) of the candidate's walk-forward MAPE
    improvement over the champion's forecasts on the same rows."""
    truth = test["target"].to_numpy()
    _, low, high = card_bootstrap_improvement(
        test["card_id"].to_numpy(),
        ape_of_returns(test["pred_model"].to_numpy(), truth),
        ape_of_returns(champion_ret, truth),
        n_boot=n_boot,
    )
    return 100 * low, 100 * high


def register(
    settings: PipelineSettings,
    model: Any,
    evaluation: dict[str, Any],
    test: pd.DataFrame,
    params: dict[str, Any],
    figures: dict[str, Any],
    serving_state: tuple[Path, Path] | pd.DataFrame | None = None,
    champion_realized: dict[str, Any] | None = None,
    step: int = 0,
    champion: tuple[str, Any] | None = None,
) -> GateDecision:
    """Log the candidate run, register a version, gate it, maybe promote it.

    Args:
        settings: tracking URI, model name.
        model: the candidate trained on all data.
        evaluation: walk-forward JSON (see evaluate.EvalResult.to_json).
        test: the evaluation window's rows (features and realised targets).
        params: run parameters to log.
        figures: name -> matplotlib figure.
        serving_state: what the serving replicas load, logged next to the
            model: the priced state's directory and the cards' latest feature
            rows (workers.priced, workers.pipeline.run.merge_priced), or
            feature rows for the replicas to price themselves.
        champion_realized: the champion's live scores (workers.pipeline.monitor),
            logged as `champion_realized.*` metrics at `step` (the collection
            day's number: one point per run) and tags.
        step: the MLflow step of those metrics.
        champion: the current champion's version and its loaded model (None
            if it could not be loaded: then it counts as absent), or None
            when there is no champion.

    Returns:
        The gate decision, also stored as tags on the version.
    """
    mlflow = registry.mlflow()
    experiment_id = registry.configure(settings)
    client = mlflow.MlflowClient()
    current = champion[0] if champion else None
    champion_mape = None
    vs_champion = None
    if champion is not None and champion[1] is not None:
        try:
            champion_ret = champion[1].predict(test).ret
            champion_mape = 100 * mape_of_returns(champion_ret, test["target"].to_numpy())
            vs_champion = improvement_over(test, champion_ret)
        except Exception:  # a champion that cannot score must not block a good candidate
            logger.exception("could not re-score champion version %s; treating it as absent", current)
    candidate_mape = float(evaluation["model"]["mape"])
    naive_mape = float(evaluation["naive"]["mape"])
    promoted, reason = decide_gate(candidate_mape, naive_mape, champion_mape, vs_champion)
    trial = promoted and current is not None and settings.challenger_trial
    if trial:
        # The backtest says it may be better: the prices that follow decide (workers.pipeline.lifecycle).
        promoted = False
        slot = registry.challenger_version(settings)
        reason += (
            "; on trial as the challenger until realized prices decide"
            if slot is None
            else f"; waiting: version {slot} is the challenger"
        )

    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(params)
        for name, metrics in evaluation.items():
            if isinstance(metrics, dict) and name in ("model", "naive", "rolling_mean_3", "momentum", "reversion"):
                numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and v is not None}
                mlflow.log_metrics({f"{name}.{k}": v for k, v in numbers.items() if np.isfinite(v)})
        mlflow.log_metric("model_vs_naive_mape_improvement", evaluation["model_vs_naive_mape_improvement"])
        if champion_realized:
            numbers = {k: float(v) for k, v in champion_realized.items() if isinstance(v, int | float) and v == v}
            mlflow.log_metrics({f"champion_realized.{k}": v for k, v in numbers.items()}, step=step)
            mlflow.set_tags({f"champion_realized.{k}": str(champion_realized.get(k)) for k in ("decay", "reason")})
        mlflow.log_dict(evaluation, "evaluation.json")
        for fname, fig in figures.items():
            mlflow.log_figure(fig, f"plots/{fname}.png")
        if isinstance(serving_state, tuple):
            registry.log_serving(*serving_state)
        elif serving_state is not None:
            registry.log_serving_state(serving_state)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=registry.pyfunc_of(model),
            pip_requirements=registry.PIP_REQUIREMENTS,
            registered_model_name=settings.model_name,
        )
        version = str(info.registered_model_version)
        decision = GateDecision(
            version, promoted, reason, candidate_mape, naive_mape, current, champion_mape, vs_champion
        )
        if trial:
            decision.challenger = slot is None
            decision.waiting = slot is not None
        mlflow.set_tags({f"gate.{k}": str(v) for k, v in decision.as_dict().items()})
    for key, value in decision.as_dict().items():
        client.set_model_version_tag(settings.model_name, version, f"gate.{key}", str(value))
    client.set_model_version_tag(settings.model_name, version, "run_id", run.info.run_id)
    if promoted:
        registry.set_champion(settings, version)
        logger.info("version %s promoted to %s: %s", version, registry.CHAMPION, reason)
    elif decision.challenger:
        registry.set_challenger(settings, version)
        client.set_model_version_tag(settings.model_name, version, "lifecycle.challenger_since", f"{time.time():.3f}")
        logger.info("version %s is the %s: %s", version, registry.CHALLENGER, reason)
    elif decision.waiting:
        client.set_model_version_tag(settings.model_name, version, "lifecycle.waiting", "True")
        logger.info("version %s passed the gate and waits for the challenger slot: %s", version, reason)
    else:
        logger.info("version %s registered, not promoted: %s", version, reason)
    return decision


def save_candidate(model: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pickle.dump(model, fh)
    return path


def load_candidate(path: Path) -> Any:
    with path.open("rb") as fh:
        return pickle.load(fh)  # noqa: S301 - our own file, written by save_candidate
