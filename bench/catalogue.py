"""Benchmark: the whole catalogue, priced daily (10,000 / 25,000 / 50,000 cards x 1,095 days).

For each size, and for the quick start's demo (200 cards x 365 days) as the
same-run reference, it generates the synthetic demo catalogue and runs the
pipeline as the DAG does: the mapped steps (collect, validate, features,
price) as one task per partition on a pool of as many workers as the
machine has cores (each task in a fresh process, like an Airflow task),
context, train, evaluate and register as single tasks. Then it serves the
result like production does: the local stack (embedded server, gateway, two
model replicas memory-mapping the priced state, a decision worker).

Printed per size:
- wall time per step, the partitions' own durations (the mapped steps'
  critical path is the slowest partition on each worker), and the peak RSS
  of the largest task;
- the mapped steps with 1 worker and with all of them (the first size only);
- a replica's load time and steady RSS (anonymous and file-backed; the
  file-backed part is the mapped state, shared between replicas), and two
  replicas' proportional share (PSS);
- the market scan of every card (every card priced, in batches of 100);
- Redis memory after the replicas published the catalogue;
- POST /fair_price p99 and throughput, and a reload under load (failed requests).

    python bench/catalogue.py [--cards 10000 25000 50000] [--days 1095]

Every figure is printed beside the reference's, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import json
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")

from bench.reload import drive, replica_versions  # noqa: E402
from contracts import keys  # noqa: E402
from workers.config import PipelineSettings  # noqa: E402
from workers.local.embedded import free_port  # noqa: E402
from workers.local.stack import LocalStack  # noqa: E402
from workers.model_events import publish_version  # noqa: E402
from workers.pipeline import run as steps  # noqa: E402
from workers.pipeline.partitions import Partition  # noqa: E402

DAY = date(2026, 1, 2)
MAPPED = ("collect", "validate", "features")


def _task(name: str, settings: dict[str, Any], part: dict[str, int] | None) -> tuple[float, float, dict[str, Any]]:
    """One task in its own process: (seconds, peak RSS in MB, output)."""
    s = PipelineSettings(**settings)
    p = Partition(**part) if part else None
    started = time.perf_counter()
    calls = {
        "collect": lambda: steps.collect(s, "demo", DAY, None, p),
        "validate": lambda: steps.validate(s, "demo", DAY, None, p),
        "features": lambda: steps.features(s, "demo", p),
        "price": lambda: steps.price(s, "demo", DAY, p),
        "context": lambda: steps.context(s, "demo"),
        "train": lambda: steps.train(s, "demo", DAY),
        "evaluate": lambda: steps.evaluate(s, "demo", DAY),
        "register": lambda: steps.register(s, "demo", DAY),
    }
    out = calls[name]()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The evaluation's fold processes (loky) would hold this process's exit for their idle timeout.
    from joblib.externals.loky import reusable_executor

    if reusable_executor._executor is not None:
        reusable_executor._executor.shutdown(wait=True, kill_workers=True)
    peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    return time.perf_counter() - started, peak, {k: v for k, v in out.items() if isinstance(v, int | float | str)}


def _in_child(fn: Any, *args: Any) -> Any:
    """Registry calls in a fresh process: MLflow keeps one store per process, and each size has its own."""
    with _pool(1) as pool:
        return pool.submit(fn, *args).result()


def _as_champion(data_dir: str, version: str) -> None:
    from workers import registry

    registry.set_champion(PipelineSettings(data_dir=data_dir), version)


def _warm() -> None:
    import mlflow  # noqa: F401  (the announcer's imports, done before the measured window)


def _publish(data_dir: str, broker_url: str, version: str) -> float:
    """Announce the version; returns when it started (CLOCK_MONOTONIC: the same clock in every process)."""
    settings, client = PipelineSettings(data_dir=data_dir), redis.Redis.from_url(broker_url)
    started = time.perf_counter()
    publish_version(settings, client, version, False, True)
    return started


def _pool(workers: int) -> cf.ProcessPoolExecutor:
    return cf.ProcessPoolExecutor(max_workers=workers, max_tasks_per_child=1)


def mapped(name: str, settings: dict[str, Any], parts: list[Partition], workers: int) -> dict[str, Any]:
    """A mapped step: every partition a task, `workers` at a time."""
    started = time.perf_counter()
    with _pool(workers) as pool:
        futures = [pool.submit(_task, name, settings, p.as_dict()) for p in parts]
        results = [f.result() for f in futures]
    wall = time.perf_counter() - started
    seconds = [r[0] for r in results]
    return {"wall": wall, "partitions": seconds, "peak_mb": max(r[1] for r in results), "work": sum(seconds)}


def single(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    with _pool(1) as pool:
        started = time.perf_counter()
        seconds, peak, out = pool.submit(_task, name, settings, None).result()
    return {
        "wall": time.perf_counter() - started,
        "partitions": [seconds],
        "peak_mb": peak,
        "work": seconds,
        "out": out,
    }


def pipeline(data_dir: Path, cards: int, days: int, workers: int, serial_too: bool) -> dict[str, Any]:
    settings = {"data_dir": str(data_dir), "demo_cards": cards, "demo_days": days}
    parts = steps.plan(PipelineSettings(**settings), "demo")
    out: dict[str, Any] = {"cards": cards, "days": days, "rows": cards * days, "partitions": len(parts), "steps": {}}
    if serial_too:  # the mapped steps on one worker, for the speed-up; then again on all of them
        out["serial"] = {name: mapped(name, settings, parts, 1)["wall"] for name in MAPPED}
    for name in MAPPED:
        out["steps"][name] = mapped(name, settings, parts, workers)
    out["steps"]["context"] = single("context", settings)
    out["steps"]["train"] = single("train", settings)
    # As the DAG runs them: evaluate beside the mapped price tasks.
    started = time.perf_counter()
    with cf.ThreadPoolExecutor(2) as both:
        evaluated = both.submit(single, "evaluate", settings)
        priced = both.submit(mapped, "price", settings, parts, max(1, workers - 1))
        out["steps"]["evaluate"], out["steps"]["price"] = evaluated.result(), priced.result()
    out["evaluate_and_price_wall"] = time.perf_counter() - started
    out["steps"]["register"] = single("register", settings)
    out["version"] = out["steps"]["register"]["out"].get("version")
    out["total"] = sum(s["wall"] for n, s in out["steps"].items() if n not in ("evaluate", "price"))
    out["total"] += out["evaluate_and_price_wall"]
    return out


REPLICA = """
import json, os, random, sys, time
sys.path.insert(0, {root!r})
from workers.config import WorkerSettings
from workers import registry
from workers.serving.loader import load_state
from contracts.messages import PredictItem
settings = WorkerSettings(data_dir={data_dir!r})
started = time.perf_counter()
state = load_state(settings, registry.champion_ref(settings))
load_s = time.perf_counter() - started
cards = list(state.cards)
started = time.perf_counter()
for i in range(0, len(cards), 100):
    state.quote([PredictItem(card_id=c) for c in cards[i : i + 100]], "bench")
