"""
### PokeWatch ML pipeline

Daily at 02:00 UTC: plan -> collect -> validate -> features (per partition)
-> context -> train -> evaluate, with price (per partition) beside it ->
register (MLflow, champion gate) -> publish.

- The catalogue is split into partitions of whole cards (`plan`: one per
  `POKEWATCH_CARDS_PER_PARTITION` cards, at most 256). Collect, validate,
  features and price are mapped tasks (`.expand()`), one instance per
  partition: they run on as many workers as the executor has, and a failed
  partition retries alone. Training and evaluation read a bounded sample
  of whole cards, so their cost does not grow with the catalogue.
- The collection date is the run's logical date: re-running or backfilling a
  day replaces that day's files; nothing is duplicated.
- Tasks exchange paths and ids through XCom, never data frames; every step is
  the pipeline's own function (`workers.pipeline.run`).
- `publish` announces a new challenger to the challenger replicas, runs the
  lifecycle rule (workers.pipeline.lifecycle: every live version scored on
  the prices that followed; it may promote the challenger or roll the
  champion back), records the run (each step's duration and rows, the
  evaluation, the gate's and the rule's decisions) on
  `pokewatch:pipeline-runs`, where the metrics exporter reads it, and
  appends a `ModelPublished` event to `pokewatch:model-events` through the
  Redis provider (connection `redis_default`) when the gate promoted a new
  champion; otherwise the task is skipped after recording. Every model
  replica hot-reloads on that event.

Configuration: params `source` (demo | file | pokemonpricetracker) and
`input_path` (file source); environment `POKEWATCH_DATA_DIR`,
`MLFLOW_TRACKING_URI`, `POKEMONPRICETRACKER_API_KEY`; Airflow connection
`redis_default` (e.g. `AIRFLOW_CONN_REDIS_DEFAULT=redis://host:6379/0`).

Parsing this file imports only Airflow: no connection is opened and no
project module is loaded until a task runs.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

DAG_ID = "pokewatch_ml_pipeline"
REDIS_CONN_ID = "redis_default"


def _run_day() -> date:
    """The logical date of the run (a manual run without one uses its run-after time)."""
    ctx = get_current_context()
    when = ctx.get("logical_date") or ctx["dag_run"].run_after
    return when.date()


def _params() -> tuple[str, str | None]:
    params = get_current_context()["params"]
    return params["source"], params.get("input_path")


def _settings() -> Any:
    from workers.config import PipelineSettings

    return PipelineSettings()


def _step(run: dict[str, Any], name: str, out: dict[str, Any], started: float) -> dict[str, Any]:
    """The run's XCom after a step: what later steps read, and the step's figures for the record."""
    import time

    from workers.pipeline.runs import compact

    return {**run, **out, "steps": {**run.get("steps", {}), name: compact(name, out, time.monotonic() - started)}}


def _mapped(
    part: dict[str, int], name: str, out: dict[str, Any], started: float, job: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A mapped task's XCom: its partition and each step's figures so far (paths stay on disk)."""
    import time

    from workers.pipeline.runs import compact

    figures = {**compact(name, out, time.monotonic() - started), **{k: out[k] for k in ("rows", "cards") if k in out}}
    if name == "validate":
        figures["quarantined"] = out.get("quarantined", 0)
        figures["quarantine_reasons"] = out.get("quarantine_reasons", {})
    return {"part": part, "steps": {**(job or {}).get("steps", {}), name: figures}}


