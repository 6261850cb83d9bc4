"""`pokewatch worker ...` and `pokewatch gateway`: the long-running serving processes."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from workers.cli.common import serving_logging
from workers.config import WorkerSettings

app = typer.Typer(help="Stream workers (FastStream): model replicas, decision workers and the notifier.")

ReplicaOpt = Annotated[str | None, typer.Option("--replica", help="replica id (default: host-pid)")]


@app.command("model")
def model(
    replica: ReplicaOpt = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for a champion model before giving up")] = 0.0,
) -> None:
    """Model worker: reads pokewatch:predict in group `model`, prices with the champion."""
    from workers.serving.model_worker import ModelWorker

    worker = ModelWorker(WorkerSettings(), replica, wait_for_champion_s=wait)
    serving_logging(worker.replica_id)
    asyncio.run(worker.run())


@app.command("challenger")
def challenger(replica: ReplicaOpt = None) -> None:
    """Challenger replica: reads pokewatch:predict in group `shadow`, prices with the `challenger` alias and
    writes what it would have answered to pokewatch:shadow-quotes (never to users)."""
    import os

    from workers.serving.challenger import ChallengerWorker

    settings = WorkerSettings()
    # Users' requests first: the shadow group may lag (the request stream is capped), users never wait.
    if settings.shadow_idle and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    elif settings.shadow_nice:
        os.nice(settings.shadow_nice)
    worker = ChallengerWorker(settings, replica)
    serving_logging(worker.replica_id)
    asyncio.run(worker.run())


@app.command("decision")
def decision(replica: ReplicaOpt = None) -> None:
    """Decision worker: reads pokewatch:quotes in group `decision`, replies, appends to pokewatch:signals."""
    from workers.serving.decision_worker import DecisionWorker

    worker = DecisionWorker(WorkerSettings(), replica)
    serving_logging(worker.replica_id)
    asyncio.run(worker.run())


@app.command("notifier")
def notifier(replica: ReplicaOpt = None) -> None:
    """Notifier: matches pokewatch:signal-changes and pokewatch:price-updates to watchlists (group `notifier`),
    appends alerts to pokewatch:alerts and delivers them to webhooks, signed."""
    from workers.config import NotifierSettings
    from workers.notify.worker import NotifierWorker

    worker = NotifierWorker(NotifierSettings(), replica)
    serving_logging(worker.replica_id)
    asyncio.run(worker.run())


def gateway(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port", envvar="POKEWATCH_GATEWAY_PORT")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """The REST gateway (uvicorn): runs `python -m gateway`, the gateway's own entry point."""
    import os
    import sys

    # This process becomes the gateway (signals reach it directly); workers code never imports it.
    args = [sys.executable, "-m", "gateway", "--host", host, "--port", str(port), "--workers", str(workers)]
    os.execv(sys.executable, args)  # noqa: S606 (our own interpreter, fixed arguments)
