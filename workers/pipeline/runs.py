"""The record of a finished pipeline run, pushed to `pokewatch:pipeline-runs` at its end.

The pipeline's metrics (each step's duration and rows, the candidate's
evaluation, the gate's decision, when a run last succeeded) are pushed once
per run rather than scraped: a run is a batch job that is gone before any
scrape, and its tasks may run in pods that live for seconds. They go through
Redis, which every run already reaches (it publishes model events there), not
through a Pushgateway, which would be one more service to run; the stream
exporter (workers.monitoring.exporter) turns the newest record of each source
into gauges. MLflow keeps the full detail (parameters, every metric, plots).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from contracts import keys
from contracts.messages import PipelineRun, StepFigures

MAXLEN = 1000
# The figure that counts a step's rows, where it has one.
ROWS = {"collect": "fetched", "validate": "accepted", "features": "rows"}
METRICS = ("model_mape", "naive_mape", "model_vs_naive_mape_improvement", "signal_rate", "hit_rate", "signal_lift")


def compact(name: str, out: dict[str, Any], seconds: float) -> dict[str, Any]:
    """What the record needs of a step's output (small enough for an Airflow XCom)."""
    keep = {ROWS.get(name), *METRICS, "version", "promoted", "reason", "challenger", "waiting"} - {None}
    return {"seconds": round(seconds, 2), **{k: v for k, v in out.items() if k in keep}}


def run_record(
    source: str, day: date, steps: dict[str, dict[str, Any]], lifecycle: dict[str, Any] | None = None
) -> PipelineRun:
    """The record of a run from each step's output (with its `seconds`), and what the lifecycle
    rule decided after it (workers.pipeline.lifecycle.judge)."""
    figures = {
        name: StepFigures(seconds=out.get("seconds"), rows=int(out[ROWS[name]]) if ROWS.get(name) in out else None)
        for name, out in steps.items()
    }
    evaluation = steps.get("evaluate", {})
    decision = steps.get("register", {})
    return PipelineRun(
        source=source,
        collection_date=day,
        steps=figures,
        model_version=str(decision["version"]) if decision.get("version") is not None else None,
        promoted=bool(decision.get("promoted", False)),
        gate_reason=str(decision.get("reason", "")),
        metrics={m: float(evaluation[m]) for m in METRICS if isinstance(evaluation.get(m), int | float)},
        **lifecycle_fields(lifecycle),
    )


def lifecycle_fields(lifecycle: dict[str, Any] | None) -> dict[str, Any]:
    """The run record's part of a `judge` result: the decision and each version's realized scores."""
    if not lifecycle:
        return {}
    decision = lifecycle.get("decision") or {}
    figures: dict[str, float | None] = {}
    for version, scores in (lifecycle.get("versions") or {}).items():
        for key in ("mape", "coverage", "hit_rate", "dates"):
            figures[f"{scores.get('role')}.{key}"] = scores.get(key)
        figures[f"{scores.get('role')}.version"] = float(version)
    for key in ("improvement", "low", "high", "dates"):
        figures[f"rule.{key}"] = (decision.get("numbers") or {}).get(key)
    return {
        "challenger": lifecycle.get("challenger"),
        "lifecycle_action": decision.get("action"),
        "lifecycle_reason": str(decision.get("reason", ""))[:2000],
        "lifecycle": figures,
    }


def record(client: Any, run: PipelineRun) -> str:
    """Append the record with a sync redis client; its entry id."""
    entry_id = client.xadd(
        keys.PIPELINE_RUNS_STREAM, {keys.PAYLOAD_FIELD: run.model_dump_json()}, maxlen=MAXLEN, approximate=True
    )
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def summary_record(summary: dict[str, Any]) -> PipelineRun:
    """The record of a `run_all` summary (its saved `summary.json`)."""
    return run_record(
        summary["source"], date.fromisoformat(summary["collection_date"]), summary["steps"], summary.get("lifecycle")
    )


def newest_summary(data_dir: Path) -> dict[str, Any] | None:
    """The newest saved run summary under a data dir, if any."""
    found = sorted((data_dir / "runs").rglob("summary.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text(encoding="utf-8")) if found else None
