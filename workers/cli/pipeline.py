"""`pokewatch pipeline ...`: the batch pipeline, a step at a time or all at once."""

from __future__ import annotations

import json
import logging
import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from contracts import keys
from workers.cli.common import console, day, fail
from workers.config import PipelineSettings

app = typer.Typer(
    help="The batch pipeline: collect, validate, features (and context), train, evaluate, price, register."
)

SourceOpt = Annotated[str, typer.Option("--source", "-s", help="demo | file | pokemonpricetracker")]
InputOpt = Annotated[Path | None, typer.Option("--input", "-i", help="CSV/Parquet in the long format (file source)")]
DateOpt = Annotated[
    str | None, typer.Option("--date", help="collection date YYYY-MM-DD (default: today); names the partition")
]
CardsOpt = Annotated[
    Path | None, typer.Option("--cards", help="only accept cards listed in this cards.yaml (others quarantined)")
]


def errors() -> tuple[type[Exception], ...]:
    from workers.pipeline.sources import SourceError
    from workers.pipeline.tracked_cards import TrackedCardsError

    return (SourceError, TrackedCardsError, FileNotFoundError, ValueError)


def _run_step(name: str, fn: Any, *args: Any) -> None:
    with console.status(f"{name}..."):
        try:
            result = fn(*args)
        except errors() as exc:
            fail(exc)
    typer.echo(json.dumps(result, indent=2, default=str))


@app.command("run")
def run(source: SourceOpt = "demo", input_path: InputOpt = None, day_: DateOpt = None, cards: CardsOpt = None) -> None:
    """Run every step: collect -> validate -> features -> train -> evaluate -> register."""
    from workers.pipeline import run as steps

    settings = PipelineSettings()
    collection_day = day(day_)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("pipeline", total=len(steps.STEPS))

        def on_step(name: str) -> None:
            progress.update(task, completed=steps.STEPS.index(name), description=name)

        try:
            summary = steps.run_all(settings, source, collection_day, input_path, cards, on_step=on_step)
        except errors() as exc:
            progress.stop()
            fail(exc)
        progress.update(task, completed=len(steps.STEPS), description="done")
    summary["lifecycle"] = judge_run(settings, source, collection_day, summary, os.environ.get("REDIS_URL"))
    _print_summary(summary)
    if os.environ.get("REDIS_URL"):
        record_summary(summary, os.environ["REDIS_URL"])


def judge_run(
    settings: PipelineSettings, source: str, day_: date, summary: dict[str, Any], redis_url: str | None
) -> dict[str, Any] | None:
    """After a run: announce a new challenger, then apply the lifecycle rule (workers.pipeline.lifecycle).

    Without a broker the rule still scores and moves aliases; replicas find a moved alias by polling."""
    import redis

    from workers.model_events import publish_version
    from workers.pipeline.lifecycle import judge

    registered = summary["steps"].get("register", {})
    client = redis.Redis.from_url(redis_url, socket_timeout=10) if redis_url else None
    try:
        if client is not None and registered.get("challenger"):
            publish_version(settings, client, str(registered["version"]), alias="challenger")
        return judge(settings, source, day_, client)
    except (redis.RedisError, OSError) as exc:
        console.print(f"[yellow]the lifecycle rule could not reach the broker: {exc}[/yellow]")
        return judge(settings, source, day_, None)
    except Exception as exc:  # the run itself succeeded: say why the rule did not run, do not fail it
        logging.getLogger(__name__).exception("the lifecycle rule failed")
        console.print(f"[yellow]the lifecycle rule failed: {type(exc).__name__}: {exc}[/yellow]")
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        if client is not None:
            client.close()


def record_summary(summary: dict[str, Any], redis_url: str) -> None:
    """Push the run's record to the broker for the metrics (workers.pipeline.runs); a warning if it is away."""
    import redis

    from workers.pipeline.runs import record, summary_record

    try:
        with redis.Redis.from_url(redis_url, socket_timeout=5) as client:
            entry_id = record(client, summary_record(summary))
        console.print(f"run recorded on {keys.PIPELINE_RUNS_STREAM} ({entry_id})")
    except (redis.RedisError, OSError) as exc:
        console.print(f"[yellow]the run could not be recorded for the metrics: {exc}[/yellow]")


