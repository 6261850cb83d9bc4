"""The docs' "Running the DAG in a local Airflow" block (docs/operators/dag.md), run as written."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import redis

from contracts import keys
from tests.cli.documented import ROOT, one_block
from workers.local.embedded import free_port

pytestmark = pytest.mark.slow
DAG_PAGE = ROOT / "docs" / "operators" / "dag.md"


def _readme_block() -> list[str]:
    """The docs' block that runs the DAG in a local Airflow (docs/operators/dag.md), line by line."""
    block = one_block("bash", "airflow dags test")
    return [line.split("  #")[0].rstrip() for line in block.strip().splitlines()]


def _the_scheduled_run_maps_partitions_in_parallel(db: Path) -> None:
    """The scheduler's run succeeds, and its two partitions' mapped tasks ran side by side."""
    deadline = time.monotonic() + 600
    run: tuple | None = None
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
            run = con.execute(
                "SELECT run_id, state FROM dag_run WHERE dag_id = 'pokewatch_ml_pipeline' AND run_type = 'scheduled'"
            ).fetchone()
            if run and run[1] in ("success", "failed"):
                tis = con.execute(
                    "SELECT task_id, map_index, state, start_date, end_date FROM task_instance WHERE run_id = ?",
                    (run[0],),
                ).fetchall()
                break
        time.sleep(3)
    assert run is not None and run[1] == "success", run
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for task_id, index, state, start, end in tis:
        assert state in ("success", "skipped"), (task_id, index, state)
        if index >= 0:
            spans.setdefault(task_id, []).append((datetime.fromisoformat(start), datetime.fromisoformat(end)))
    assert {t: len(v) for t, v in spans.items()} == {"collect": 2, "validate": 2, "features": 2, "price": 2}
    overlapping = [t for t, ((s0, e0), (s1, e1)) in spans.items() if max(s0, s1) < min(e0, e1)]
    print(f"mapped steps whose two partitions overlapped in time: {overlapping}")
    assert overlapping, spans


@pytest.mark.timeout(1500)
def test_the_readme_airflow_block_runs_the_dag_and_standalone_serves(tmp_path: Path, redis_server) -> None:
    lines = _readme_block()
    assert lines[-3:] == [
        "airflow db migrate",
        "airflow dags test pokewatch_ml_pipeline 2026-01-02",
        "airflow standalone",
    ]
    # A working directory laid out like the checkout: the documented $PWD paths resolve into it.
    (tmp_path / ".venv").symlink_to(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")))
    (tmp_path / "dags").symlink_to(ROOT / "dags")
    host_port = redis_server.url.rsplit("/", 1)[0].removeprefix("redis://")
    exports = [re.sub(r"redis://127\.0\.0\.1:6379\?db=0", f"redis://{host_port}?db=2", line) for line in lines[:-3]]
    assert any(f"{host_port}?db=2" in e for e in exports), "the block's broker connection was not found"
    env = {**os.environ, "POKEWATCH_DEMO_CARDS": "30", "POKEWATCH_DEMO_DAYS": "150", "POKEWATCH_PARTITIONS": "2"}
    env.pop("MLFLOW_TRACKING_URI", None)
    r = redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/2")
    r.flushdb()

    script = "set -e\n" + "\n".join([*exports, lines[-3], lines[-2]])
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    events = [json.loads(f[b"payload"]) for _, f in r.xrange(keys.MODEL_EVENTS_STREAM)]
    assert [(e["kind"], e["version"]) for e in events] == [("published", "1")], run.stdout[-2000:]

    port = free_port()
    env["AIRFLOW__API__PORT"] = str(port)
    # The executor's task processes report to the API server's execution API, on that port.
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
    standalone = subprocess.Popen(
        ["bash", "-c", "\n".join([*exports, "exec " + lines[-1]])],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        health: dict = {}
        while time.monotonic() < deadline and standalone.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3).json()
                if health.get("scheduler", {}).get("status") == "healthy":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(2)
        assert health.get("metadatabase", {}).get("status") == "healthy", health
        assert health.get("scheduler", {}).get("status") == "healthy", health
        # The documented `airflow dags test` created the DAG paused: unpause it, and the scheduler
        # runs its latest interval at once.
        unpause = subprocess.run(
            ["bash", "-c", "\n".join([*exports, "airflow dags unpause pokewatch_ml_pipeline"])],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert unpause.returncode == 0, unpause.stdout + unpause.stderr
        _the_scheduled_run_maps_partitions_in_parallel(tmp_path / ".pokewatch" / "airflow" / "airflow.db")
        # The documented trigger line, against the standalone Airflow's database.
        trigger_line = re.search(r"`(airflow dags trigger [^`]+)`", DAG_PAGE.read_text()).group(1)  # type: ignore[union-attr]
        trigger = subprocess.run(
            ["bash", "-c", "\n".join([*exports, trigger_line])],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert trigger.returncode == 0 and "queued" in trigger.stdout, trigger.stdout + trigger.stderr
    finally:
        os.killpg(standalone.pid, signal.SIGTERM)
        try:
            standalone.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(standalone.pid, signal.SIGKILL)
