"""The model lifecycle, judged on the prices that really followed: one run of the rule.

    candidate --gate--> challenger --rule--> champion --rule--> previous champion

- A candidate that passes the backtest gate (workers.pipeline.register) while
  a champion serves becomes the `challenger` (MLflow alias) when the slot is
  free. Challenger replicas (workers.serving.challenger) price every request
  in their own consumer group and write what they would have answered to
  `pokewatch:shadow-quotes`; users only ever get the champion's answer.
- After every pipeline run `judge` records what each live version (champion,
  challenger, previous champion) forecasts from each card's newest feature
  row, adds the shadow quotes, scores them on the prices that arrived since
  (workers.pipeline.realized) and applies the rule (workers.pipeline.promotion):
  promote, retire, roll back, or hold.
- Every decision is recorded: MLflow version tags, a `ModelDecision` event on
  `pokewatch:model-events`, the run's record and `pokewatch:lifecycle` (the
  model page, the metrics). With `POKEWATCH_AUTO_PROMOTE=false` nothing moves
  by itself: a person applies the decision (`pokewatch model publish`,
  `rollback`, `challenger`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from contracts import keys
from contracts.history import day_number
from contracts.messages import ModelDecision
from workers import model_events, registry
from workers.config import PipelineSettings
from workers.pipeline.promotion import Decision, decide
from workers.pipeline.realized import (
    compare,
    ledger_dir,
    per_date,
    read_ledger,
    read_shadow,
    score,
    summary,
    version_forecasts,
)
from workers.pipeline.rollout import act, live_models, load_failures
from workers.pipeline.storage import atomic_write_parquet

logger = logging.getLogger(__name__)

HISTORY_POINTS = 400


def judge(
    settings: PipelineSettings,
    source: str,
    day: date,
    client: Any | None,
    apply: bool | None = None,
    record: bool = True,
) -> dict[str, Any]:
    """Record today's forecasts, score every live version, apply the rule; what the run records.

    Args:
        client: a sync redis client (shadow quotes, events, `pokewatch:lifecycle`); None scores
            the pipeline's forecasts only and records nothing in Redis.
        apply: move aliases when the rule says so (default: `auto_promote`).
        record: write the day's forecasts, the scores and the decision (MLflow, Redis); false
            only looks (`pokewatch model compare`).
    """
    from workers.pipeline import run as steps

    apply = settings.auto_promote if apply is None else apply
    champion = registry.champion_version(settings)
    challenger = registry.challenger_version(settings)
    previous = registry.previous_champion_version(settings) if champion else None
    live = {v for v in (champion, challenger, previous) if v}
    latest, prices = newest_rows(settings, source, settings.lifecycle_days)
    newest = pd.to_datetime(latest["date"]).max() if not latest.empty else pd.Timestamp(day)
    since = newest - pd.Timedelta(days=settings.lifecycle_days)
    if record and live and not latest.empty:
        rows = [f for v in sorted(live, key=int) if (f := forecasts_of(settings, v, latest)) is not None]
        directory = ledger_dir(settings)
        directory.mkdir(parents=True, exist_ok=True)
        if rows:
            path = directory / f"forecasts-{day.isoformat()}.parquet"
            atomic_write_parquet(pd.concat(rows, ignore_index=True), path)
    if client is not None:
        read_shadow(client, settings)
    horizon = settings.horizon
    scored = score(read_ledger(settings, since), prices, horizon)
    vs_champion = compare(scored, challenger, champion, horizon) if challenger and champion else None
    # The champion against the previous one on the most recent dates: decay shows there first.
    recent = settings.challenger_dates
    vs_previous = compare(scored, champion, previous, horizon, last=recent) if champion and previous else None
    failed = load_failure(client, settings, champion) if client is not None and champion else None
    decision = decide(
        champion,
        challenger,
        previous,
        vs_champion,
        vs_previous,
        settings.challenger_dates,
        settings.challenger_max_dates,
        failed,
    )
    applied = apply and decision.action in ("promote", "rollback", "retire")
    if applied:
        act(settings, client, decision, champion)
    elif decision.action in ("promote", "rollback", "retire"):
        decision.reason += " (not applied: POKEWATCH_AUTO_PROMOTE=false, a person decides)"
    logger.info("lifecycle: %s %s: %s", decision.action, decision.version or "", decision.reason)
    versions = {v: {"role": role, **summary(scored, v)} for v, role in roles(champion, challenger, previous).items()}
    record_ = {
        "day": day.isoformat(),
        "updated_at": time.time(),
        "champion": registry.champion_version(settings),
        "challenger": registry.challenger_version(settings),
        "previous": previous,
        "needed_dates": settings.challenger_dates,
        "auto_promote": settings.auto_promote,
        "decision": {**asdict(decision), "applied": applied, "champion": champion},
        "rule_state": decision.rule_state or (vs_champion.text(settings.challenger_dates) if vs_champion else ""),
        "vs_champion": asdict(vs_champion) if vs_champion else None,
        "vs_previous": asdict(vs_previous) if vs_previous else None,
        "versions": versions,
        "history": per_date(scored[scored["version"].isin(list(live))])[-HISTORY_POINTS:] if live else [],
    }
    if not record:
        return steps.json_safe(record_)
    log_mlflow(settings, day, versions, decision, applied)
    if client is not None:
        client.set(keys.LIFECYCLE_KEY, json.dumps(steps.json_safe(record_), default=str))
        if decision.action != "none":
            event = ModelDecision(
                model_name=settings.model_name,
                action=decision.action,  # type: ignore[arg-type]
                version=decision.version,
                champion=champion,
                reason=decision.reason[:2000],
                numbers={k: v for k, v in decision.numbers.items() if isinstance(v, int | float) or v is None},
                applied=applied,
            )
            model_events.publish_event(client, event)
    return steps.json_safe(record_)


def roles(champion: str | None, challenger: str | None, previous: str | None) -> dict[str, str]:
    out = {}
    for version, role in ((previous, "previous"), (challenger, "challenger"), (champion, "champion")):
        if version:
            out[version] = role
    return out


def newest_rows(settings: PipelineSettings, source: str, days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each card's newest feature row, and the prices of the last `days` days, partition by partition."""
    from workers.pipeline import run as steps
    from workers.pipeline.partitions import partitions

    try:
        count = steps.manifest(settings, source)["partitions"]
    except FileNotFoundError:
        return pd.DataFrame(), pd.DataFrame(columns=["card_id", "date", "market_price"])
    latest, prices = [], []
    for part in partitions(count):
        table = steps.load_features(settings, source, part=part)
        latest.append(table.groupby("card_id", sort=False).tail(1))
        cols = [c for c in ("card_id", "date", "market_price", "set_name") if c in table.columns]
        dates = pd.to_datetime(table["date"])
        prices.append(table.loc[dates >= dates.max() - pd.Timedelta(days=days), cols])
    return pd.concat(latest, ignore_index=True), pd.concat(prices, ignore_index=True)