scan_s = time.perf_counter() - started
rng = random.Random(1)
for _ in range(200):
    state.quote([PredictItem(card_id=rng.choice(cards)) for _ in range(100)], "bench")
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
kb = lambda k: int(status[k].split()[0]) / 1024
print(json.dumps({{"load_s": load_s, "scan_s": scan_s, "cards": len(cards), "rss_mb": kb("VmRSS"),
                  "anon_mb": kb("RssAnon"), "file_mb": kb("RssFile"), "pid": os.getpid()}}), flush=True)
sys.stdin.readline()  # hold the state until told to go
"""


def pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def replicas(data_dir: Path) -> dict[str, Any]:
    """Two replica processes load the champion's state side by side; their load, RSS and PSS."""
    import subprocess

    code = REPLICA.format(root=str(ROOT), data_dir=str(data_dir))
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        figures = [json.loads(p.stdout.readline()) for p in procs]  # type: ignore[union-attr]
        pss = [pss_mb(f["pid"]) for f in figures]
    finally:
        for p in procs:
            p.communicate("go\n", timeout=60)
    first = figures[0]
    return {**first, "load_s": max(f["load_s"] for f in figures), "pss_mb": pss}


async def serve(data_dir: Path, steady_s: float, new_version: str) -> dict[str, Any]:
    """The stack on the champion: Redis memory, /fair_price under load, then a reload under that load."""
    stack = LocalStack(data_dir, port=free_port(), model_replicas=2, redis_port=0)
    stack.start(timeout=600)
    try:
        r = redis.Redis.from_url(stack.broker_url)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not r.exists(keys.CATALOG_VERSION_KEY):
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        used_mb = r.info("memory")["used_memory"] / 2**20
        cards = [c["card_id"] for c in httpx.get(f"{stack.url}/cards", params={"page_size": 500}).json()["items"]]
        log: list[tuple[float, float, int, str | None]] = []
        stop = asyncio.Event()
        # The announcing process is started and warmed before the load: its start is not measured.
        announcer = cf.ProcessPoolExecutor(1)
        await asyncio.wrap_future(announcer.submit(_warm))
        load = asyncio.create_task(drive(stack.url, cards, 8, stop, log))
        await asyncio.sleep(steady_s)
        t0 = await asyncio.wrap_future(announcer.submit(_publish, str(data_dir), stack.broker_url, new_version))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not all(v == new_version for v, _ in replica_versions(r).values()):
            await asyncio.sleep(0.05)
        reload_s = time.perf_counter() - t0
        await asyncio.sleep(2.0)
        stop.set()
        await load
        announcer.shutdown()
    finally:
        stack.stop()
    done = np.array([x[0] for x in log])
    lat = np.array([x[1] for x in log]) * 1000
    status = np.array([x[2] for x in log])
    steady = lat[done < t0]
    start = done.min() if done.size else t0
    return {
        "redis_mb": used_mb,
        "p50_ms": float(np.percentile(steady, 50)),
        "p99_ms": float(np.percentile(steady, 99)),
        "rps": float(len(steady) / max(t0 - start, 1e-9)),
        "reload_s": reload_s,
        "requests": len(log),
        "failed": int((status != 200).sum()),
    }


