"""`pokewatch` command line: the pipeline, one step at a time or all at once."""

from __future__ import annotations

import json
import logging
import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from workers.config import PipelineSettings

app = typer.Typer(help="PokeWatch: fair prices and BUY/SELL/HOLD signals for trading cards.", no_args_is_help=True)
pipeline_app = typer.Typer(help="The batch pipeline: collect, validate, features, train, evaluate, register.")
app.add_typer(pipeline_app, name="pipeline")
model_app = typer.Typer(help="Registered model versions: status, publish to the replicas, roll back.")
app.add_typer(model_app, name="model")
worker_app = typer.Typer(help="Stream workers (FastStream): model replicas and decision workers.")
app.add_typer(worker_app, name="worker")
keys_app = typer.Typer(help="Gateway API keys (stored hashed in Redis; REDIS_URL selects the broker).")
app.add_typer(keys_app, name="keys")

console = Console(stderr=True)

SourceOpt = Annotated[str, typer.Option("--source", "-s", help="demo | file | pokemonpricetracker")]
InputOpt = Annotated[Path | None, typer.Option("--input", "-i", help="CSV/Parquet in the long format (file source)")]
DateOpt = Annotated[
    str | None, typer.Option("--date", help="collection date YYYY-MM-DD (default: today); names the partition")
]
CardsOpt = Annotated[
    Path | None, typer.Option("--cards", help="only accept cards listed in this cards.yaml (others quarantined)")
]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # MLflow logs its own INFO/WARNING chatter (database migrations, pickling
    # advice) on every run; keep it for --verbose.
    # MLflow sets its logger's level when it is imported (later, lazily), so the
    # level also goes through its own environment variable.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "INFO" if verbose else "ERROR")
    logging.getLogger("mlflow").setLevel(logging.INFO if verbose else logging.ERROR)


def _day(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"--date must be YYYY-MM-DD, got {value!r}") from exc


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(code=2)


def _run_step(name: str, fn: Any, *args: Any) -> None:
    from workers.pipeline.catalog import CatalogError
    from workers.pipeline.sources import SourceError

    with console.status(f"{name}..."):
        try:
            result = fn(*args)
        except (SourceError, CatalogError, FileNotFoundError, ValueError) as exc:
            _fail(exc)
    typer.echo(json.dumps(result, indent=2, default=str))


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log progress")] = False) -> None:
    _setup_logging(verbose)


@pipeline_app.command("run")
def pipeline_run(
    source: SourceOpt = "demo",
    input_path: InputOpt = None,
    day: DateOpt = None,
    cards: CardsOpt = None,
) -> None:
    """Run every step: collect -> validate -> features -> train -> evaluate -> register."""
    from workers.pipeline import run as steps
    from workers.pipeline.catalog import CatalogError
    from workers.pipeline.sources import SourceError

    settings = PipelineSettings()
    collection_day = _day(day)
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
            done = steps.STEPS.index(name)
            progress.update(task, completed=done, description=f"{name}")

        try:
            summary = steps.run_all(settings, source, collection_day, input_path, cards, on_step=on_step)
        except (SourceError, CatalogError, FileNotFoundError, ValueError) as exc:
            progress.stop()
            _fail(exc)
        progress.update(task, completed=len(steps.STEPS), description="done")
    _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    s = summary["steps"]
    table = Table(title=f"PokeWatch pipeline, source={summary['source']}, day={summary['collection_date']}")
    table.add_column("step")
    table.add_column("result")
    table.add_column("s", justify="right")
    v = s["validate"]
    rows = [
        ("collect", f"{s['collect']['fetched']:,} rows fetched"),
        ("validate", f"{v['accepted']:,} accepted, {v['quarantined']:,} quarantined {v['quarantine_reasons'] or ''}"),
        ("features", f"{s['features']['rows']:,} rows, {s['features']['cards']:,} cards"),
        ("train", f"forecast={s['train']['selection'].get('forecast')} fair={s['train']['selection'].get('fair')}"),
        (
            "evaluate",
            f"MAPE model {s['evaluate']['model_mape']:.3f}% vs naive {s['evaluate']['naive_mape']:.3f}%; "
            f"signal rate {s['evaluate']['signal_rate']:.2%}",
        ),
        (
            "register",
            f"version {s['register']['version']} "
            + ("[green]promoted to champion[/green]" if s["register"]["promoted"] else "[yellow]not promoted[/yellow]")
            + f": {s['register']['reason']}",
        ),
    ]
    for name, text in rows:
        table.add_row(name, text, f"{s[name]['seconds']:.1f}")
    console.print(table)


@pipeline_app.command("collect")
def pipeline_collect(source: SourceOpt = "demo", input_path: InputOpt = None, day: DateOpt = None) -> None:
    """Fetch prices from a source into the landing area."""
    from workers.pipeline import run as steps

    _run_step("collect", steps.collect, PipelineSettings(), source, _day(day), input_path)


