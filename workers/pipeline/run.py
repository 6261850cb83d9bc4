"""The pipeline's steps as plain functions that exchange paths, not frames.

Each step reads what the previous one wrote under the data dir, so it can run
alone (`pokewatch pipeline <step>`), in one process (`pokewatch pipeline run`)
or as an Airflow task. The collection date names every file, so re-running a
day replaces that day.

The catalogue is split into partitions of whole cards (`plan`,
workers.pipeline.partitions). Collect, validate, features and price run once
per partition (an Airflow mapped task each), so their memory is bounded by
the partition and they run on as many workers as there are. `context` joins
the partitions: the feed's and the sets' daily moves, the card list.
Training and evaluation read a bounded sample of whole cards across the
partitions (`sample_cards`), so their cost does not grow with the catalogue.

Why this module runs past 300 lines: every step is here, one function each,
with the partition plumbing they share, so the CLI, `run_all`, the DAG and
the benchmark call the same code.
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
from workers import priced
from workers.config import PipelineSettings
from workers.pipeline import register as gate
from workers.pipeline.evaluate import EvalConfig, fold_processes, walk_forward, with_targets
from workers.pipeline.features import FEATURE_COLUMNS, add_context, card_features, context_tables
from workers.pipeline.models import GBMModel
from workers.pipeline.partitions import Partition, partition_count, partitions, sample_order
from workers.pipeline.schema import validate as validate_rows
from workers.pipeline.serving_state import build_serving_state
from workers.pipeline.sources import make_source
from workers.pipeline.storage import DataStore, atomic_write_json, atomic_write_parquet
from workers.pipeline.tracked_cards import load_tracked_cards
from workers.signals import FIXED

logger = logging.getLogger(__name__)

STEPS = ("collect", "validate", "features", "context", "train", "evaluate", "price", "register")
# The steps that run once per partition (Airflow mapped tasks).
MAPPED = ("collect", "validate", "features", "price")


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


def plan(settings: PipelineSettings, source: str, input_path: Path | None = None) -> list[Partition]:
    """The partitions of this run: one per `cards_per_partition` cards of the source's catalogue
    (`partitions` fixes the count; a source that cannot tell its size gets one)."""
    size = make_source(source, settings, input_path).catalogue_size() if settings.partitions is None else None
    return partitions(partition_count(size or 1, settings.cards_per_partition, settings.partitions))


def landed(settings: PipelineSettings, area: str, source: str, day: date | None = None) -> list[Partition]:
    """The partitions a day (default: the newest) was collected in, read from its files' names."""
    root = DataStore(settings.data_dir).root / area
    days = sorted(root.glob(f"collection_date={day.isoformat() if day else '*'}/source={source}"))
    if not days:
        raise FileNotFoundError(f"nothing collected for source {source!r} under {root}")
    counts = {int(f.stem.rsplit("-of-", 1)[1]) for f in days[-1].glob("*-part-*.parquet")}
    return partitions(max(counts) if counts else 1)


def collect(
    settings: PipelineSettings, source: str, day: date, input_path: Path | None = None, part: Partition | None = None
) -> dict[str, Any]:
    """Fetch the partition's cards from the source and land the table as it came."""
    part = part or Partition(0, 1)
    frame = make_source(source, settings, input_path).fetch(day, part)
    path = DataStore(settings.data_dir).write_landing(frame, day, source, part)
    logger.info("collected %d rows of %s from %s into %s", len(frame), part.name, source, path)
    return {"landing": str(path), "fetched": len(frame)}


def validate(
    settings: PipelineSettings, source: str, day: date, cards_file: Path | None = None, part: Partition | None = None
) -> dict[str, Any]:
    """Validate the partition's landed table: clean rows to raw/, rejected rows to quarantine/."""
    part = part or Partition(0, 1)
    store = DataStore(settings.data_dir)
    landed = pd.read_parquet(store.landing_path(day, source, part))
    known = load_tracked_cards(cards_file).card_ids if cards_file else None
    result = validate_rows(landed, known_cards=known)
    raw = store.write_partition(result.clean, store.raw_path(day, source, part), part)
    quarantine = store.write_quarantine(result.quarantined, day, source, part)
    reasons = result.reasons()
    if reasons:
        logger.warning("quarantined %d rows of %s: %s", len(result.quarantined), part.name, reasons)
    return {
        "raw": str(raw),
        "accepted": len(result.clean),
        "quarantined": len(result.quarantined),
        "quarantine_reasons": reasons,
        "quarantine": str(quarantine) if quarantine else None,
    }


