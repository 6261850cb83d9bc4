"""Benchmark: the full pipeline on real weekly data and on a large synthetic panel.

Each case runs `pokewatch pipeline run` in a fresh child process on a fresh
data dir (real MLflow on sqlite), and reports wall time and the child's peak
RSS. Targets on a 2-core machine: real <= 60 s, synthetic 10,000 x 365 <= 300 s,
peak RSS <= 4 GB. Figures are printed, never asserted.

    python bench/pipeline.py [--cards 10000] [--days 365] [--skip-real]

Last line: SUMMARY real_s=<..> synthetic_s=<..> peak_rss_mb=<..>
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "nayel_weekly.parquet"


def run_case(label: str, args: list[str], env_extra: dict[str, str]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="pokewatch-bench-") as tmp:
        env = {**os.environ, "POKEWATCH_DATA_DIR": str(Path(tmp) / "data"), **env_extra}
        env.pop("MLFLOW_TRACKING_URI", None)
        cmd = [sys.executable, "-m", "workers.cli", "pipeline", "run", *args, "--date", "2026-01-02"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"{label}: pipeline failed with exit code {proc.returncode}")
        if peak_mb < before / 1024:
            peak_mb = before / 1024
        print(f"{label:<34} {seconds:8.1f} s   peak RSS {peak_mb:8.0f} MB")
        return seconds, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--skip-real", action="store_true", help="skip the shared/data case")
    opts = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    real_s = float("nan")
    peaks = []
    if opts.skip_real or not REAL.exists():
        print(f"real-data case skipped: {REAL} not found" if not opts.skip_real else "real-data case skipped")
    else:
        real_s, peak = run_case("nayel_weekly (183k rows)", ["--source", "file", "--input", str(REAL)], {})
        peaks.append(peak)
    rows = opts.cards * opts.days
    synth_s, peak = run_case(
        f"synthetic {opts.cards:,} x {opts.days} ({rows / 1e6:.2f}M rows)",
        ["--source", "demo"],
        {"POKEWATCH_DEMO_CARDS": str(opts.cards), "POKEWATCH_DEMO_DAYS": str(opts.days)},
    )
    peaks.append(peak)
    # ru_maxrss of children is the largest single child, i.e. the worst case.
    print(f"SUMMARY real_s={real_s:.1f} synthetic_s={synth_s:.1f} peak_rss_mb={max(peaks):.0f}")


if __name__ == "__main__":
    main()
