"""Real processes: an embedded Redis server, uvicorn, model and decision workers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from workers.local.embedded import free_port
from workers.local.stack import LocalStack


def db_url(redis_server, db: int) -> str:
    return redis_server.url.rsplit("/", 1)[0] + f"/{db}"


def make_stack(redis_server, data_dir: Path, db: int, **env: str) -> LocalStack:
    """A stack on its own Redis database (isolated keys), sharing the session's server."""
    import redis

    url = db_url(redis_server, db)
    redis.Redis.from_url(url).flushdb()
    return LocalStack(
        data_dir,
        port=free_port(),
        redis_url=url,
        model_replicas=2,
        extra_env={
            "POKEWATCH_HEARTBEAT_S": "0.5",
            "POKEWATCH_REPLICA_TTL_S": "3",
            # The registry of this data dir, explicitly: never one inherited from the test process.
            "MLFLOW_TRACKING_URI": f"sqlite:///{(data_dir / 'mlflow.db').resolve()}",
            **env,
        },
    )


@contextlib.contextmanager
def running_stack(redis_server, data_dir: Path, db: int, **env: str) -> Iterator[LocalStack]:
    """A started stack (make_stack), stopped on leaving."""
    s = make_stack(redis_server, data_dir, db, **env)
    s.start(timeout=180)
    try:
        yield s
    finally:
        s.stop()


def scan_decisions(stack: LocalStack, version: str = "1", cards: int = 40, timeout: float = 60) -> list[dict]:
    """The decisions of the market scan of `version` (workers.serving.scan), once all `cards` are in."""
    import json
    import time

    import redis

    from contracts import keys

    r = redis.Redis.from_url(stack.broker_url)
    deadline = time.monotonic() + timeout
    while True:
        decided = (json.loads(f[b"payload"]) for _, f in r.xrange(keys.SIGNALS_STREAM))
        found = [d for d in decided if d["request_id"].startswith(f"scan-{version}-")]
        if len(found) >= cards or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.fixture(scope="module")
def stack(redis_server, champion_data_dir: Path):
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    s = make_stack(redis_server, champion_data_dir, db=1)
    s.start(timeout=180)
    yield s
    codes = s.stop()
    # Workers drain and exit 0 on SIGTERM; uvicorn re-raises the signal (-15) after a clean shutdown.
    assert all(code in (0, -15) for code in codes.values()), codes


@pytest.fixture(scope="module")
def client(stack: LocalStack):
    with httpx.Client(base_url=stack.url, timeout=30) as c:
        yield c


def register_rule_model(settings, day, prices: Path):
    """Run the pipeline's steps on `prices` with the original rule as the model (fair = mean of the last
    3 prices, fixed thresholds: its signals follow from the prices alone, so a known move gives a known
    signal) and register a version. Returns the version and the run's record (what the DAG's last
    task pushes to `pokewatch:pipeline-runs`)."""
    import time

    from workers.pipeline import register as gate
    from workers.pipeline import run as steps
    from workers.pipeline.models import RollingMeanModel
    from workers.pipeline.runs import compact, run_record

    done: dict[str, dict] = {}

    def timed(name: str, fn, *args) -> dict:
        started = time.monotonic()
        out = fn(*args)
        done[name] = compact(name, out, time.monotonic() - started)
        return out

    timed("collect", steps.collect, settings, "file", day, prices)
    timed("validate", steps.validate, settings, "file", day)
    timed("features", steps.features, settings, "file")
    timed("train", steps.train, settings, "file", day)
    timed("evaluate", steps.evaluate, settings, "file", day)
    gate.save_candidate(RollingMeanModel(), settings.data_dir / "candidates" / "source=file" / str(day) / "model.pkl")
    timed("price", steps.price, settings, "file", day)  # the served rows, priced by the rule model
    decision = timed("register", steps.register, settings, "file", day)
    return str(decision["version"]), run_record("file", day, done)


def two_days_of_prices(directory: Path, cards: int, day, moves: dict[str, float] | None = None) -> tuple[Path, Path]:
    """`day1.csv`: a synthetic history to `day`; `day2.csv`: the same plus one more day on which every
    price stays, except the cards in `moves` (multiplied by their factor)."""
    import pandas as pd

    from workers.pipeline.sources.demo import DemoSource

    before = DemoSource(cards, 240).fetch(day)
    last = before.sort_values("date").groupby("card_id").tail(1).copy()
    last["date"] = (pd.to_datetime(last["date"]) + pd.Timedelta(days=1)).dt.strftime("%Y-%m-%d")
    for card, factor in (moves or {}).items():
        last.loc[last["card_id"] == card, "market_price"] *= factor
    day1, day2 = directory / "day1.csv", directory / "day2.csv"
    before.to_csv(day1, index=False)
    pd.concat([before, last]).to_csv(day2, index=False)
    return day1, day2