@pipeline_app.command("validate")
def pipeline_validate(source: SourceOpt = "demo", day: DateOpt = None, cards: CardsOpt = None) -> None:
    """Validate landed rows; rejects go to quarantine with a reason."""
    from workers.pipeline import run as steps

    _run_step("validate", steps.validate, PipelineSettings(), source, _day(day), cards)


@pipeline_app.command("features")
def pipeline_features(source: SourceOpt = "demo") -> None:
    """Rebuild the feature table from every collected day of a source."""
    from workers.pipeline import run as steps

    _run_step("features", steps.features, PipelineSettings(), source)


@pipeline_app.command("train")
def pipeline_train(source: SourceOpt = "demo", day: DateOpt = None) -> None:
    """Fit the candidate model on all history."""
    from workers.pipeline import run as steps

    _run_step("train", steps.train, PipelineSettings(), source, _day(day))


@pipeline_app.command("evaluate")
def pipeline_evaluate(source: SourceOpt = "demo", day: DateOpt = None) -> None:
    """Walk-forward evaluation of the model and the baselines."""
    from workers.pipeline import run as steps

    _run_step("evaluate", steps.evaluate, PipelineSettings(), source, _day(day))


@pipeline_app.command("register")
def pipeline_register(source: SourceOpt = "demo", day: DateOpt = None) -> None:
    """Register the candidate in MLflow and promote it if it passes the gate."""
    from workers.pipeline import run as steps

    _run_step("register", steps.register, PipelineSettings(), source, _day(day))


