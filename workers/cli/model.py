"""`pokewatch model ...`: registered versions, publishing one to the replicas, rolling back."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from workers.cli.common import broker, fail
from workers.config import PipelineSettings

app = typer.Typer(help="Registered model versions: status, publish to the replicas, roll back.")


@app.command("status")
def status() -> None:
    """Every registered version with its gate decision; the champion is marked."""
    from workers import registry

    settings = PipelineSettings()
    registry.configure(settings)
    champion = registry.champion_version(settings)
    table = Table(title=f"{settings.model_name} (champion: {champion})")
    challenger = registry.challenger_version(settings)
    table.caption = f"challenger: {challenger or 'none'}"
    for col in ("version", "role", "promoted", "candidate MAPE", "reason"):
        table.add_column(col)
    for v in registry.versions(settings):
        # MLflow returns the version as an int or a str depending on the store: rich renders only str.
        version = str(v.version)
        tags = v.tags
        mape = tags.get("gate.candidate_mape", "")
        table.add_row(
            version,
            "champion" if version == champion else "challenger" if version == challenger else lifecycle_role(tags),
            tags.get("gate.promoted", ""),
            f"{float(mape):.4f}" if mape else "",
            tags.get("gate.reason", ""),
        )
    Console().print(table)  # data goes to stdout


def lifecycle_role(tags: dict[str, str]) -> str:
    for tag, role in (
        ("lifecycle.rolled_back", "rolled back"),
        ("lifecycle.retired", "retired"),
        ("lifecycle.waiting", "waiting"),
    ):
        if tags.get(tag) == "True":
            return role
    return ""


@app.command("challenger")
def challenger(
    version: Annotated[str | None, typer.Argument(help="version to shadow-score beside the champion")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="withdraw the challenger instead")] = False,
) -> None:
    """Make VERSION the challenger: challenger replicas load it and shadow-price every request."""
    from workers import registry
    from workers.pipeline.rollout import clear_challenger, make_challenger

    settings = PipelineSettings()
    try:
        if clear:
            clear_challenger(settings, broker())
            out: dict[str, str | None] = {"challenger": None}
        elif version is None:
            fail(ValueError("give a VERSION, or --clear"))
        else:
            champion = registry.champion_version(settings)
            if version == champion:
                fail(ValueError(f"version {version} is the champion; a challenger must be another version"))
            registry.version_ref(settings, version)  # exists, or MLflow says why not
            out = {"challenger": make_challenger(settings, broker(), version), "champion": champion}
    except Exception as exc:
        fail(exc)
    typer.echo(json.dumps(out, indent=2))


@app.command("compare")
def compare(
    source: Annotated[str, typer.Option("--source", "-s", help="the feed whose prices score the forecasts")] = "demo",
    apply: Annotated[bool, typer.Option("--apply", help="also apply the rule's decision")] = False,
) -> None:
    """Score champion, challenger and previous champion on the prices that followed their forecasts,
    and say what the lifecycle rule decides (applied only with --apply)."""
    import datetime as dt

    from workers.pipeline.lifecycle import judge

    settings = PipelineSettings()
    try:
        client = broker()
        client.ping()
    except Exception:  # no broker: score the pipeline's forecasts only
        client = None
    try:
        out = judge(settings, source, dt.date.today(), client, apply=apply, record=apply)
    except Exception as exc:
        fail(exc)
    table = Table(title=f"{settings.model_name}: realized scores ({out['rule_state'] or 'no challenger'})")
    for col in ("version", "role", "dates", "outcomes", "MAPE %", "coverage", "hit rate"):
        table.add_column(col)
    for version, v in out["versions"].items():
        table.add_row(
            version,
            v["role"],
            str(v.get("dates", 0)),
            str(v.get("n", 0)),
            _fmt(v.get("mape")),
            _fmt(v.get("coverage")),
            _fmt(v.get("hit_rate")),
        )
    Console(stderr=True).print(table)
    typer.echo(json.dumps({"decision": out["decision"], "vs_champion": out["vs_champion"]}, indent=2, default=str))


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


@app.command("publish")
def publish(version: Annotated[str, typer.Argument(help="registered version to announce")]) -> None:
    """Make VERSION the champion and announce it; replicas serving an older version load it."""
    from workers.model_events import publish_version

    try:
        out = publish_version(PipelineSettings(), broker(), version, make_champion=True)
    except Exception as exc:  # MLflow or Redis: say which and why
        fail(exc)
    typer.echo(json.dumps(out, indent=2))


@app.command("rollback")
def rollback() -> None:
    """Point `champion` back at the previous champion and tell every replica to load it."""
    from workers.model_events import rollback as roll_back

    try:
        out = roll_back(PipelineSettings(), broker())
    except Exception as exc:
        fail(exc)
    typer.echo(json.dumps(out, indent=2))
