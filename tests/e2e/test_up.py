"""`pokewatch up` from an empty data dir: trains a first champion, serves, and Ctrl-C stops everything."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from workers.local.embedded import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_up_brings_the_whole_stack_up_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "POKEWATCH_DATA_DIR": str(tmp_path / "data"),
        "POKEWATCH_DEMO_CARDS": "30",
        "POKEWATCH_DEMO_DAYS": "150",
        "COLUMNS": "200",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("REDIS_URL", None)
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "up", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # As from a shell that ignores SIGINT for background jobs: Ctrl-C must still stop it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    try:
        deadline = time.monotonic() + 300
        # The last line of the start-up banner: everything above it has been written.
        while "Ctrl-C stops every process" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.5)
        text = log.read_text()
        assert "no champion model yet" in text and "promoted to champion" in text
        assert "curl" in text
        assert "authentication is off" in text, "the open local default says so"
        assert "docs: `make docs` serves the documentation site" in text and f"{port}/ui" in text
        broker_port = int(re.search(r"broker: redis://127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]

        card = httpx.get(f"http://127.0.0.1:{port}/cards", params={"page_size": 1}).json()["items"][0]["card_id"]
        resp = httpx.post(f"http://127.0.0.1:{port}/fair_price", content=f'{{"card_id": "{card}"}}', timeout=30)
        assert resp.status_code == 200 and resp.json()["signal"] in {"BUY", "SELL", "HOLD"}
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
        assert sorted(r["replica_id"] for r in health["replicas"] if r["live"]) == [
            "decision-1",
            "model-1",
            "model-2",
            "notifier-1",
        ]
        assert (tmp_path / "data" / "redis" / "appendonlydir").exists(), "the broker keeps its data in the data dir"
        # The Prometheus configuration it writes names every process's metrics, and they answer.
        scrape = (tmp_path / "data" / "prometheus.yml").read_text()
        targets = re.findall(r"127\.0\.0\.1:\d+", scrape)
        assert len(targets) == 6 and "job_name: exporter" in scrape, scrape  # gateway, 2 models, decision, notifier
        for target in targets:
            assert "# TYPE" in httpx.get(f"http://{target}/metrics", timeout=5).text, target
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    assert code == 0, log.read_text()
    assert "stopped" in log.read_text()
    assert _closed(port) and _closed(broker_port)

    # `pokewatch up --challenger VERSION`: the same stack with a challenger replica shadow-scoring
    # a second version; users are answered by the champion only.
    register = subprocess.run(
        [sys.executable, "-m", "workers.cli", "pipeline", "register", "--source", "demo"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert register.returncode == 0 and '"version": "2"' in register.stdout, register.stdout + register.stderr
    log = tmp_path / "up-challenger.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "up", "--port", str(port), "--challenger", "2"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while "Ctrl-C stops every process" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.5)
        assert "challenger: version 2" in log.read_text()
        for _ in range(20):
            resp = httpx.post(f"http://127.0.0.1:{port}/fair_price", json={"card_id": card}, timeout=30)
            assert resp.status_code == 200 and resp.json()["model_version"] == "1"
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
        assert health["challenger"]["live"] == 1 and health["challenger"]["versions"] == ["2"], health
        broker = re.search(r"broker: (redis://\S+)", log.read_text()).group(1)  # type: ignore[union-attr]
        import redis

        from contracts import keys

        deadline = time.monotonic() + 30
        while not redis.Redis.from_url(broker).xlen(keys.SHADOW_STREAM) and time.monotonic() < deadline:
            time.sleep(0.3)
        shadow = redis.Redis.from_url(broker).xrange(keys.SHADOW_STREAM)
        assert shadow and all(b'"model_version":"2"' in f[b"payload"] for _, f in shadow)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    assert code == 0, log.read_text()
