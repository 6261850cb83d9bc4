"""Benchmark: memory of one model worker serving 10,000 cards.

Trains a champion on a small synthetic demo, then registers a version with
the same (global) model and a serving state for `--cards` x `--days`
synthetic cards, starts a real model worker process on it and reads its
resident memory from /proc once it serves (steady) and its high-water mark
(the load peak).

    python bench/memory.py [--cards 10000] [--days 365]

Last line: SUMMARY cards=<n> state_rows=<n> worker_rss_mb=<..> worker_peak_mb=<..> load_s=<..>
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")

from contracts import keys  # noqa: E402
from workers import registry  # noqa: E402
from workers.config import PipelineSettings  # noqa: E402
from workers.local.embedded import EmbeddedRedis  # noqa: E402
from workers.pipeline.features import build_features  # noqa: E402
from workers.pipeline.run import run_all  # noqa: E402
from workers.pipeline.serving_state import build_serving_state  # noqa: E402
from workers.pipeline.sources.demo import generate  # noqa: E402


def proc_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def register_big_state(settings: PipelineSettings, cards: int, days: int) -> tuple[str, int]:
    model = registry.load_model(settings, registry.champion_ref(settings).version)
    state = build_serving_state(build_features(generate(n_cards=cards, n_days=days, seed=11)), settings.serving_days)
    mlflow = registry.mlflow()
    registry.configure(settings)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=registry.pyfunc_of(model),
            pip_requirements=registry.PIP_REQUIREMENTS,
            registered_model_name=settings.model_name,
        )
        registry.log_serving_state(state)
    version = str(info.registered_model_version)
    registry.set_champion(settings, version)
    return version, len(state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pokewatch-memory-") as tmp:
        data_dir = Path(tmp) / "data"
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        settings = PipelineSettings(data_dir=data_dir, demo_cards=60, demo_days=240)
        print("training a small champion...", flush=True)
        run_all(settings, "demo", date(2026, 1, 2))
        print(f"registering a version serving {opts.cards:,} x {opts.days} synthetic cards...", flush=True)
        version, rows = register_big_state(settings, opts.cards, opts.days)
        with EmbeddedRedis(data_dir / "redis") as server:
            env = {
                **os.environ,
                "REDIS_URL": server.url,
                "POKEWATCH_DATA_DIR": str(data_dir),
                "MLFLOW_TRACKING_URI": settings.tracking_uri,
            }
            started = time.perf_counter()
            worker = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "worker", "model", "--replica", "mem-1"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            client = redis.Redis.from_url(server.url)
            try:
                while time.perf_counter() - started < 600:
                    raw = client.hget(keys.REPLICAS_HASH, "mem-1")
                    if raw and json.loads(raw).get("model_version") == version:
                        break
                    if worker.poll() is not None:
                        raise SystemExit(f"worker exited with {worker.returncode}")
                    time.sleep(0.5)
                ready_s = time.perf_counter() - started
                load_s = json.loads(client.hget(keys.REPLICAS_HASH, "mem-1"))["last_load_s"]
                time.sleep(3)
                rss, peak = proc_mb(worker.pid, "VmRSS"), proc_mb(worker.pid, "VmHWM")
            finally:
                worker.terminate()
                worker.wait(30)
    print(f"worker ready in {ready_s:.1f} s (its own load {load_s:.1f} s); state rows {rows:,}")
    print(
        f"SUMMARY cards={opts.cards} state_rows={rows} worker_rss_mb={rss:.0f} "
        f"worker_peak_mb={peak:.0f} load_s={load_s:.1f}"
    )


if __name__ == "__main__":
    main()
