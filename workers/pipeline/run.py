"""The pipeline's steps as plain functions that exchange paths, not frames.

Each step reads what the previous one wrote under the data dir, so it can run
alone (`pokewatch pipeline <step>`), in one process (`pokewatch pipeline run`)
or as an Airflow task. The collection date names every partition, so
re-running a day replaces that day.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from contracts.history import day_number
from workers.config import PipelineSettings
from workers.pipeline import register as gate
from workers.pipeline.evaluate import EvalConfig, fold_processes, walk_forward, with_targets
from workers.pipeline.features import FEATURE_COLUMNS, build_features
from workers.pipeline.models import GBMModel
from workers.pipeline.schema import validate as validate_rows
from workers.pipeline.serving_state import build_serving_state
from workers.pipeline.sources import make_source
from workers.pipeline.storage import DataStore, atomic_write_json, atomic_write_parquet
from workers.pipeline.tracked_cards import load_tracked_cards
from workers.signals import FIXED

logger = logging.getLogger(__name__)

STEPS = ("collect", "validate", "features", "train", "evaluate", "register")


def json_safe(obj: Any) -> Any:
    """NaN and infinities (e.g. a hit rate with no signals) as None: results travel as strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def eval_config(settings: PipelineSettings) -> EvalConfig:
    return EvalConfig(
        horizon=settings.horizon,
        fair_horizon=settings.fair_horizon,
        train_fraction=settings.train_fraction,
        embargo_days=settings.embargo_days,
        rule=settings.rule,
        fee=settings.trade_fee,
        max_train_rows=settings.max_train_rows,
        folds=settings.eval_folds,
        half_life_days=settings.half_life_days,
        max_signal_share=settings.max_signal_share,
    )


def collect(settings: PipelineSettings, source: str, day: date, input_path: Path | None = None) -> dict[str, Any]:
    """Fetch from the source and land the table as it came."""
    frame = make_source(source, settings, input_path).fetch(day)
    path = DataStore(settings.data_dir).write_landing(frame, day, source)
    logger.info("collected %d rows from %s into %s", len(frame), source, path)
    return {"landing": str(path), "fetched": len(frame)}


def validate(settings: PipelineSettings, source: str, day: date, cards_file: Path | None = None) -> dict[str, Any]:
    """Validate the landed table: clean rows to raw/, rejected rows to quarantine/."""
    store = DataStore(settings.data_dir)
    landed = pd.read_parquet(store.landing_path(day, source))
    known = load_tracked_cards(cards_file).card_ids if cards_file else None
    result = validate_rows(landed, known_cards=known)
    raw = atomic_write_parquet(result.clean, store.raw_path(day, source))
    quarantine = store.write_quarantine(result.quarantined, day, source)
    reasons = result.reasons()
    if reasons:
        logger.warning("quarantined %d rows: %s", len(result.quarantined), reasons)
    return {
        "raw": str(raw),
        "accepted": len(result.clean),
        "quarantined": len(result.quarantined),
        "quarantine_reasons": reasons,
        "quarantine": str(quarantine) if quarantine else None,
    }


def features(settings: PipelineSettings, source: str) -> dict[str, Any]:
    """Rebuild the feature table from every collected day of the source."""
    store = DataStore(settings.data_dir)
    prices = store.read_raw(source)
    table = build_features(prices)
    path = atomic_write_parquet(table, store.features_path(source))
    return {"features": str(path), "rows": len(table), "cards": int(table["card_id"].nunique())}


def _load_features(settings: PipelineSettings, source: str) -> pd.DataFrame:
    return pd.read_parquet(DataStore(settings.data_dir).features_path(source))


