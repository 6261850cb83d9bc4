"""`pokewatch up`: the whole local stack in one command (workers.local.stack)."""

from __future__ import annotations

import os
import signal
import time
from typing import Annotated, Any

import typer

from workers.cli.common import console
from workers.config import PipelineSettings


def up(
    port: Annotated[int, typer.Option(help="gateway HTTP port")] = 8000,
    host: Annotated[str, typer.Option(help="gateway bind address")] = "127.0.0.1",
    model_replicas: Annotated[int, typer.Option(min=1, help="model worker processes")] = 2,
    challenger: Annotated[
        str | None,
        typer.Option(help="a registered version to shadow-score beside the champion, with one challenger replica"),
    ] = None,
) -> None:
    """The whole local stack: broker, gateway, model replicas, decision worker, notifier. Ctrl-C stops it all.

    Broker: REDIS_URL if set, else an embedded server with its data in the data dir.
    With no champion model yet, the pipeline first runs on the demo source.
    """
    from workers import registry
    from workers.cli.pipeline import run as pipeline_run
    from workers.local.stack import LocalStack

    settings = PipelineSettings()
    try:
        ref = registry.champion_ref(settings)
        console.print(f"champion model: version {ref.version}")
    except registry.NoChampionError:
        console.print("[yellow]no champion model yet: running the pipeline on the demo source first[/yellow]")
        pipeline_run(source="demo", input_path=None, day_=None, cards=None)
    if challenger is not None:
        _set_challenger(settings, challenger)
    stack = LocalStack(
        settings.data_dir,
        port=port,
        host=host,
        model_replicas=model_replicas,
        challengers=1 if challenger is not None else 0,
        notifiers=1,
        metrics=True,
        redis_url=os.environ.get("REDIS_URL"),
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
        _record_newest_run(stack, settings)
        _banner(stack, settings)
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


def _set_challenger(settings: PipelineSettings, version: str) -> None:
    """Point the `challenger` alias at `version` (a registered version other than the champion)."""
    from workers import registry

    try:
        registry.version_ref(settings, version)
    except Exception as exc:
        console.print(f"[red]error:[/red] version {version!r} is not registered: {exc}")
        raise typer.Exit(code=2) from None
    if version == registry.champion_version(settings):
        console.print(f"[red]error:[/red] version {version} is the champion; a challenger must be another version")
        raise typer.Exit(code=2)
    registry.set_challenger(settings, version)
    console.print(f"challenger: version {version} (shadow-scored, never answers users)")


def _banner(stack: Any, settings: PipelineSettings) -> None:
    card = _example_card(stack.url)
    console.print(f"[green]PokeWatch is up[/green] at {stack.url}  (API docs: {stack.url}/docs)")
    console.print(f"broker: {stack.broker_url}   logs: {settings.data_dir / 'logs'}")
    scrape = settings.data_dir / "prometheus.yml"
    scrape.write_text(stack.prometheus_config())
    console.print(
        f"metrics: {stack.url}/metrics and every worker's; `prometheus --config.file {scrape}` scrapes them all"
    )
    console.print(f"pages: {stack.url}/ui   streams: {stack.url}/asyncapi")
    console.print("operators: `pokewatch top` (REDIS_URL as above)")
    console.print("docs: `make docs` serves the documentation site at http://127.0.0.1:8001 (from the checkout)")
    console.print("try:")
    console.print(
        f"  curl -s -X POST {stack.url}/fair_price -H 'content-type: application/json' "
        f'-d \'{{"card_id": "{card}"}}\'',
        soft_wrap=True,
        highlight=False,
    )
    if not _auth_required():
        console.print(
            "[yellow]authentication is off[/yellow] (local default): anyone who reaches the gateway may use it; "
            "POKEWATCH_AUTH_REQUIRED=true and `pokewatch keys create` turn it on"
        )
    console.print("Ctrl-C stops every process started here.")


def _record_newest_run(stack: Any, settings: PipelineSettings) -> None:
    """The newest local run's record for the metrics, unless the broker has one already."""
    import redis

    from contracts import keys
    from workers.cli.pipeline import record_summary
    from workers.pipeline.runs import newest_summary

    summary = newest_summary(settings.data_dir)
    with redis.Redis.from_url(stack.broker_url) as client:
        recorded = client.xlen(keys.PIPELINE_RUNS_STREAM)
        judged = client.exists(keys.LIFECYCLE_KEY)
        if summary is not None and not judged:
            # The first run's rule ran before the broker was up: the model page and metrics get its record now.
            from datetime import date

            from workers.pipeline.lifecycle import judge

            try:
                judge(settings, summary["source"], date.fromisoformat(summary["collection_date"]), client)
            except Exception as exc:  # the stack serves without it
                console.print(f"[yellow]the lifecycle rule could not run: {exc}[/yellow]")
    if summary is not None and not recorded:
        record_summary(summary, stack.broker_url)


def _auth_required() -> bool:
    """POKEWATCH_AUTH_REQUIRED parsed as the gateway's settings parse it (pydantic's bool)."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(bool).validate_python(os.environ.get("POKEWATCH_AUTH_REQUIRED", "false"))
    except ValidationError:
        return False


def _example_card(url: str) -> str:
    import httpx

    try:
        items = httpx.get(f"{url}/cards", params={"page_size": 1}, timeout=5).json()["items"]
        return str(items[0]["card_id"]) if items else "CARD_ID"
    except (httpx.HTTPError, KeyError, ValueError):
        return "CARD_ID"
