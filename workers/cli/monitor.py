"""`pokewatch exporter` and `pokewatch top`: the operators' views (workers.monitoring)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from contracts.settings import BrokerSettings, redacted


def exporter(
    port: Annotated[int, typer.Option(help="HTTP port of /metrics", envvar="POKEWATCH_EXPORTER_PORT")] = 9108,
    host: Annotated[str, typer.Option(help="bind address")] = "0.0.0.0",  # noqa: S104 (a metrics port in a pod)
    replica_ttl_s: Annotated[float, typer.Option(help="a replica unseen this long is not live")] = 10.0,
) -> None:
    """Stream, group, replica and pipeline metrics for Prometheus, from one process (REDIS_URL)."""
    from workers.cli.common import serving_logging
    from workers.monitoring.exporter import serve

    serving_logging("exporter")
    server = serve(BrokerSettings().redis_url, port, host, replica_ttl_s)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.shutdown()


def top(
    interval: Annotated[float, typer.Option(help="seconds between refreshes", min=0.2)] = 1.0,
    once: Annotated[bool, typer.Option(help="print one frame and exit")] = False,
) -> None:
    """A live view of the streams, groups, replicas and dead letters (REDIS_URL). Ctrl-C quits."""
    import redis
    from rich.console import Console
    from rich.live import Live

    from workers.monitoring.top import read, render

    url = BrokerSettings().redis_url
    client = redis.Redis.from_url(url)
    console = Console()
    source = redacted(url)
    try:
        first = read(client)
        if once:
            console.print(render(first, None, source))
            return
        prev = first
        with Live(render(first, None, source), console=console, screen=False, refresh_per_second=4) as live:
            while True:
                time.sleep(interval)
                cur = read(client)
                live.update(render(cur, prev, source))
                prev = cur
    except KeyboardInterrupt:
        console.print("bye")
    except (redis.RedisError, OSError) as exc:
        console.print(f"[red]error:[/red] cannot read {source}: {exc}")
        raise typer.Exit(code=1) from None


def asyncapi(
    out: Annotated[Path | None, typer.Option(help="write here (contracts/asyncapi.json); default: stdout")] = None,
) -> None:
    """The stream contracts as an AsyncAPI 3.0 document (FastStream's generator)."""
    from workers.asyncapi import render

    text = render()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
