"""Benchmark: the streams request path against a bare ceiling and the old HTTP chain, same machine, same run.

Starts, on 127.0.0.1 only:
- the PokeWatch stack (embedded server, gateway, 2 model replicas, a decision
  worker) on a champion trained on the synthetic demo;
- the ceiling: a bare FastAPI endpoint returning a fixed body (bench/ceiling.py);
- the old architecture: gateway -> model service -> decision service over
  HTTP with the same model and rule (bench/http_chain.py).
Load comes from a separate process (bench/loadgen.py), bounded in time. For
each scenario it prints requests/s, p50/p95/p99 latency, errors, and the CPU
seconds each process used (the load generator's own CPU too, to show it is
not the bottleneck).

    python bench/serve.py [--quick] [--duration 5] [--cards 200] [--days 365]

`--quick` runs only the 64-connection comparison. The cost of metrics is
measured in every run: two fresh identical stacks, one with
POKEWATCH_METRICS=false, loaded in turn (three rounds, after warming), with a
third identical stack with metrics on as the control for how much two stacks
differ when nothing changes; ratios are of the medians. Last line, exactly:
SUMMARY rps=<streams rps at 64 conns> p99_ms=<..> ceiling_rps=<..> http_rps=<..> vs_ceiling=<..> vs_http=<..>
        key_rps=<with an API key and the rate limit> metrics_on_vs_off=<rps ratio> control=<..> errors=<n>
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")

from workers.config import PipelineSettings  # noqa: E402
from workers.local.embedded import free_port  # noqa: E402
from workers.local.stack import Child, LocalStack  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
UVICORN = ["--no-access-log", "--log-level", "warning"]


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@dataclass
class Result:
    scenario: str
    target: str
    connections: int
    stats: dict[str, float]
    cpu: dict[str, float] = field(default_factory=dict)
    cards_per_request: int = 1


def load(
    url: str, body: str, connections: int, duration: float, procs: list[Child], headers: list[str] | None = None
) -> tuple[dict, dict]:
    before = {c.name: cpu_seconds(c.process.pid) for c in procs}
    extra = [arg for h in headers or [] for arg in ("-H", h)]
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", url, "--body", body,
         "-c", str(connections), "-d", str(duration), *extra],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    cpu = {c.name: round(cpu_seconds(c.process.pid) - before[c.name], 2) for c in procs}
    cpu["loadgen"] = stats["client_cpu_s"]
    return stats, cpu


async def _create_key(url: str) -> str:
    import redis.asyncio as aioredis

    from contracts.api_keys import ApiKeyStore

    client = aioredis.Redis.from_url(url)
    try:
        key, _ = await ApiKeyStore(client).create("bench", rate_per_s=1_000_000)
        return key
    finally:
        await client.aclose()


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up")


def prepare(data_dir: Path, cards: int, days: int) -> None:
    from workers.pipeline.run import run_all

    settings = PipelineSettings(data_dir=data_dir, demo_cards=cards, demo_days=days)
    run_all(settings, "demo", date(2026, 1, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the 64-connection comparison")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    parser.add_argument("--cards", type=int, default=None, help="synthetic demo size (default 200, --quick 50)")
    parser.add_argument("--days", type=int, default=None, help="default 365, --quick 180")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse a data dir that has a champion")
    opts = parser.parse_args()
    opts.cards = opts.cards or (50 if opts.quick else 200)
    opts.days = opts.days or (180 if opts.quick else 365)

    tmp = tempfile.TemporaryDirectory(prefix="pokewatch-serve-")
    data_dir = opts.data_dir or Path(tmp.name) / "data"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if opts.data_dir is None:
        print(f"training a champion on the synthetic demo {opts.cards} x {opts.days}...", flush=True)
        prepare(data_dir, opts.cards, opts.days)
    tracking = {"MLFLOW_TRACKING_URI": f"sqlite:///{(data_dir / 'mlflow.db').resolve()}"}

    stack = LocalStack(data_dir, port=free_port(), model_replicas=2, redis_port=0, extra_env=tracking)
    results: list[Result] = []
    try:
        stack.start(timeout=180)
        card = httpx.get(f"{stack.url}/cards", params={"page_size": 100}).json()["items"]
        body = json.dumps({"card_id": card[0]["card_id"]})
        batch = json.dumps({"items": [{"card_id": c["card_id"]} for c in card[:100]]})

        extra: list[Child] = []
        ceiling_port = free_port()
        here = {"PYTHONPATH": str(ROOT)}
        extra.append(stack.spawn("ceiling", [sys.executable, "-m", "uvicorn", "bench.ceiling:app",
                                             "--port", str(ceiling_port), *UVICORN], here))  # fmt: skip
        ports = {role: free_port() for role in ("model", "decision", "gateway")}
        for role in ("model", "decision", "gateway"):
            env = {
                **here,
                "HTTP_CHAIN_ROLE": role,
                "MODEL_URL": f"http://127.0.0.1:{ports['model']}",
                "DECISION_URL": f"http://127.0.0.1:{ports['decision']}",
            }
            args = [sys.executable, "-m", "uvicorn", "bench.http_chain:create_app", "--factory",
                    "--port", str(ports[role]), *UVICORN]  # fmt: skip
            extra.append(stack.spawn(f"http-{role}", args, env))
        wait_http(f"http://127.0.0.1:{ceiling_port}/docs")
        for role in ports:
            wait_http(f"http://127.0.0.1:{ports[role]}/docs")
        # A second gateway with API keys on: every request is checked against
        # its key (cached) and the shared rate-limit script (one EVALSHA), at a
        # rate high enough never to throttle; it measures the edge's cost.
        auth_port = free_port()
        key = asyncio.run(_create_key(stack.broker_url))
        auth_env = {"POKEWATCH_AUTH_REQUIRED": "true", "POKEWATCH_RATE_LIMIT_PER_S": "1000000",
                    "POKEWATCH_RATE_LIMIT_BURST": "100000"}  # fmt: skip
        extra.append(stack.spawn_gateway("gateway-auth", port=auth_port, env=auth_env))
        wait_http(f"http://127.0.0.1:{auth_port}/health")
        streams_procs = [c for c in stack.children if c not in extra]
        http_procs = [c for c in extra if c.name.startswith("http-")]
        ceiling_procs = [c for c in extra if c.name == "ceiling"]
        urls = {
            "streams": f"{stack.url}/fair_price",
            "ceiling": f"http://127.0.0.1:{ceiling_port}/fair_price",
            "http": f"http://127.0.0.1:{ports['gateway']}/fair_price",
        }
        workers = [c for c in streams_procs if c.name != "gateway"]
        auth_procs = [*workers, next(c for c in extra if c.name == "gateway-auth")]
        urls["streams+key"] = f"http://127.0.0.1:{auth_port}/fair_price"
        procs = {"streams": streams_procs, "ceiling": ceiling_procs, "http": http_procs, "streams+key": auth_procs}
        headers = {"streams+key": [f"X-API-Key: {key}"]}
        # Warm every path (JIT-free Python still has caches, pools and lazy imports).
        for target in urls:
            load(urls[target], body, 16, 1.0, procs[target], headers.get(target))

        def run(scenario: str, target: str, conns: int, payload: str = body, cards: int = 1, path: str = "") -> None:
            stats, cpu = load(urls[target] + path, payload, conns, opts.duration, procs[target], headers.get(target))
            results.append(Result(scenario, target, conns, stats, cpu, cards))
            print(
                f"{scenario:<34} {target:<8} c={conns:<4} {stats['rps']:>9,.0f} req/s  "
                f"p50 {stats['p50_ms']:>7.2f}  p95 {stats['p95_ms']:>7.2f}  p99 {stats['p99_ms']:>7.2f} ms  "
                f"errors {stats['errors'] + stats['non_2xx']}  cpu {cpu}"
                + (f"  first error: {stats['first_error']}" if "first_error" in stats else ""),
                flush=True,
            )

        run("POST /fair_price, 64 conns", "streams", 64)
        run("POST /fair_price, 64 conns", "ceiling", 64)
        run("POST /fair_price, 64 conns", "http", 64)
        run("POST /fair_price, 64 conns", "streams+key", 64)
        # The cost of metrics: two fresh, identical stacks (own server, gateway,
        # workers), one with POKEWATCH_METRICS=false, loaded in turn; a third
        # identical one with metrics on is the control (how much two stacks
        # differ with nothing changed).
        twins: list[LocalStack] = []
        try:
            for name, metrics in (("metrics-on", "true"), ("metrics-off", "false"), ("control", "true")):
                twin = LocalStack(
                    Path(tmp.name) / name,
                    port=free_port(),
                    model_replicas=2,
                    redis_port=0,
                    extra_env={**tracking, "POKEWATCH_METRICS": metrics},
                )
                twins.append(twin)
                twin.start(timeout=180)
                urls[name] = f"{twin.url}/fair_price"
                procs[name] = list(twin.children)
                load(urls[name], body, 64, opts.duration, procs[name])  # warm
            for i in range(1, 4):
                for name in ("metrics-on", "metrics-off", "control"):
                    run(f"POST /fair_price, 64 conns, {name} #{i}", name, 64)
        finally:
            for twin in twins:
                twin.stop()
        if not opts.quick:
            for conns in (1, 16, 256):
                run(f"POST /fair_price, {conns} conns", "streams", conns)
            run("POST /fair_price, 1 conn", "ceiling", 1)
            run("POST /fair_price, 1 conn", "http", 1)
            run("POST /fair_price/batch x100, 16 conns", "streams", 16, batch, 100, path="/batch")
            for c in stack.children:
                if c.name.startswith("model-"):
                    print(f"RSS {c.name}: {rss_mb(c.process.pid):.0f} MB", flush=True)
            second = next(c for c in stack.children if c.name == "model-2")
            second.process.terminate()
            second.process.wait(30)
            procs["streams"] = [c for c in procs["streams"] if c is not second]
            stack.children.remove(second)
            stack.model_replicas = 1
            stack.wait_ready(30, models=1)  # a stopped replica removes its own heartbeat
            run("POST /fair_price, 64 conns, 1 replica", "streams", 64)
    finally:
        stack.stop()
        tmp.cleanup()

    by = {(r.scenario, r.target): r for r in results}
    streams = by[("POST /fair_price, 64 conns", "streams")].stats
    ceiling = by[("POST /fair_price, 64 conns", "ceiling")].stats
    http = by[("POST /fair_price, 64 conns", "http")].stats
    keyed = by[("POST /fair_price, 64 conns", "streams+key")].stats
    print(f"API key + rate limit: {keyed['rps']:,.0f} req/s, {keyed['rps'] / streams['rps']:.2f} of the open gateway's")
    figures = {
        t: sorted(r.stats["rps"] for r in results if r.target == t) for t in ("metrics-on", "metrics-off", "control")
    }
    metrics_ratio = statistics.median(figures["metrics-on"]) / statistics.median(figures["metrics-off"])
    control_ratio = statistics.median(figures["control"]) / statistics.median(figures["metrics-on"])
    for name, rps in figures.items():
        print(f"{name}: {', '.join(f'{x:,.0f}' for x in rps)} req/s")
    print(f"metrics on/off (medians): {metrics_ratio:.3f}; control/on, nothing changed: {control_ratio:.3f}")
    batch_result = by.get(("POST /fair_price/batch x100, 16 conns", "streams"))
    if batch_result:
        print(f"batch: {batch_result.stats['rps'] * 100:,.0f} card quotes/s")
    errors = sum(
        r.stats["errors"] + r.stats["non_2xx"] for r in results if r.target in ("streams", "streams+key", "no-metrics")
    )
    print(
        f"SUMMARY rps={streams['rps']:.0f} p99_ms={streams['p99_ms']:.1f} ceiling_rps={ceiling['rps']:.0f} "
        f"http_rps={http['rps']:.0f} vs_ceiling={streams['rps'] / ceiling['rps']:.2f} "
        f"vs_http={streams['rps'] / http['rps']:.2f} key_rps={keyed['rps']:.0f} "
        f"metrics_on_vs_off={metrics_ratio:.3f} control={control_ratio:.3f} errors={errors}"
    )


if __name__ == "__main__":
    main()
