"""`pokewatch`: wires every command group; each lives in its own module beside this one."""

from __future__ import annotations

from typing import Annotated

import typer

from workers.cli import bench, evaluate, keys, model, monitor, pipeline, scan, up, watch, worker
from workers.cli.common import setup_logging

app = typer.Typer(help="PokeWatch: fair prices and BUY/SELL/HOLD signals for trading cards.", no_args_is_help=True)
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(model.app, name="model")
app.add_typer(worker.app, name="worker")
app.add_typer(keys.app, name="keys")
app.add_typer(watch.app, name="watch")
app.command("evaluate")(evaluate.evaluate_file)
app.command("bench")(bench.bench)
app.command("redis-acl")(keys.redis_acl)
app.command("gateway")(worker.gateway)
app.command("up")(up.up)
app.command("scan")(scan.scan)
app.command("exporter")(monitor.exporter)
app.command("top")(monitor.top)
app.command("asyncapi")(monitor.asyncapi)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log progress")] = False) -> None:
    setup_logging(verbose)


if __name__ == "__main__":
    app()