def _over_partitions(name: str, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """A mapped step's figures for the run's record: its partitions' counts added up, and
    its seconds as the partitions' total."""
    from workers.pipeline.run import combine

    outs = [j["steps"][name] for j in jobs]
    return {**combine(name, outs), "seconds": round(sum(o["seconds"] for o in outs), 2)}


@dag(
    dag_id=DAG_ID,
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "pokewatch", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["pokewatch", "ml", "pricing"],
    doc_md=__doc__,
    params={
        "source": Param("demo", type="string", enum=["demo", "file", "pokemonpricetracker"]),
        "input_path": Param(None, type=["null", "string"], description="CSV/Parquet for the file source"),
    },
)
def pokewatch_ml_pipeline() -> None:
    @task
    def plan() -> list[dict[str, int]]:
        from pathlib import Path

        from workers.pipeline import run as steps

        source, input_path = _params()
        parts = steps.plan(_settings(), source, Path(input_path) if input_path else None)
        return [p.as_dict() for p in parts]

    @task
    def collect(part: dict[str, int]) -> dict[str, Any]:
        import time
        from pathlib import Path

        from workers.pipeline import run as steps
        from workers.pipeline.partitions import Partition

        started = time.monotonic()
        source, input_path = _params()
        out = steps.collect(
            _settings(), source, _run_day(), Path(input_path) if input_path else None, Partition(**part)
        )
        return _mapped(part, "collect", out, started)

    @task
    def validate(job: dict[str, Any]) -> dict[str, Any]:
        import time

        from workers.pipeline import run as steps
        from workers.pipeline.partitions import Partition

        started = time.monotonic()
        settings = _settings()
        source, _ = _params()
        cards = settings.cards_file if source == "pokemonpricetracker" else None
        out = steps.validate(settings, source, _run_day(), cards, Partition(**job["part"]))
        return _mapped(job["part"], "validate", out, started, job)

    @task
    def features(job: dict[str, Any]) -> dict[str, Any]:
        import time

        from workers.pipeline import run as steps
        from workers.pipeline.partitions import Partition

        started = time.monotonic()
        source, _ = _params()
        out = steps.features(_settings(), source, Partition(**job["part"]))
        return _mapped(job["part"], "features", out, started, job)

    @task
    def context(jobs: list[dict[str, Any]]) -> dict[str, Any]:
        import time

        from workers.pipeline import run as steps

        started = time.monotonic()
        done = list(jobs)
        source, _ = _params()
        run: dict[str, Any] = {"day": _run_day().isoformat(), "source": source, "steps": {}}
        for name in ("collect", "validate", "features"):
            run["steps"][name] = _over_partitions(name, done)
        count = done[0]["part"]["count"]
        return _step(run, "context", steps.context(_settings(), source, count), started)

    @task
    def train(run: dict[str, Any]) -> dict[str, Any]:
        import time

        from workers.pipeline import run as steps

        started = time.monotonic()
        out = steps.train(_settings(), run["source"], date.fromisoformat(run["day"]))
        chosen = {"model": out["model"], "forecast_choice": out["selection"].get("forecast")}
        return _step(run, "train", chosen, started)

    @task
    def evaluate(run: dict[str, Any]) -> dict[str, Any]:
        import time

        from workers.pipeline import run as steps

        started = time.monotonic()
        out = steps.evaluate(_settings(), run["source"], date.fromisoformat(run["day"]))
        return _step(run, "evaluate", out, started)

    @task
    def price(run: dict[str, Any], part: dict[str, int]) -> dict[str, Any]:
        import time

        from workers.pipeline import run as steps
        from workers.pipeline.partitions import Partition

        started = time.monotonic()
        out = steps.price(_settings(), run["source"], date.fromisoformat(run["day"]), Partition(**part))
        return _mapped(part, "price", out, started)

    @task
    def register(run: dict[str, Any], priced: list[dict[str, Any]]) -> dict[str, Any]:
        import time

        from workers.pipeline import run as steps

        run = {**run, "steps": {**run["steps"], "price": _over_partitions("price", list(priced))}}
        started = time.monotonic()
        out = steps.register(_settings(), run["source"], date.fromisoformat(run["day"]))
        return _step(run, "register", out, started)

    @task
    def publish(run: dict[str, Any]) -> dict[str, Any]:
        from airflow.providers.redis.hooks.redis import RedisHook
        from airflow.sdk.exceptions import AirflowSkipException

        from workers.model_events import publish_version
        from workers.pipeline.lifecycle import judge
        from workers.pipeline.rollout import watch_rollout
        from workers.pipeline.runs import record, run_record

        client = RedisHook(redis_conn_id=REDIS_CONN_ID).get_conn()
        settings, day = _settings(), date.fromisoformat(run["day"])
        if run.get("challenger"):
            publish_version(settings, client, str(run["version"]), alias="challenger")
        # Every live version scored on the prices that followed; the lifecycle rule may promote or roll back.
        try:
            lifecycle = judge(settings, run["source"], day, client)
        except Exception as exc:  # the run's model is registered: record why the rule did not run
            logging.getLogger(__name__).exception("the lifecycle rule failed")
            lifecycle = {"error": f"{type(exc).__name__}: {exc}"}
        record(client, run_record(run["source"], day, run["steps"], lifecycle))
        if not run["promoted"]:
            raise AirflowSkipException(f"version {run['version']} not promoted: {run['reason']}")
        published = publish_version(settings, client, str(run["version"]))
        if run.get("champion_version"):  # replicas that cannot load it: back to the champion before it
            published["rollout"] = watch_rollout(settings, client, str(run["version"]), str(run["champion_version"]))
        return published

    parts = plan()
    featured = features.expand(job=validate.expand(job=collect.expand(part=parts)))
    trained = train(context(featured))
    priced = price.partial(run=trained).expand(part=parts)
    publish(register(evaluate(trained), priced))


dag = pokewatch_ml_pipeline()
