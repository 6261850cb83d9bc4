"""A real Prometheus scrapes the local stack (gateway, two model replicas, a decision worker, the exporter).

After a known load, PromQL gives the exact request count, a non-zero p99, the lag of a group nobody
consumes (the notifier's, with no notifier running) and each replica's model version; after a hot
reload every replica's version gauge moves; every query of the shipped dashboard returns data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import date
from pathlib import Path

import httpx
import pytest
import redis

from contracts import keys
from tests.deploy.test_monitoring import dashboard_queries
from tests.e2e.conftest import make_stack, register_rule_model, two_days_of_prices
from workers.config import PipelineSettings
from workers.local.embedded import free_port
from workers.pipeline.runs import record

pytestmark = pytest.mark.slow

DAY1, DAY2 = date(2026, 1, 2), date(2026, 1, 3)
CARDS = 30
REQUESTS = 150


class Prometheus:
    def __init__(self, config: str, directory: Path) -> None:
        self.port = free_port()
        (directory / "prometheus.yml").write_text(config)
        self.log = directory / "prometheus.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    shutil.which("prometheus") or "prometheus",
                    f"--config.file={directory / 'prometheus.yml'}",
                    f"--storage.tsdb.path={directory / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(self.log.read_text()[-2000:])

    def query(self, promql: str) -> list[dict]:
        resp = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10).json()
        assert resp["status"] == "success", (promql, resp)
        return list(resp["data"]["result"])

    def wait(self, promql: str, check, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        result: list[dict] = []
        while time.monotonic() < deadline:
            result = self.query(promql)
            if check(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"{promql}: {result}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def test_prometheus_scrapes_counts_latency_lag_and_versions(redis_server, tmp_path: Path) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus not installed (apt-get install prometheus; .ci/run does)")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    data_dir = tmp_path / "data"
    settings = PipelineSettings(data_dir=data_dir, max_train_rows=100_000)
    day1, day2 = two_days_of_prices(tmp_path, CARDS, DAY1)
    v1, run = register_rule_model(settings, DAY1, day1)
    from workers.pipeline.lifecycle import judge

    judge(settings, "file", DAY1, None)  # the champion's first forecasts: scored once day 2's prices arrive

    stack = make_stack(redis_server, data_dir, db=13)
    stack.metrics = True
    stack.start(timeout=180)
    prometheus = None
    try:
        r = redis.Redis.from_url(stack.broker_url)
        record(r, run)  # the run's record, as the DAG's last task pushes it
        prometheus = Prometheus(stack.prometheus_config(interval="1s"), tmp_path)
        jobs = prometheus.wait("up", lambda res: len(res) == 5 and all(x["value"][1] == "1" for x in res))
        assert sorted(x["metric"]["job"] for x in jobs) == ["decision", "exporter", "gateway", "model", "model"]

        cards = [c["card_id"] for c in httpx.get(f"{stack.url}/cards", params={"page_size": CARDS}).json()["items"]]
        with httpx.Client(base_url=stack.url, timeout=30) as client:
            for i in range(REQUESTS):
                assert client.post("/fair_price", json={"card_id": cards[i % len(cards)]}).status_code == 200
        r.xadd(keys.PREDICT_STREAM, {keys.PAYLOAD_FIELD: "not a request"})  # one dead letter, kind `invalid`

        count = 'sum(pokewatch_gateway_requests_total{route="/fair_price",method="POST",status="200"})'
        prometheus.wait(count, lambda res: res and float(res[0]["value"][1]) == REQUESTS)
        buckets = 'pokewatch_gateway_request_duration_seconds_bucket{route="/fair_price"}'
        # Over the buckets' cumulative counts, not a rate: when the whole load fits between two
        # scrapes every sample of the series is the same, and a rate of it stays 0/0 (NaN).
        quantile = f"histogram_quantile(0.99, sum by (le) ({buckets}))"
        p99 = float(prometheus.wait(quantile, lambda res: len(res) == 1 and res[0]["value"][1] != "NaN")[0]["value"][1])
        assert 0 < p99 < 10
        # Nobody consumes the notifier's group here: its lag is every price update made.
        updates = r.xlen(keys.PRICE_UPDATES_STREAM)
        lag = f'pokewatch_stream_group_lag_entries{{stream="{keys.PRICE_UPDATES_STREAM}",group="notifier"}}'
        prometheus.wait(lag, lambda res: res and float(res[0]["value"][1]) == updates and updates > 0)
        versions = prometheus.wait(
            'pokewatch_worker_model_version{job="model"}',
            lambda res: len(res) == 2 and {x["value"][1] for x in res} == {v1},
        )
        assert {x["metric"]["instance"] for x in versions} == set(stack.scrape_targets()["model"])
        assert {x["metric"]["replica"] for x in prometheus.query('pokewatch_replica_info{role="model"}')} == {
            "model-1",
            "model-2",
        }

        # The invalid entry: dead-lettered by a model replica, counted by kind of reason.
        dead = f'pokewatch_worker_dead_letters_total{{stream="{keys.PREDICT_STREAM}",reason="invalid"}}'
        prometheus.wait(f"sum({dead})", lambda res: res and float(res[0]["value"][1]) == 1)
        v2, _ = register_rule_model(settings, DAY2, day2)
        # A challenger judged once: the lifecycle panels have their series (each version's scores,
        # the rule's dates, a decision, the shadow group's lag).
        from workers.pipeline.rollout import make_challenger

        make_challenger(settings, r, v2)
        judge(settings, "file", DAY2, r)
        prometheus.wait('pokewatch_lifecycle_decision_timestamp_seconds{action="hold"}', lambda res: len(res) == 1)
        prometheus.wait('pokewatch_stream_group_lag_entries{group="shadow"}', lambda res: len(res) == 1)
        prometheus.wait(f'pokewatch_realized_metric{{metric="mape",version="{v1}"}}', lambda res: len(res) == 1)
        missing = []
        for promql in dashboard_queries():
            if not prometheus.query(promql):
                missing.append(promql)
        assert missing == [], f"dashboard queries without data: {missing}"

        from workers.model_events import publish_version

        publish_version(PipelineSettings(data_dir=data_dir), r, v2, make_champion=True)
        moved = prometheus.wait(
            'pokewatch_worker_model_version{job="model"}',
            lambda res: len(res) == 2 and {x["value"][1] for x in res} == {v2},
            timeout=60,
        )
        print(
            f"\nPrometheus: {REQUESTS} requests counted, p99 {p99 * 1000:.1f} ms, notifier lag {updates}, "
            f"versions {v1} -> {v2} on {len(moved)} replicas"
        )
    finally:
        if prometheus is not None:
            prometheus.stop()
        stack.stop()
