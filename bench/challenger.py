"""Benchmark: what a challenger replica costs users, same stack, same run.

Starts, on 127.0.0.1 only, the PokeWatch stack (embedded server, gateway, 2
model replicas, a decision worker) on a champion trained on the synthetic
demo, and registers a second version as the challenger. Then it loads
`POST /fair_price` from a separate process (bench/loadgen.py) in alternating
rounds: without a challenger replica, with one (it reads every request in
group `shadow` and writes pokewatch:shadow-quotes), and so on, `--rounds`
times each, so drift of the machine falls on both sides alike. It prints,
per round and as medians: requests/s, p50/p99 latency, errors, the CPU
seconds each process used; the spread between the rounds without a
challenger is the noise the difference is measured against. Then the shadow
stream's length against its cap.

    python bench/challenger.py [--duration 8] [--rounds 3] [--connections 64]

Last line, exactly:
SUMMARY rps_without=<median> rps_with=<median> rps_ratio=<with/without> p99_without_ms=<..> p99_with_ms=<..>
        p99_ratio=<with/without> noise_rps=<max/min of the rounds without> noise_p99=<..> errors=<n>
        shadow_len=<XLEN> shadow_cap=<POKEWATCH_SHADOW_MAXLEN>
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")

from bench.serve import load  # noqa: E402
from workers.config import PipelineSettings  # noqa: E402
from workers.local.embedded import free_port  # noqa: E402
from workers.local.stack import Child, LocalStack  # noqa: E402

DAY = date(2026, 1, 2)
SHADOW_CAP = 20_000


def prepare(data_dir: Path) -> tuple[str, str]:
    """A champion from the demo pipeline and a second registered version of the same day."""
    from workers.pipeline.run import register, run_all

    settings = PipelineSettings(data_dir=data_dir)
    summary = run_all(settings, "demo", DAY)
    champion = str(summary["steps"]["register"]["version"])
    challenger = str(register(settings, "demo", DAY)["version"])
    return champion, challenger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    opts = parser.parse_args()

    import redis

    from contracts import keys
    from workers import registry
    from workers.pipeline.rollout import make_challenger

    with tempfile.TemporaryDirectory(prefix="pokewatch-bench-challenger-") as tmp:
        data_dir = Path(tmp) / "data"
        tracking = f"sqlite:///{(data_dir / 'mlflow.db').resolve()}"
        os.environ["MLFLOW_TRACKING_URI"] = tracking
        print("preparing: the demo pipeline, then a second version ...", flush=True)
        champion, challenger = prepare(data_dir)
        settings = PipelineSettings(data_dir=data_dir)
        stack = LocalStack(
            data_dir,
            port=free_port(),
            extra_env={
                "MLFLOW_TRACKING_URI": tracking,
                "POKEWATCH_SCAN": "false",
                "POKEWATCH_SHADOW_MAXLEN": str(SHADOW_CAP),
                "POKEWATCH_CHAMPION_POLL_S": "2",
            },
        )
        stack.start(timeout=180)
        try:
            r = redis.Redis.from_url(stack.broker_url)
            make_challenger(settings, r, challenger)
            card = httpx.get(f"{stack.url}/cards", params={"page_size": 1}).json()["items"][0]["card_id"]
            body = json.dumps({"card_id": card})
            url = f"{stack.url}/fair_price"
            load(url, body, opts.connections, 2.0, [])  # warm up
            rounds: dict[str, list[dict]] = {"without": [], "with": []}
            shadow = None
            for i in range(opts.rounds):
                for side in ("without", "with"):
                    if side == "with":
                        shadow = stack.spawn_challenger(f"challenger-{i}")
                        wait_serving(stack, challenger)
                    procs = [c for c in stack.children if c.process.poll() is None]
                    if stack.redis is not None and stack.redis.process is not None:  # the broker's CPU too
                        procs.append(Child("redis", stack.redis.process, Path(os.devnull)))
                    stats, cpu = load(url, body, opts.connections, opts.duration, procs)
                    stats["cpu"] = cpu
                    rounds[side].append(stats)
                    print(
                        f"round {i + 1} {side:>7} a challenger: {stats['rps']:8.1f} req/s  "
                        f"p50 {stats['p50_ms']:6.1f} ms  p99 {stats['p99_ms']:6.1f} ms  errors {stats['errors']}  "
                        f"cpu {json.dumps(cpu)}",
                        flush=True,
                    )
                    if side == "with" and shadow is not None:
                        shadow.process.terminate()
                        shadow.process.wait(30)
                        stack.children.remove(shadow)
            length = r.xlen(keys.SHADOW_STREAM)
            assert registry.champion_version(settings) == champion
        finally:
            stack.stop()

    def med(side: str, key: str) -> float:
        return statistics.median(s[key] for s in rounds[side])

    rps_without, rps_with = med("without", "rps"), med("with", "rps")
    p99_without, p99_with = med("without", "p99_ms"), med("with", "p99_ms")
    bare = rounds["without"]
    noise_rps = max(s["rps"] for s in bare) / min(s["rps"] for s in bare)
    noise_p99 = max(s["p99_ms"] for s in bare) / min(s["p99_ms"] for s in bare)
    errors = sum(s["errors"] for side in rounds.values() for s in side)
    print(
        f"medians: without {rps_without:.1f} req/s p99 {p99_without:.1f} ms; with {rps_with:.1f} req/s "
        f"p99 {p99_with:.1f} ms; the rounds without differ by up to {noise_rps:.2f}x (req/s), "
        f"{noise_p99:.2f}x (p99)"
    )
    print(f"shadow stream: {length} entries, cap {SHADOW_CAP} (approximate trimming)")
    print(
        f"SUMMARY rps_without={rps_without:.1f} rps_with={rps_with:.1f} rps_ratio={rps_with / rps_without:.3f} "
        f"p99_without_ms={p99_without:.1f} p99_with_ms={p99_with:.1f} p99_ratio={p99_with / p99_without:.3f} "
        f"noise_rps={noise_rps:.3f} noise_p99={noise_p99:.3f} errors={errors} "
        f"shadow_len={length} shadow_cap={SHADOW_CAP}"
    )


def wait_serving(stack: LocalStack, version: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = httpx.get(f"{stack.url}/health").json()
        if (health.get("challenger") or {}).get("versions") == [version]:
            return
        time.sleep(0.3)
    raise TimeoutError(f"no challenger replica serving {version}")


if __name__ == "__main__":
    main()