@app.command("evaluate")
def evaluate_file(
    input_path: Annotated[Path, typer.Option("--input", "-i", help="CSV/Parquet in the long format")],
    horizon: Annotated[int, typer.Option(min=1, help="forecast horizon in observations")] = 1,
    fair_horizon: Annotated[int, typer.Option(min=1, help="observations averaged by the fair level")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Walk-forward metrics of model and baselines on any long-format file."""
    from dataclasses import replace

    from workers.pipeline.evaluate import walk_forward
    from workers.pipeline.features import build_features
    from workers.pipeline.run import eval_config
    from workers.pipeline.schema import validate
    from workers.pipeline.sources import SourceError
    from workers.pipeline.sources.file import FileSource

    settings = PipelineSettings()
    cfg = replace(eval_config(settings), horizon=horizon, fair_horizon=fair_horizon)
    try:
        with console.status("loading and validating..."):
            checked = validate(FileSource(input_path).fetch(date.today()))
        with console.status(f"walk-forward evaluation on {len(checked.clean):,} rows..."):
            result = walk_forward(build_features(checked.clean), cfg)
    except (SourceError, ValueError) as exc:
        _fail(exc)
    out = result.to_json()
    out["quarantined"] = len(checked.quarantined)
    if as_json:
        from workers.pipeline.run import json_safe

        typer.echo(json.dumps(json_safe(out), indent=2, default=str))
        return
    table = Table(title=f"walk-forward, h={horizon}, cutoff {out['cutoff']}, {out['n_test']:,} test rows")
    cols = ["mape", "mdape", "rmse_log", "signal_rate", "hit_rate", "fwd_return_buy", "fwd_return_sell"]
    table.add_column("model")
    for c in cols:
        table.add_column(c, justify="right")
    for name in ("model", "naive", "rolling_mean_3"):
        table.add_row(name, *(f"{out[name][c]:.4f}" for c in cols))
    console.print(table)
    low, high = out["model_vs_naive_mape_improvement_interval"]
    console.print(
        f"model vs naive MAPE improvement: {out['model_vs_naive_mape_improvement']:.2f}% "
        f"(90% card-resampled interval {low:.2f}% .. {high:.2f}%)"
    )


# ---------------------------------------------------------------- benchmarks

BENCHES = ("pipeline", "reload", "serve", "memory", "all")


@app.command("bench")
def bench(
    which: Annotated[
        str, typer.Argument(help="pipeline | reload | serve | memory | all (all writes bench/RESULTS.md)")
    ],
    quick: Annotated[
        bool, typer.Option("--quick", help="the short variant (serve: 64-connection comparison only)")
    ] = False,
) -> None:
    """Run a benchmark script from bench/ (from a checkout of the repository)."""
    import subprocess
    import sys

    if which not in BENCHES:
        raise typer.BadParameter(f"expected one of {', '.join(BENCHES)}, got {which!r}")
    script = Path(__file__).resolve().parents[1] / "bench" / f"{which}.py"
    if not script.exists():
        _fail(FileNotFoundError(f"{script} not found: benchmarks run from a checkout of the repository"))
    args = ["--quick"] if quick and which in ("serve", "all") else []
    raise typer.Exit(subprocess.run([sys.executable, str(script), *args], check=False).returncode)


# ---------------------------------------------------------------- model versions


def _redis_client() -> Any:
    import redis

    from contracts.settings import ServingSettings

    return redis.Redis.from_url(ServingSettings().redis_url, socket_connect_timeout=3)


@model_app.command("status")
def model_status() -> None:
    """Every registered version with its gate decision; the champion is marked."""
    from workers.pipeline import registry

    settings = PipelineSettings()
    registry.configure(settings)
    client = registry._mlflow().MlflowClient()
    champion = registry.champion_version(settings)
    table = Table(title=f"{settings.model_name} (champion: {champion})")
    for col in ("version", "champion", "promoted", "candidate MAPE", "reason"):
        table.add_column(col)
    versions = client.search_model_versions(f"name='{settings.model_name}'")
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        t = v.tags
        mape = t.get("gate.candidate_mape", "")
        table.add_row(
            v.version,
            "*" if v.version == champion else "",
            t.get("gate.promoted", ""),
            f"{float(mape):.4f}" if mape else "",
            t.get("gate.reason", ""),
        )
    console.print(table)


@model_app.command("publish")
def model_publish(version: Annotated[str, typer.Argument(help="registered version to announce")]) -> None:
    """Make VERSION the champion and announce it; replicas serving an older version load it."""
    from workers.pipeline.publish import publish_version

    try:
        out = publish_version(PipelineSettings(), _redis_client(), version, make_champion=True)
    except Exception as exc:  # MLflow or Redis: say which and why
        _fail(exc)
    typer.echo(json.dumps(out, indent=2))


@model_app.command("rollback")
def model_rollback() -> None:
    """Point `champion` back at the previous champion and tell every replica to load it."""
    from workers.pipeline.publish import rollback

    try:
        out = rollback(PipelineSettings(), _redis_client())
    except Exception as exc:
        _fail(exc)
    typer.echo(json.dumps(out, indent=2))


# ---------------------------------------------------------------- serving

# ---------------------------------------------------------------- API keys


def _keys(action: Any) -> Any:
    """Run `action(store)` against the broker of REDIS_URL; a clear error if it is unreachable."""
    import asyncio

    import redis.asyncio as aioredis

    from contracts.settings import ServingSettings, redacted
    from gateway.security import ApiKeyStore

    url = ServingSettings().redis_url

    async def go() -> Any:
        client = aioredis.Redis.from_url(url, socket_connect_timeout=3)
        try:
            return await action(ApiKeyStore(client))
        finally:
            await client.aclose()

    try:
        return asyncio.run(go())
    except (aioredis.RedisError, OSError) as exc:
        console.print(f"[red]cannot reach the broker at {redacted(url)}: {exc}[/red] (set REDIS_URL)")
        raise typer.Exit(2) from None


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="who or what the key is for")],
    rate: Annotated[float | None, typer.Option("--rate", min=0.001, help="requests/s (default: the gateway's)")] = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    key, record = _keys(lambda store: store.create(name, rate))
    console.print(f"key id {record.key_id} for {name!r}; send it as `X-API-Key: <key>`. It is not shown again:")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """Every key: id, name, created, revoked, rate (never the key)."""
    from datetime import UTC, datetime

    records = _keys(lambda store: store.list())
    table = Table(title=f"API keys ({len(records)})")
    for col in ("key id", "name", "created (UTC)", "revoked (UTC)", "rate/s"):
        table.add_column(col)

    def when(ts: float | None) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else ""

    for r in records:
        table.add_row(
            r.key_id, r.name, when(r.created_at), when(r.revoked_at), f"{r.rate_per_s:g}" if r.rate_per_s else "default"
        )
    Console().print(table)  # data goes to stdout


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key id shown by `keys list`")]) -> None:
    """Revoke a key: every gateway refuses it within seconds (their cache)."""
    record = _keys(lambda store: store.revoke(key_id))
    if record is None:
        console.print(f"[red]no key with id {key_id!r}[/red]")
        raise typer.Exit(1)
    console.print(f"key {key_id} ({record.name}) revoked")


@app.command("redis-acl")
def redis_acl(
    from_env: Annotated[
        bool, typer.Option("--from-env", help="fill passwords from REDIS_<ROLE>_PASSWORD (else placeholders)")
    ] = False,
) -> None:
    """Print the Redis ACL file: one user per role (gateway, worker, pipeline, admin), default user off."""
    from contracts.acl import ROLE_RULES, acl_file

    passwords = {}
    if from_env:
        missing = [r for r in ROLE_RULES if not os.environ.get(f"REDIS_{r.upper()}_PASSWORD")]
        if missing:
            console.print(f"[red]missing: {', '.join(f'REDIS_{r.upper()}_PASSWORD' for r in missing)}[/red]")
            raise typer.Exit(2)
        passwords = {r: os.environ[f"REDIS_{r.upper()}_PASSWORD"] for r in ROLE_RULES}
    print(acl_file(passwords), end="")


ReplicaOpt = Annotated[str | None, typer.Option("--replica", help="replica id (default: host-pid)")]


def _serving_logging() -> None:
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("workers").setLevel(logging.INFO)
    logging.getLogger("gateway").setLevel(logging.INFO)


@worker_app.command("model")
def worker_model(
    replica: ReplicaOpt = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for a champion model before giving up")] = 0.0,
) -> None:
    """Model worker: reads pokewatch:predict in group `model`, prices with the champion."""
    import asyncio

    from contracts.settings import ServingSettings
    from workers.serving.model_worker import ModelWorker

    _serving_logging()
    asyncio.run(ModelWorker(ServingSettings(), PipelineSettings(), replica, wait_for_champion_s=wait).run())


@worker_app.command("decision")
def worker_decision(replica: ReplicaOpt = None) -> None:
    """Decision worker: reads pokewatch:quotes in group `decision`, replies, appends to pokewatch:signals."""
    import asyncio

    from contracts.settings import ServingSettings
    from workers.serving.decision_worker import DecisionWorker

    _serving_logging()
    asyncio.run(DecisionWorker(ServingSettings(), replica).run())


@app.command("gateway")
def gateway(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port", envvar="POKEWATCH_GATEWAY_PORT")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """The REST gateway (uvicorn)."""
    import uvicorn

    _serving_logging()
    uvicorn.run("gateway.app:create_app", factory=True, host=host, port=port, workers=workers, access_log=False)


@app.command("up")
def up(
    port: Annotated[int, typer.Option(help="gateway HTTP port")] = 8000,
    host: Annotated[str, typer.Option(help="gateway bind address")] = "127.0.0.1",
    model_replicas: Annotated[int, typer.Option(min=1, help="model worker processes")] = 2,
) -> None:
    """The whole local stack: broker, gateway, model replicas, decision worker. Ctrl-C stops it all.

    Broker: REDIS_URL if set, else an embedded server with its data in the data dir.
    With no champion model yet, the pipeline first runs on the demo source.
    """
    import signal
    import time

    from contracts.settings import ServingSettings
    from workers.serving.loader import NoChampionError, champion_ref
    from workers.serving.stack import LocalStack

    settings = PipelineSettings()
    try:
        ref = champion_ref(settings)
        console.print(f"champion model: version {ref.version}")
    except NoChampionError:
        console.print("[yellow]no champion model yet: running the pipeline on the demo source first[/yellow]")
        pipeline_run(source="demo", input_path=None, day=None, cards=None)
    stack = LocalStack(
        settings.data_dir, port=port, host=host, model_replicas=model_replicas, redis_url=os.environ.get("REDIS_URL")
    )
    stopping = False

    def _stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    # Ctrl-C raises KeyboardInterrupt even when started from a shell that ignores
    # SIGINT for background jobs (the ignore disposition would be inherited).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with console.status("starting broker, gateway and workers..."):
            stack.start_broker()
            stack.start()
        card = _example_card(stack.url)
        console.print(f"[green]PokeWatch is up[/green] at {stack.url}  (API docs: {stack.url}/docs)")
        console.print(f"broker: {stack.broker_url}   logs: {settings.data_dir / 'logs'}")
        console.print("try:")
        console.print(
            f"  curl -s -X POST {stack.url}/fair_price -H 'content-type: application/json' "
            f'-d \'{{"card_id": "{card}"}}\'',
            soft_wrap=True,
            highlight=False,
        )
        if not ServingSettings().auth_required:
            console.print(
                "[yellow]authentication is off[/yellow] (local default): anyone who reaches the gateway may use it; "
                "POKEWATCH_AUTH_REQUIRED=true and `pokewatch keys create` turn it on"
            )
        console.print("Ctrl-C stops every process started here.")
        while not stopping:
            for child in stack.children:
                if child.process.poll() is not None:
                    console.print(f"[red]{child.name} exited with {child.process.returncode}[/red]; see {child.log}")
                    stopping = True
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        stack.stop()
        raise typer.Exit(code=1) from None
    finally:
        if stack.children or stack.redis:
            console.print("stopping...")
            codes = stack.stop()
            console.print(f"stopped: {codes}")


def _example_card(url: str) -> str:
    import httpx

    try:
        items = httpx.get(f"{url}/cards", params={"page_size": 1}, timeout=5).json()["items"]
        return str(items[0]["card_id"]) if items else "CARD_ID"
    except (httpx.HTTPError, KeyError, ValueError):
        return "CARD_ID"


if __name__ == "__main__":
    app()
