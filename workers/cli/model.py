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
    for col in ("version", "champion", "promoted", "candidate MAPE", "reason"):
        table.add_column(col)
    for v in registry.versions(settings):
        # MLflow returns the version as an int or a str depending on the store: rich renders only str.
        version = str(v.version)
        tags = v.tags
        mape = tags.get("gate.candidate_mape", "")
        table.add_row(
            version,
            "*" if version == champion else "",
            tags.get("gate.promoted", ""),
            f"{float(mape):.4f}" if mape else "",
            tags.get("gate.reason", ""),
        )
    Console().print(table)  # data goes to stdout


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