def features(settings: PipelineSettings, source: str, part: Partition | None = None) -> dict[str, Any]:
    """Rebuild the partition's per-card features from every collected day of its cards
    (without a partition: every partition of the newest collection, then the context)."""
    if part is None:
        parts = landed(settings, "raw", source)
        out = combine("features", [features(settings, source, p) for p in parts])
        return {**out, "context": context(settings, source, len(parts))["context"]}
    store = DataStore(settings.data_dir)
    table = card_features(store.read_raw(source, part))
    path = store.write_partition(table, store.features_path(source, part), part)
    cards = table.groupby("card_id", sort=False).size()
    store.write_partition(
        pd.DataFrame({"card_id": cards.index.astype(str), "rows": cards.to_numpy()}),
        store.features_dir(source) / f"cards-{part.name}.parquet",
        part,
    )
    return {"features": str(path), "rows": len(table), "cards": len(cards)}


def context(settings: PipelineSettings, source: str, count: int | None = None) -> dict[str, Any]:
    """The feed's and the sets' daily median moves over every partition, and the manifest.

    Reads four columns of each partition's features (Polars); writes
    context.parquet, sets.parquet and manifest.json, which every later step reads.
    """
    store = DataStore(settings.data_dir)
    directory = store.features_dir(source)
    files = sorted(directory.glob("features-part-*.parquet"))
    counts = {int(f.stem.rsplit("-of-", 1)[1]) for f in files}
    if count is None:
        if len(counts) != 1:
            raise FileNotFoundError(f"no single partitioning of features under {directory}: {sorted(counts)}")
        count = counts.pop()
    files = [store.features_path(source, p) for p in partitions(count)]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"features missing for {len(missing)} partition(s): {missing[:5]}")
    feed, sets = context_tables(*files)
    atomic_write_parquet(feed, directory / "context.parquet")
    atomic_write_parquet(sets, directory / "sets.parquet")
    cards = pd.concat([pd.read_parquet(directory / f"cards-{p.name}.parquet") for p in partitions(count)])
    manifest = {"partitions": count, "rows": int(cards["rows"].sum()), "cards": len(cards)}
    atomic_write_json(manifest, directory / "manifest.json")
    return {"context": str(directory / "context.parquet"), **manifest}


def manifest(settings: PipelineSettings, source: str) -> dict[str, Any]:
    path = DataStore(settings.data_dir).features_dir(source) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no features for source {source!r}: run the features and context steps first")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def sample_cards(settings: PipelineSettings, source: str) -> list[str] | None:
    """Whole cards in a stable hash order, up to `sample_rows` feature rows (None: every card fits)."""
    count = manifest(settings, source)["partitions"]
    directory = DataStore(settings.data_dir).features_dir(source)
    cards = pd.concat([pd.read_parquet(directory / f"cards-{p.name}.parquet") for p in partitions(count)])
    if cards["rows"].sum() <= settings.sample_rows:
        return None
    rows = cards.set_index("card_id")["rows"]
    order = sample_order(rows.index)
    taken = rows.loc[order].cumsum()
    return order[: max(1, int((taken <= settings.sample_rows).sum()))]


def load_features(
    settings: PipelineSettings, source: str, cards: list[str] | None = None, part: Partition | None = None
) -> pd.DataFrame:
    """Feature rows with their context: of one partition, of the given cards, or of every card."""
    store = DataStore(settings.data_dir)
    directory = store.features_dir(source)
    count = manifest(settings, source)["partitions"]
    chosen = [part] if part is not None else partitions(count)
    frames = []
    for p in chosen:
        if cards is None:
            frames.append(pd.read_parquet(store.features_path(source, p)))
        else:
            mine = [c for c, held in zip(cards, p.holds(cards), strict=True) if held]
            if mine:
                frames.append(pd.read_parquet(store.features_path(source, p), filters=[("card_id", "in", mine)]))
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    table = table.sort_values(["card_id", "date"], kind="mergesort").reset_index(drop=True)
    return add_context(
        table, pd.read_parquet(directory / "context.parquet"), pd.read_parquet(directory / "sets.parquet")
    )


def _load_features(settings: PipelineSettings, source: str) -> pd.DataFrame:
    """What training and evaluation read: the sample of whole cards (every card in a small catalogue)."""
    return load_features(settings, source, sample_cards(settings, source))


def train(settings: PipelineSettings, source: str, day: date) -> dict[str, Any]:
    """Fit the candidate on the sample's history (with its guarded fallback) and save it."""
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
    """Walk-forward evaluation of model and baselines on the sample's cards; writes evaluation.json."""
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