def train(settings: PipelineSettings, source: str, day: date) -> dict[str, Any]:
    """Fit the candidate on all history (with its guarded fallback) and save it."""
    cfg = eval_config(settings)
    frame = with_targets(_load_features(settings, source), cfg.horizon, cfg.fair_horizon)
    model = GBMModel(
        cfg.horizon,
        cfg.fair_horizon,
        cfg.max_train_rows,
        cfg.half_life_days,
        rule=cfg.rule,
        fee=cfg.fee,
        max_signal_share=cfg.max_signal_share,
    )
    model.fit(frame)
    path = gate.save_candidate(model, DataStore(settings.data_dir).candidate_dir(day, source) / "model.pkl")
    return json_safe({"model": str(path), "selection": model.choice})


def evaluate(settings: PipelineSettings, source: str, day: date) -> dict[str, Any]:
    """Walk-forward evaluation of model and baselines; writes evaluation.json."""
    cfg = eval_config(settings)
    result = walk_forward(_load_features(settings, source), cfg)
    out_dir = DataStore(settings.data_dir).candidate_dir(day, source)
    keep = ["card_id", "date", "log_price", "target", *FEATURE_COLUMNS]
    keep += [c for c in result.test.columns if c.startswith(("pred_", "fair_", "way_"))]
    atomic_write_parquet(result.test[list(dict.fromkeys(keep))], out_dir / "test.parquet")
    evaluation = result.to_json()
    path = atomic_write_json(evaluation, out_dir / "evaluation.json")
    return json_safe(
        {
            "evaluation": str(path),
            "model_mape": evaluation["model"]["mape"],
            "naive_mape": evaluation["naive"]["mape"],
            "model_vs_naive_mape_improvement": evaluation["model_vs_naive_mape_improvement"],
            "signal_rate": evaluation["model"]["signal_rate"],
            "hit_rate": evaluation["model"]["hit_rate"],
            "signal_lift": evaluation["model"].get("signal_lift"),
            "one_line_best": evaluation.get("one_line_best"),
        }
    )


def register(settings: PipelineSettings, source: str, day: date) -> dict[str, Any]:
    """Log to MLflow, register a version, promote it to champion if it passes the gate."""
    from workers.pipeline.plots import evaluation_figures

    out_dir = DataStore(settings.data_dir).candidate_dir(day, source)
    model = gate.load_candidate(out_dir / "model.pkl")
    evaluation = json.loads((out_dir / "evaluation.json").read_text(encoding="utf-8"))
    test = pd.read_parquet(out_dir / "test.parquet")
    params = {
        "source": source,
        "collection_date": day.isoformat(),
        "horizon": settings.horizon,
        "fair_horizon": settings.fair_horizon,
        "buy_threshold": settings.buy_threshold,
        "sell_threshold": settings.sell_threshold,
        "trade_fee": settings.trade_fee,
        # The signal rule chosen on validation (workers.signals), its k, and why.
        "signal_rule": getattr(model, "signal_policy", FIXED).rule,
        "signal_k": getattr(model, "signal_policy", FIXED).k,
        "signal_rule_reason": getattr(model, "signal_policy", FIXED).reason[:500],
        # How the rule did on validation, and the better one-line rule at its rate.
        "signal_validation_hit_rate": getattr(model, "signal_policy", FIXED).hit_rate,
        "signal_validation_fire_rate": getattr(model, "signal_policy", FIXED).fire_rate,
        "signal_baseline": getattr(model, "signal_policy", FIXED).baseline,
        "signal_baseline_hit_rate": getattr(model, "signal_policy", FIXED).baseline_hit_rate,
        "one_line_best": evaluation.get("one_line_best"),
        # The recency half-life and the forecast's weight, chosen on validation.
        "half_life_days": getattr(model, "choice", {}).get("half_life_days"),
        "forecast_weight": getattr(model, "choice", {}).get("forecast_weight"),
        "train_fraction": settings.train_fraction,
        # Baselines are first-class models and register too; they have no selection.
        "forecast_choice": getattr(model, "choice", {}).get("forecast", model.name),
        "fair_choice": getattr(model, "choice", {}).get("fair", model.name),
        # How far conformal calibration moved the interval's bounds (log-return units).
        "interval_adjust": getattr(model, "choice", {}).get("interval_adjust", 0.0),
        "cutoff": evaluation.get("cutoff"),
        "n_train": evaluation.get("n_train"),
        "n_test": evaluation.get("n_test"),
    }
    figures = evaluation_figures(test)
    table = _load_features(settings, source)
    champion = load_champion(settings)
    live = score_champion(settings, table, champion) if champion else None
    state = build_serving_state(table, settings.serving_days)
    step = day_number(day)
    loaded = (champion[0].version, champion[1][0] if champion[1] else None) if champion else None
    decision = gate.register(settings, model, evaluation, test, params, figures, state, live, step, loaded)
    return json_safe({**decision.as_dict(), "champion_realized": live})


