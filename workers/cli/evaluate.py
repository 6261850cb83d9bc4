"""`pokewatch evaluate`: walk-forward metrics on one file, or the cross-feed table of a folder."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from workers.cli.common import console, fail
from workers.cli.pipeline import errors
from workers.config import PipelineSettings


def evaluate_file(
    input_path: Annotated[Path | None, typer.Option("--input", "-i", help="CSV/Parquet in the long format")] = None,
    all_dir: Annotated[
        Path | None, typer.Option("--all", help="every feed (CSV/Parquet) in this folder, at its cadence's horizons")
    ] = None,
    horizon: Annotated[int, typer.Option(min=1, help="forecast horizon in observations")] = 1,
    fair_horizon: Annotated[int, typer.Option(min=1, help="observations averaged by the fair level")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Walk-forward metrics of model and baselines on one long-format file, or on every feed of a folder."""
    from dataclasses import replace

    from workers.pipeline.run import eval_config

    if (input_path is None) == (all_dir is None):
        raise typer.BadParameter("give either --input FILE or --all FOLDER")
    cfg = replace(eval_config(PipelineSettings()), horizon=horizon, fair_horizon=fair_horizon)
    if all_dir is not None:
        _evaluate_all(all_dir, cfg, as_json)
        return
    assert input_path is not None
    _evaluate_one(input_path, cfg, as_json)


def _evaluate_one(input_path: Path, cfg: Any, as_json: bool) -> None:
    from workers.pipeline.evaluate import walk_forward
    from workers.pipeline.features import build_features
    from workers.pipeline.run import json_safe
    from workers.pipeline.schema import validate as validate_rows
    from workers.pipeline.sources.file import FileSource

    try:
        with console.status("loading and validating..."):
            checked = validate_rows(FileSource(input_path).fetch(date.today()))
        with console.status(f"walk-forward evaluation on {len(checked.clean):,} rows..."):
            result = walk_forward(build_features(checked.clean), cfg)
    except errors() as exc:
        fail(exc)
    out = result.to_json()
    out["quarantined"] = len(checked.quarantined)
    if as_json:
        typer.echo(json.dumps(json_safe(out), indent=2, default=str))
        return
    table = Table(title=f"walk-forward, h={cfg.horizon}, cutoff {out['cutoff']}, {out['n_test']:,} test rows")
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
    model = out["model"]
    console.print(
        f"signals on {model['signal_rate']:.2%} of card-days, {_pct(model['hit_rate'])} right; at the same rate "
        f"momentum {_pct(out['momentum']['hit_rate'])}, reversion {_pct(out['reversion']['hit_rate'])} right "
        f"(lift over the better: {_pts(model.get('signal_lift'))})"
    )


def _evaluate_all(folder: Path, cfg: Any, as_json: bool) -> None:
    from workers.pipeline.feeds import evaluate_feeds
    from workers.pipeline.run import json_safe

    try:
        with console.status("evaluating...") as status:
            out = evaluate_feeds(folder, cfg, on_run=lambda feed, h: status.update(f"{feed}, h={h}..."))
    except errors() as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(json_safe(out), indent=2, default=str))
        return
    table = Table(title=f"walk-forward on every feed of {folder}")
    for col in (
        "feed",
        "h",
        "MAPE model / naive",
        "vs naive (90% interval)",
        "coverage 80%",
        "signals",
        "hit",
        "momentum / reversion",
        "lift",
        "spread",
    ):
        table.add_column(col, justify="left" if col == "feed" else "right")
    for name, feed in out.items():
        for h, row in feed["horizons"].items():
            if "error" in row:
                table.add_row(f"{name} ({feed['cadence']})", h, row["error"], "", "", "", "", "", "", "")
                continue
            low, high = row["improvement_interval_pct"]
            table.add_row(
                f"{name} ({feed['cadence']})",
                h,
                f"{row['model_mape']:.3f}% / {row['naive_mape']:.3f}%",
                f"{row['improvement_pct']:+.2f}% [{low:+.2f}, {high:+.2f}]",
                f"{row['coverage']:.1%}",
                f"{row['signal_rate']:.2%}",
                _pct(row["hit_rate"]),
                f"{_pct(row['momentum_hit_rate'])} / {_pct(row['reversion_hit_rate'])}",
                _pts(row["signal_lift"]),
                _pct(row["spread"]),
            )
    Console().print(table)  # data goes to stdout


def _pct(value: float) -> str:
    return "-" if value is None or value != value else f"{value:.1%}"


def _pts(value: float | None) -> str:
    """A difference of rates in points: "+4.1 pts"."""
    return "-" if value is None or value != value else f"{value * 100:+.1f} pts"