def measure(cards: int, days: int, workers: int, serial_too: bool, steady_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"pokewatch-catalogue-{cards}-") as tmp:
        data_dir = Path(tmp) / "data"
        print(f"\n== {cards} cards x {days} days ({cards * days / 1e6:.2f}M rows)", flush=True)
        out = pipeline(data_dir, cards, days, workers, serial_too)
        settings = {"data_dir": str(data_dir)}
        second = single("register", settings)["out"]  # the same candidate again: the version to reload to
        _in_child(_as_champion, str(data_dir), str(out["version"]))
        out["replica"] = replicas(data_dir)
        out["serve"] = asyncio.run(serve(data_dir, steady_s, str(second["version"])))
        report(out)
        return out


def report(out: dict[str, Any]) -> None:
    print(f"partitions {out['partitions']}; pipeline {out['total']:.0f} s end to end", flush=True)
    for name, s in out["steps"].items():
        parts = s["partitions"]
        print(
            f"  {name:9s} wall {s['wall']:7.1f} s  peak {s['peak_mb']:6.0f} MB  "
            f"partitions {len(parts)}: median {np.median(parts):.1f} s, slowest {max(parts):.1f} s"
        )
    if "serial" in out:
        for name, wall in out["serial"].items():
            print(f"  {name:9s} 1 worker {wall:6.1f} s vs {out['steps'][name]['wall']:6.1f} s on all")
    rep, srv = out["replica"], out["serve"]
    print(
        f"  replica load {rep['load_s']:.2f} s; RSS {rep['rss_mb']:.0f} MB (anon {rep['anon_mb']:.0f}, "
        f"file {rep['file_mb']:.0f}); two replicas' PSS {rep['pss_mb'][0]:.0f} + {rep['pss_mb'][1]:.0f} MB"
    )
    print(f"  scan of {rep['cards']} cards {rep['scan_s']:.2f} s; Redis {srv['redis_mb']:.0f} MB")
    print(
        f"  /fair_price p50 {srv['p50_ms']:.1f} ms p99 {srv['p99_ms']:.1f} ms, {srv['rps']:.0f} req/s; "
        f"reload {srv['reload_s']:.2f} s, {srv['failed']} failed of {srv['requests']}"
    )


def table(results: list[dict[str, Any]]) -> None:
    ref = results[0]
    print("\n| cards x days | rows | partitions | pipeline s | largest task MB | replica load s | replica RSS MB "
          "(anon / file) | scan s | Redis MB | p99 ms | req/s | reload failed |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rep, srv = r["replica"], r["serve"]
        peak = max(s["peak_mb"] for s in r["steps"].values())
        print(
            f"| {r['cards']:,} x {r['days']:,} | {r['rows'] / 1e6:.2f}M | {r['partitions']} | {r['total']:.0f} "
            f"({r['total'] / ref['total']:.1f}x) | {peak:.0f} | "
            f"{rep['load_s']:.2f} ({rep['load_s'] / ref['replica']['load_s']:.1f}x) | "
            f"{rep['rss_mb']:.0f} ({rep['anon_mb']:.0f} / {rep['file_mb']:.0f}) | {rep['scan_s']:.2f} | "
            f"{srv['redis_mb']:.0f} | {srv['p99_ms']:.1f} ({srv['p99_ms'] / ref['serve']['p99_ms']:.2f}x) | "
            f"{srv['rps']:.0f} ({srv['rps'] / ref['serve']['rps']:.2f}x) | {srv['failed']} |"
        )  # fmt: skip
    print("(x: ratio to the first row, the quick start's demo, measured in the same run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, nargs="+", default=[10_000, 25_000, 50_000])
    parser.add_argument("--days", type=int, default=1095)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--steady", type=float, default=15.0, help="seconds of /fair_price load before the reload")
    opts = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    results = [measure(200, 365, opts.workers, False, opts.steady)]
    for i, cards in enumerate(opts.cards):
        results.append(measure(cards, opts.days, opts.workers, i == 0, opts.steady))
        table(results)
    (ROOT / ".pokewatch").mkdir(exist_ok=True)
    (ROOT / ".pokewatch" / "catalogue-bench.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