def load_champion(settings: PipelineSettings) -> tuple[Any, tuple[Any, pd.DataFrame] | None] | None:
    """The champion's reference with its model and serving state (None if they cannot be
    loaded), or None when there is no champion. Loaded once for the gate and the live scores."""
    from workers import registry

    try:
        ref = registry.champion_ref(settings)
    except registry.NoChampionError:
        return None
    try:
        return ref, registry.load_version(settings, ref)
    except Exception:  # an unloadable champion must not block the run
        logger.exception("could not load champion version %s; treating it as absent", ref.version)
        return ref, None


def score_champion(
    settings: PipelineSettings, table: pd.DataFrame, champion: tuple[Any, tuple[Any, pd.DataFrame] | None]
) -> dict[str, Any] | None:
    """The champion's live scores on the prices that arrived since it was trained (workers.pipeline.monitor)."""
    from workers import registry
    from workers.pipeline import monitor

    ref, loaded = champion
    if loaded is None:
        return None
    model, state = loaded
    try:
        scored = monitor.outcomes(
            monitor.latest_forecasts(state, model, settings.rule, settings.trade_fee),
            table,
            getattr(model, "horizon", settings.horizon),
        )
        backtest = registry.run_metrics(settings, ref.run_id, ("model.mape",)).get("model.mape")
        return {"champion_version": ref.version, **monitor.realized_metrics(scored, backtest)}
    except Exception:  # scoring must not block the run
        logger.exception("could not score champion version %s on the prices since", ref.version)
        return None


def run_all(
    settings: PipelineSettings,
    source: str,
    day: date,
    input_path: Path | None = None,
    cards_file: Path | None = None,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every step in order; returns and saves the run summary."""
    summary: dict[str, Any] = {"source": source, "collection_date": day.isoformat(), "steps": {}}
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "collect": lambda: collect(settings, source, day, input_path),
        "validate": lambda: validate(settings, source, day, cards_file),
        "features": lambda: features(settings, source),
        "train": lambda: train(settings, source, day),
        "evaluate": lambda: evaluate(settings, source, day),
        "register": lambda: register(settings, source, day),
    }
    done = summary["steps"]
    for name, step in steps.items():
        if name in done:
            continue
        if on_step:
            on_step(name)
        if name == "train" and _side_by_side(done["features"]["rows"]):
            # Train and evaluate read the same features and write different
            # files. The evaluation's fold processes leave a core partly idle
            # (uneven folds, serial stretches); the final fit fills it.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="train") as pool:
                trained = pool.submit(_timed, lambda: _single_threaded(steps["train"]))
                if on_step:
                    on_step("evaluate")
                evaluated = _timed(steps["evaluate"])
                done["train"] = trained.result()
                done["train"]["beside_evaluate"] = True
            done["evaluate"] = evaluated
            continue
        done[name] = _timed(step)
    atomic_write_json(summary, DataStore(settings.data_dir).summary_path(day, source))
    return summary


def _side_by_side(feature_rows: int) -> bool:
    """Whether the final fit runs beside the evaluation: only where the
    evaluation fits its folds in parallel processes."""
    return fold_processes(feature_rows) > 1


def _single_threaded(step: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    with threadpool_limits(1):
        return step()


def _timed(step: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    result = step()
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result