def _print_summary(summary: dict[str, Any]) -> None:
    s = summary["steps"]
    table = Table(title=f"PokeWatch pipeline, source={summary['source']}, day={summary['collection_date']}")
    table.add_column("step")
    table.add_column("result")
    table.add_column("s", justify="right")
    v, e, r = s["validate"], s["evaluate"], s["register"]
    rows = [
        ("collect", f"{s['collect']['fetched']:,} rows fetched"),
        ("validate", f"{v['accepted']:,} accepted, {v['quarantined']:,} quarantined {v['quarantine_reasons'] or ''}"),
        ("features", f"{s['features']['rows']:,} rows, {s['features']['cards']:,} cards"),
        ("context", f"{s['context']['partitions']} partition(s); the feed's and sets' daily moves"),
        ("train", f"forecast={s['train']['selection'].get('forecast')} fair={s['train']['selection'].get('fair')}"),
        (
            "evaluate",
            f"MAPE model {e['model_mape']:.3f}% vs naive {e['naive_mape']:.3f}%; signal rate {e['signal_rate']:.2%}",
        ),
        ("price", f"{s['price']['rows']:,} served rows of {s['price']['cards']:,} cards priced"),
        (
            "register",
            f"version {r['version']} "
            + ("[green]promoted to champion[/green]" if r["promoted"] else "[yellow]not promoted[/yellow]")
            + f": {r['reason']}",
        ),
    ]
    for name, text in rows:
        table.add_row(name, text, f"{s[name]['seconds']:.1f}")
    console.print(table)


PartOpt = Annotated[
    int | None, typer.Option("--partition", help="only this partition (0-based); default every partition in turn")
]


def _each(name: str, fn: Any, plan: Any, only: int | None) -> None:
    """Run a mapped step over the partitions `plan()` gives (or one of them), printing the combined figures."""
    from workers.pipeline import run as steps

    try:
        parts = plan()
    except errors() as exc:
        fail(exc)
    if only is not None and not 0 <= only < len(parts):
        fail(ValueError(f"no partition {only}: this run has {len(parts)} (0..{len(parts) - 1})"))
    chosen = [parts[only]] if only is not None else parts
    _run_step(name, lambda: steps.combine(name, [fn(p) for p in chosen]))


@app.command("collect")
def collect(
    source: SourceOpt = "demo", input_path: InputOpt = None, day_: DateOpt = None, part: PartOpt = None
) -> None:
    """Fetch prices from a source into the landing area, partition by partition."""
    from workers.pipeline import run as steps

    settings, when = PipelineSettings(), day(day_)
    plan = lambda: steps.plan(settings, source, input_path)  # noqa: E731
    _each("collect", lambda p: steps.collect(settings, source, when, input_path, p), plan, part)


@app.command("validate")
def validate(source: SourceOpt = "demo", day_: DateOpt = None, cards: CardsOpt = None, part: PartOpt = None) -> None:
    """Validate landed rows; rejects go to quarantine with a reason."""
    from workers.pipeline import run as steps

    settings, when = PipelineSettings(), day(day_)
    plan = lambda: steps.landed(settings, "landing", source, when)  # noqa: E731
    _each("validate", lambda p: steps.validate(settings, source, when, cards, p), plan, part)


@app.command("features")
def features(source: SourceOpt = "demo", part: PartOpt = None) -> None:
    """Rebuild each partition's features from every collected day of a source, then the context."""
    from workers.pipeline import run as steps

    settings = PipelineSettings()
    plan = lambda: steps.landed(settings, "raw", source)  # noqa: E731
    _each("features", lambda p: steps.features(settings, source, p), plan, part)
    _run_step("context", steps.context, settings, source, len(plan()))


@app.command("train")
def train(source: SourceOpt = "demo", day_: DateOpt = None) -> None:
    """Fit the candidate model on all history."""
    from workers.pipeline import run as steps

    _run_step("train", steps.train, PipelineSettings(), source, day(day_))


@app.command("evaluate")
def evaluate(source: SourceOpt = "demo", day_: DateOpt = None) -> None:
    """Walk-forward evaluation of the model and the baselines."""
    from workers.pipeline import run as steps

    _run_step("evaluate", steps.evaluate, PipelineSettings(), source, day(day_))


@app.command("price")
def price(source: SourceOpt = "demo", day_: DateOpt = None, part: PartOpt = None) -> None:
    """Price every served row of each partition with the candidate (the replicas' state)."""
    from workers.pipeline import run as steps
    from workers.pipeline.partitions import partitions

    settings, when = PipelineSettings(), day(day_)
    plan = lambda: partitions(steps.manifest(settings, source)["partitions"])  # noqa: E731
    _each("price", lambda p: steps.price(settings, source, when, p), plan, part)


@app.command("register")
def register(source: SourceOpt = "demo", day_: DateOpt = None) -> None:
    """Register the candidate in MLflow and promote it if it passes the gate."""
    from workers.pipeline import run as steps

    _run_step("register", steps.register, PipelineSettings(), source, day(day_))
