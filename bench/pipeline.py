"""Benchmark: the full pipeline on real weekly data and on a large synthetic panel.

Each case runs `pokewatch pipeline run` in a fresh child process on a fresh
data dir (real MLflow on sqlite), and reports wall time and the child's peak
RSS. Targets on a 2-core machine: real <= 60 s, synthetic 10,000 x 365 <= 300 s,
peak RSS <= 4 GB (summed over the process tree). Figures are printed, never asserted.

Machines differ by 2-4x, so the run first times a same-run reference, one fit
of the forecast learner (the MAPE-optimal GBM, 150 iterations) on the weekly feed's whole
feature table (a synthetic 3,656 x 52-week table when the feed is absent),
and prints every figure also as a multiple of it.

    python bench/pipeline.py [--cards 10000] [--days 365] [--skip-real] [--skip-synthetic]

Last line: SUMMARY real_s=<..> synthetic_s=<..> peak_rss_mb=<..> reference_s=<..> real_x=<..> synthetic_x=<..>
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "nayel_weekly.parquet"


def _tree_rss(proc: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run_case(label: str, args: list[str], env_extra: dict[str, str]) -> tuple[float, float]:
    """Run the pipeline once; wall time and the peak RSS of its whole process
    tree (the evaluation fits folds in worker processes), sampled every 0.2 s."""
    with tempfile.TemporaryDirectory(prefix="pokewatch-bench-") as tmp:
        env = {**os.environ, "POKEWATCH_DATA_DIR": str(Path(tmp) / "data"), **env_extra}
        env.pop("MLFLOW_TRACKING_URI", None)
        cmd = [sys.executable, "-m", "workers.cli", "pipeline", "run", *args, "--date", "2026-01-02"]
        started = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proc = psutil.Process(child.pid)
        peak = 0
        while child.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, _tree_rss(proc))
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        stdout, stderr = child.communicate()
        if child.returncode != 0:
            print(stdout[-2000:], stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"{label}: pipeline failed with exit code {child.returncode}")
        peak_mb = peak / 2**20
        print(f"{label:<34} {seconds:8.1f} s   peak RSS (process tree) {peak_mb:8.0f} MB")
        return seconds, peak_mb


def reference_seconds() -> tuple[float, int]:
    """One fit of the forecast learner on a full feature table: (seconds, rows)."""
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    from workers.pipeline.evaluate import with_targets
    from workers.pipeline.features import build_features
    from workers.pipeline.models.boosting import Design, recency_weight, regressor
    from workers.pipeline.schema import validate
    from workers.pipeline.sources.demo import generate

    if REAL.exists():
        prices = validate(pd.read_parquet(REAL)).clean
    else:
        weekly = generate(n_cards=3656, n_days=364, seed=1)
        dates = pd.to_datetime(weekly["date"])
        prices = validate(weekly[((dates - dates.min()).dt.days % 7) == 0]).clean
    rows = with_targets(build_features(prices), 1, 8)
    rows = rows[rows["target"].notna()]
    started = time.perf_counter()
    # A fixed amount of work, not the forecast's current settings: the
    # absolute-error fit of 150 iterations at 0.08 on every row, recency- and
    # 1/price-weighted, that the forecast made before it moved to 100 at 0.12
    # on the rows within eight half-lives, so ratios from before and after compare.
    X = Design.of(rows).X
    y = rows["target"].to_numpy(dtype="float64")
    weight = recency_weight(rows["date"], 35.0) * np.exp(-y)
    regressor("absolute_error", max_iter=150, learning_rate=0.08).fit(X, np.expm1(y), sample_weight=weight)
    return time.perf_counter() - started, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--skip-real", action="store_true", help="skip the shared/data case")
    parser.add_argument("--skip-synthetic", action="store_true", help="skip the synthetic case")
    opts = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    reference, ref_rows = reference_seconds()
    print(f"{'reference: one forecast fit':<34} {reference:8.1f} s   ({ref_rows:,} rows, same run)")
    real_s = float("nan")
    peaks = []
    if opts.skip_real or not REAL.exists():
        print(f"real-data case skipped: {REAL} not found" if not opts.skip_real else "real-data case skipped")
    else:
        real_s, peak = run_case("nayel_weekly (183k rows)", ["--source", "file", "--input", str(REAL)], {})
        peaks.append(peak)
    rows = opts.cards * opts.days
    synth_s = float("nan")
    if opts.skip_synthetic:
        print("synthetic case skipped")
    else:
        synth_s, peak = run_case(
            f"synthetic {opts.cards:,} x {opts.days} ({rows / 1e6:.2f}M rows)",
            ["--source", "demo"],
            {"POKEWATCH_DEMO_CARDS": str(opts.cards), "POKEWATCH_DEMO_DAYS": str(opts.days)},
        )
        peaks.append(peak)
    print(f"as multiples of the reference: real {real_s / reference:.1f}x, synthetic {synth_s / reference:.1f}x")
    print(
        f"SUMMARY real_s={real_s:.1f} synthetic_s={synth_s:.1f} peak_rss_mb={max(peaks, default=float('nan')):.0f} "
        f"reference_s={reference:.2f} real_x={real_s / reference:.1f} synthetic_x={synth_s / reference:.1f}"
    )


if __name__ == "__main__":
    main()
