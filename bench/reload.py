"""Benchmark: hot reload of a new model version under load.

Starts the local stack (embedded server, gateway, 2 model replicas, a decision
worker) on a champion trained on the synthetic demo, registers a second
version, drives `POST /fair_price` continuously from this process (asyncio,
CONCURRENCY connections), then announces the new version on
`pokewatch:model-events` and measures:

- reload_s: from the event to the moment after which every answer carries the
  new version (both replicas swapped);
- load_s: the slowest replica's own load time of the new version (MLflow load,
  serving state, pricing every state row), reported by its heartbeat;
- failed_requests: answers other than 200 during the whole run;
- p99 latency in steady state vs during the reload window.

    python bench/reload.py [--cards 200] [--days 365] [--steady 10] [--concurrency 8]

Last line: SUMMARY reload_s=<..> load_s=<..> failed_requests=<n> p99_steady_ms=<..> p99_reload_ms=<..>
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")

from contracts import keys  # noqa: E402
from workers.config import PipelineSettings  # noqa: E402
from workers.local.embedded import free_port  # noqa: E402
from workers.local.stack import LocalStack  # noqa: E402
from workers.model_events import publish_version  # noqa: E402
from workers.pipeline import run as steps  # noqa: E402

DAY = date(2026, 1, 2)


def prepare(data_dir: Path, cards: int, days: int) -> tuple[str, str]:
    settings = PipelineSettings(data_dir=data_dir, demo_cards=cards, demo_days=days)
    summary = steps.run_all(settings, "demo", DAY)
    first = str(summary["steps"]["register"]["version"])
    second = steps.register(settings, "demo", DAY)  # same candidate, a new version
    print(f"version {first} champion; version {second['version']}: promoted={second['promoted']} ({second['reason']})")
    # The replicas must start on the first version whatever the gate said about the second.
    from workers import registry

    registry.set_champion(settings, first)
    return first, str(second["version"])


async def drive(url: str, cards: list[str], concurrency: int, stop: asyncio.Event, log: list) -> None:
    async def one_client(k: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            i = k
            while not stop.is_set():
                started = time.perf_counter()
                resp = await client.post("/fair_price", json={"card_id": cards[i % len(cards)]})
                done = time.perf_counter()
                version = resp.json().get("model_version") if resp.status_code == 200 else None
                log.append((done, done - started, resp.status_code, version))
                i += concurrency

    await asyncio.gather(*(one_client(k) for k in range(concurrency)))


def replica_versions(r: redis.Redis) -> dict[str, tuple[str | None, float | None]]:
    out = {}
    for value in r.hgetall(keys.REPLICAS_HASH).values():
        beat = json.loads(value)
        if beat["role"] == "model":
            out[beat["replica_id"]] = (beat["model_version"], beat.get("last_load_s"))
    return out


async def run(opts: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="pokewatch-reload-") as tmp:
        data_dir = Path(tmp) / "data"
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        print(f"training on synthetic demo {opts.cards} x {opts.days}...", flush=True)
        old, new = prepare(data_dir, opts.cards, opts.days)
        stack = LocalStack(data_dir, port=free_port(), model_replicas=2, redis_port=0)
        stack.start(timeout=180)
        try:
            r = redis.Redis.from_url(stack.broker_url)
            cards = [c["card_id"] for c in httpx.get(f"{stack.url}/cards", params={"page_size": 500}).json()["items"]]
            log: list[tuple[float, float, int, str | None]] = []
            stop = asyncio.Event()
            load = asyncio.create_task(drive(stack.url, cards, opts.concurrency, stop, log))
            await asyncio.sleep(opts.steady)
            t0 = time.perf_counter()
            settings = PipelineSettings(data_dir=data_dir)
            await asyncio.to_thread(publish_version, settings, r, new, False, True)
            t_pub = time.perf_counter()
            deadline = t0 + 180
            while time.perf_counter() < deadline:
                if all(v == new for v, _ in replica_versions(r).values()):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.0)
            stop.set()
            await load
            loads = [s for v, s in replica_versions(r).values() if v == new and s is not None]
        finally:
            stack.stop()
        done = np.array([x[0] for x in log])
        lat_ms = np.array([x[1] for x in log]) * 1000
        status = np.array([x[2] for x in log])
        versions = np.array([x[3] or "" for x in log], dtype=object)
        stale = done[(versions != new) & (done >= t0)]
        t_all = float(stale.max()) if stale.size else t0
        reload_s = t_all - t0
        load_s = max(loads) if loads else float("nan")
        steady = lat_ms[done < t0]
        window = lat_ms[(done >= t0) & (done <= t_all + 0.5)]
        failed = int((status != 200).sum())
        print(f"requests {len(log)} ({len(steady)} steady, {len(window)} during reload); versions {old} -> {new}")
        print(f"versions answered before the event: {sorted(set(versions[done < t0]))}")
        print(f"old-version answers after the event: {int(((versions == old) & (done >= t0)).sum())}")
        print(f"publishing the event took {t_pub - t0:.2f} s (MLflow alias + event)")
        for k in range(int(t_all - t0) + 3):
            sel = (done >= t0 + k) & (done < t0 + k + 1)
            print(f"  t0+{k}s: {int(sel.sum())} answers, versions {sorted(set(versions[sel]))}")
        print(f"p50 steady {np.percentile(steady, 50):.1f} ms, p99 steady {np.percentile(steady, 99):.1f} ms")
        if window.size:
            print(f"p50 reload {np.percentile(window, 50):.1f} ms, p99 reload {np.percentile(window, 99):.1f} ms")
        p99_reload = float(np.percentile(window, 99)) if window.size else float("nan")
        print(
            f"SUMMARY reload_s={reload_s:.2f} load_s={load_s:.2f} failed_requests={failed} "
            f"p99_steady_ms={np.percentile(steady, 99):.1f} p99_reload_ms={p99_reload:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--steady", type=float, default=10.0, help="seconds of load before the event")
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