def forecasts_of(settings: PipelineSettings, version: str, latest: pd.DataFrame) -> pd.DataFrame | None:
    """A version's forecasts for the ledger; None if it cannot be loaded (the rule still runs: a
    champion that does not load is what it rolls back on)."""
    try:
        return version_forecasts(load(settings, version), latest, version, settings)
    except Exception:
        logger.exception("version %s could not forecast; it has no forecasts for this day", version)
        return None


_MODELS: dict[tuple[str, str], Any] = {}


def load(settings: PipelineSettings, version: str) -> Any:
    """A version's model, loaded once per process."""
    key = (settings.tracking_uri, version)
    if key not in _MODELS:
        _MODELS[key] = registry.load_model(settings, version)
    return _MODELS[key]


def load_failure(client: Any, settings: PipelineSettings, champion: str) -> str | None:
    """Why the champion's replicas could not load it, if failures were announced for it and no live
    model replica serves it (one unlucky replica, e.g. a full disk, is not a failing champion)."""
    failures = load_failures(client, champion)
    if not failures or any(b.model_version == champion for b in live_models(client).values()):
        return None
    return f"{len(failures)} load failure(s), no replica serves it; last: {next(iter(failures.values()))[:300]}"


def log_mlflow(
    settings: PipelineSettings, day: date, versions: dict[str, dict[str, Any]], decision: Decision, applied: bool
) -> None:
    """Each live version's realized scores as a time series on its own run (step = the day), and the
    decision as tags on the version it concerns."""
    mlc = registry.client(settings)
    step = day_number(day)
    for version, figures in versions.items():
        run_id = registry.version_ref(settings, version).run_id
        for key in ("mape", "coverage", "hit_rate", "dates", "n"):
            value = figures.get(key)
            if isinstance(value, int | float) and np.isfinite(value):
                mlc.log_metric(run_id, f"realized.{key}", float(value), step=step)
    if decision.version and decision.action != "none":
        registry.tag_version(
            settings,
            decision.version,
            {
                "lifecycle.last_action": decision.action,
                "lifecycle.last_reason": decision.reason[:5000],
                "lifecycle.applied": applied,
                **{f"lifecycle.{k}": v for k, v in decision.numbers.items() if v is not None},
            },
        )
