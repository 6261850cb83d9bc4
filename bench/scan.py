"""Benchmark: the market scan against `/fair_price/batch`, same stack, same run.

Trains a champion on the synthetic demo (`--cards` x `--days`), starts the
local stack (embedded server, gateway, 2 model replicas, a decision worker)
and measures, one after the other:

1. the reference: `POST /fair_price/batch` with 500 cards a request from
   `--batch-clients` connections for `--seconds`, in quotes per second;
2. the scan: while `--concurrency` clients keep sending single `POST
   /fair_price` requests, a scan of the served version is sent as `pokewatch
   scan` sends it (a swap's scan follows a reload, whose own cost
   bench/reload.py measures); the scan's quotes
   per second run from its first request's `sent_at` to its last decision's
   `decided_at` (both on the server side's clock), and the p99 of the single
   requests in flight at some point of that window against the p99 before it.

    python bench/scan.py [--cards 10000] [--days 60] [--seconds 8] [--concurrency 4]

Last line: SUMMARY batch_qps=<..> scan_qps=<..> scan_vs_batch=<..> scan_s=<..> p99_steady_ms=<..>
p99_during_scan_ms=<..> failed_requests=<n>
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import redis
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")

from bench.reload import drive, prepare  # noqa: E402
from contracts import keys  # noqa: E402
from workers.config import WorkerSettings  # noqa: E402
from workers.local.embedded import free_port  # noqa: E402
from workers.local.stack import LocalStack  # noqa: E402
from workers.serving.scan import scan_requests, send_paced  # noqa: E402


def scan_entries(r: redis.Redis, stream: str, prefix: str, after: str = "-") -> list[dict]:
    """The payloads of a stream's entries (after the id `after`) whose request id starts with `prefix`."""
    out = []
    for _, fields in r.xrange(stream, after):
        payload = json.loads(fields[b"payload"])
        if payload.get("request_id", "").startswith(prefix):
            out.append(payload)
    return out


async def wait_for_scan(r: redis.Redis, prefix: str, cards: int, after: str = "-", timeout: float = 600) -> list[dict]:
    """The scan's decisions once all `cards` are in. Read in a thread: parsing thousands of entries
    on the event loop would stall the load clients beside it and show up as their latency."""
    deadline = time.monotonic() + timeout
    while True:
        found = await asyncio.to_thread(scan_entries, r, keys.SIGNALS_STREAM, prefix, after)
        if len(found) >= cards or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


async def batch_reference(url: str, cards: list[str], clients: int, seconds: float) -> tuple[float, int]:
    """Quotes per second of /fair_price/batch (500 cards a request), and the failed requests."""
    quotes, failed = 0, 0
    stop_at = time.perf_counter() + seconds

    async def one(k: int) -> None:
        nonlocal quotes, failed
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            i = k * 500
            while time.perf_counter() < stop_at:
                items = [{"card_id": cards[(i + j) % len(cards)]} for j in range(500)]
                resp = await client.post("/fair_price/batch", json={"items": items})
                if resp.status_code == 200:
                    quotes += len(resp.json()["results"])
                else:
                    failed += 1
                i += clients * 500

    started = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(clients)))
    return quotes / (time.perf_counter() - started), failed


async def run(opts: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="pokewatch-scan-") as tmp:
        data_dir = Path(tmp) / "data"
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        print(f"training on synthetic demo {opts.cards} x {opts.days}...", flush=True)
        old, _ = prepare(data_dir, opts.cards, opts.days)
        stack = LocalStack(data_dir, port=free_port(), model_replicas=2, redis_port=0)
        stack.start(timeout=600)
        try:
            r = redis.Redis.from_url(stack.broker_url)
            first = await wait_for_scan(r, f"scan-{old}-", opts.cards)
            print(f"start-up scan of version {old}: {len(first)} cards decided")
            page = httpx.get(f"{stack.url}/cards", params={"page_size": 500}, timeout=30).json()
            cards = [c["card_id"] for c in page["items"]]
            all_cards = sorted({d["card_id"] for d in first})
            batch_qps, batch_failed = await batch_reference(stack.url, all_cards, opts.batch_clients, opts.seconds)
            print(f"reference: /fair_price/batch {batch_qps:,.0f} quotes/s ({opts.batch_clients} clients)")

            log: list[tuple[float, float, int, str | None]] = []
            stop = asyncio.Event()
            load = asyncio.create_task(drive(stack.url, cards, opts.concurrency, stop, log))
            await asyncio.sleep(opts.seconds)
            # A scan of the served version, as `pokewatch scan` sends it: no reload beside it.
            scan = scan_requests(all_cards, old, WorkerSettings().scan_batch)
            tag = scan[0].request_id.rsplit("-", 1)[0] + "-"
            newest = r.xrevrange(keys.SIGNALS_STREAM, count=1)
            after = newest[0][0].decode() if newest else "-"
            sender = aioredis.Redis.from_url(stack.broker_url)
            await send_paced(sender, scan, 100_000)
            await sender.aclose()
            decided = await wait_for_scan(r, tag, opts.cards, after)
            await asyncio.sleep(1.0)
            stop.set()
            await load
            requests = await asyncio.to_thread(scan_entries, r, keys.PREDICT_STREAM, tag)
            changes = r.xlen(keys.SIGNAL_CHANGES_STREAM)
        finally:
            stack.stop()
        start = min(q["sent_at"] for q in requests)
        end = max(d["decided_at"] for d in decided)
        scan_s = end - start
        scan_qps = len(decided) / scan_s
        # perf_counter of the load log -> wall clock: both are taken at the same moment here.
        offset = time.time() - time.perf_counter()
        done = np.array([x[0] for x in log]) + offset
        lat_ms = np.array([x[1] for x in log]) * 1000
        failed = int(sum(1 for x in log if x[2] != 200)) + batch_failed
        sent = done - lat_ms / 1000
        steady = lat_ms[done < start]
        during = lat_ms[(sent <= end) & (done >= start)]  # in flight at some point of the scan
        p99_steady = float(np.percentile(steady, 99))
        p99_scan = float(np.percentile(during, 99)) if during.size else float("nan")
        print(
            f"scan of version {old}: {len(decided)} cards in {len(requests)} requests, {scan_s:.2f} s, "
            f"{scan_qps:,.0f} quotes/s = {scan_qps / batch_qps:.2f}x the batch reference"
        )
        print(
            f"single requests: {len(steady)} before the scan (p99 {p99_steady:.1f} ms), "
            f"{during.size} in flight during it (p99 {p99_scan:.1f} ms); signal changes kept: {changes}"
        )
        print(
            f"SUMMARY batch_qps={batch_qps:.0f} scan_qps={scan_qps:.0f} scan_vs_batch={scan_qps / batch_qps:.2f} "
            f"scan_s={scan_s:.2f} p99_steady_ms={p99_steady:.1f} p99_during_scan_ms={p99_scan:.1f} "
            f"failed_requests={failed}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the reference and of the steady load")
    parser.add_argument("--batch-clients", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4, help="single-card clients during the scan")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
