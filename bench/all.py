"""Run every benchmark in one go and write bench/RESULTS.md (machine, date, commit, every SUMMARY).

    python bench/all.py [--quick]        # also: pokewatch bench all

Each benchmark runs as its own process, one after the other (never in
parallel: they would measure each other). `--quick` passes --quick to
bench/serve.py and a smaller synthetic case to bench/pipeline.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}){mem}, {system}, Python {platform.python_version()}"


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")
    except OSError:
        return "unknown"


def run(name: str, args: list[str]) -> dict[str, str]:
    print(f"== {name}: {' '.join(args)}", flush=True)
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    summary = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
        if line.startswith("SUMMARY "):
            summary = line.strip()
    code = proc.wait()
    if code != 0 or not summary:
        return {"status": f"failed (exit {code})"}
    return dict(kv.split("=", 1) for kv in summary.split()[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    quick = ["--quick"] if opts.quick else []
    cases = {
        "pipeline": ["bench/pipeline.py", *(["--cards", "2000"] if opts.quick else [])],
        "reload": ["bench/reload.py"],
        "serve": ["bench/serve.py", *quick],
        "memory": ["bench/memory.py", *(["--cards", "2000"] if opts.quick else [])],
    }
    started = dt.datetime.now(dt.UTC)
    results = {name: run(name, args) for name, args in cases.items()}
    lines = [
        "# Benchmark results",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- commit: {commit()}",
        f"- machine: {machine()}",
        f"- command: `python bench/all.py{' --quick' if opts.quick else ''}`"
        " (one run; shared machines are noisy, compare ratios from the same run)",
        "",
        "| benchmark | figure | value |",
        "|---|---|---|",
    ]
    for name, figures in results.items():
        for key, value in figures.items():
            lines.append(f"| {name} | {key} | {value} |")
    lines.append("")
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