def price(settings: PipelineSettings, source: str, day: date, part: Partition | None = None) -> dict[str, Any]:
    """Run the candidate over the partition's served rows (its last `serving_days` days per card)
    and write them priced (workers.priced), with each card's latest feature row (without a
    partition: every partition)."""
    if part is None:
        count = manifest(settings, source)["partitions"]
        return combine("price", [price(settings, source, day, p) for p in partitions(count)])
    store = DataStore(settings.data_dir)
    model = gate.load_candidate(store.candidate_dir(day, source) / "model.pkl")
    state = build_serving_state(load_features(settings, source, part=part), settings.serving_days)
    out = priced.write_part(priced.price(state, model), store.priced_path(day, source, part))
    latest = state.groupby("card_id", sort=False).tail(1)
    atomic_write_parquet(latest, out.with_name(f"latest-{part.name}.parquet"))
    return {"priced": str(out), "rows": len(state), "cards": len(latest)}


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
    serving = merge_priced(settings, source, day)
    table = _load_features(settings, source)
    champion = load_champion(settings)
    live = score_champion(settings, table, champion) if champion else None
    step = day_number(day)
    loaded = (champion[0].version, champion[1][0] if champion[1] else None) if champion else None
    decision = gate.register(settings, model, evaluation, test, params, figures, serving, live, step, loaded)
    return json_safe({**decision.as_dict(), "champion_realized": live})


def merge_priced(settings: PipelineSettings, source: str, day: date) -> tuple[Path, Path]:
    """Every partition's priced rows as one state (workers.priced.merge), and every card's latest row.

    A partition that has not been priced fails the step: a state missing
    cards never ships."""
    store = DataStore(settings.data_dir)
    count = manifest(settings, source)["partitions"]
    parts = [store.priced_path(day, source, p) for p in partitions(count)]
    missing = [p.name for p in parts if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} partition(s) not priced: {missing[:5]}")
    out = store.candidate_dir(day, source) / "serving"
    priced.merge(parts, out / "priced")
    latest = pd.concat(
        [pd.read_parquet(p.with_name(p.name.replace("priced-", "latest-"))) for p in parts], ignore_index=True
    )
    return out / "priced", atomic_write_parquet(latest, out / "latest.parquet")


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
    """Every step in order, the mapped ones over every partition in turn; returns and saves the run summary."""
    summary: dict[str, Any] = {"source": source, "collection_date": day.isoformat(), "steps": {}}
    parts = plan(settings, source, input_path)
    mapped: dict[str, Callable[[Partition], dict[str, Any]]] = {
        "collect": lambda p: collect(settings, source, day, input_path, p),
        "validate": lambda p: validate(settings, source, day, cards_file, p),
        "features": lambda p: features(settings, source, p),
        "price": lambda p: price(settings, source, day, p),
    }
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        **{name: _over(name, mapped[name], parts) for name in mapped},
        "context": lambda: context(settings, source, len(parts)),
        "train": lambda: train(settings, source, day),
        "evaluate": lambda: evaluate(settings, source, day),
        "register": lambda: register(settings, source, day),
    }
    done = summary["steps"]
    for name in STEPS:
        if name in done:
            continue
        if on_step:
            on_step(name)
        if name == "train" and _side_by_side(sample_rows(done["context"]["rows"], settings)):
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
        done[name] = _timed(steps[name])
    atomic_write_json(summary, DataStore(settings.data_dir).summary_path(day, source))
    return summary


def _over(
    name: str, step: Callable[[Partition], dict[str, Any]], parts: list[Partition]
) -> Callable[[], dict[str, Any]]:
    """The mapped step over every partition in turn, each timed, as one step."""
    return lambda: combine(name, [_timed(lambda p=p: step(p)) for p in parts])  # type: ignore[misc]


def sample_rows(rows: int, settings: PipelineSettings) -> int:
    """How many feature rows training and evaluation read of a catalogue of `rows`."""
    return min(rows, settings.sample_rows)


def combine(name: str, outs: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure per mapped step from its partitions' outputs: counts add up, reasons merge."""
    out: dict[str, Any] = {"partitions": len(outs)}
    for key in ("fetched", "accepted", "quarantined", "rows", "cards"):
        if any(key in o for o in outs):
            out[key] = sum(int(o.get(key) or 0) for o in outs)
    reasons: dict[str, int] = {}
    for o in outs:
        for reason, n in (o.get("quarantine_reasons") or {}).items():
            reasons[reason] = reasons.get(reason, 0) + int(n)
    if name == "validate":
        out["quarantine_reasons"] = reasons
    for key in ("landing", "raw", "quarantine", "features", "priced"):
        if any(key in o for o in outs):
            paths = [o[key] for o in outs if o.get(key)]
            out[key] = (paths[0] if paths else None) if len(outs) == 1 else paths
    if "seconds" in outs[0] if outs else False:
        out["partition_seconds"] = [o["seconds"] for o in outs]
    return out


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
