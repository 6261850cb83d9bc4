"""`pokewatch bench ...`: run a benchmark script from bench/ (in a checkout of the repository)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from workers.cli.common import fail

BENCHES = ("pipeline", "reload", "serve", "memory", "all")


def bench(
    which: Annotated[
        str, typer.Argument(help="pipeline | reload | serve | memory | all (all writes bench/RESULTS.md)")
    ],
    quick: Annotated[
        bool, typer.Option("--quick", help="the short variant (serve: 64-connection comparison only)")
    ] = False,
) -> None:
    """Run a benchmark script from bench/ (from a checkout of the repository)."""
    if which not in BENCHES:
        raise typer.BadParameter(f"expected one of {', '.join(BENCHES)}, got {which!r}")
    script = Path(__file__).resolve().parents[2] / "bench" / f"{which}.py"
    if not script.exists():
        fail(FileNotFoundError(f"{script} not found: benchmarks run from a checkout of the repository"))
    args = ["--quick"] if quick and which in ("serve", "all") else []
    raise typer.Exit(subprocess.run([sys.executable, str(script), *args], check=False).returncode)
