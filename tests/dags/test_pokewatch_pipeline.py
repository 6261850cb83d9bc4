"""The Airflow DAG: it parses cleanly without touching the network, and a real run hot-reloads every replica."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

import httpx
import pandas as pd
import pytest
import redis

from contracts import keys
from contracts.messages import PipelineRun
from tests.e2e.conftest import make_stack

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
DAY = date(2026, 1, 2)


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An initialised Airflow metadata DB in a temporary AIRFLOW_HOME, as env vars."""
    home = tmp_path_factory.mktemp("airflow")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=180,
    )
    return env


PARSE_DAG = """
import json, socket
opened = []
real_connect = socket.socket.connect
def spy(self, address):
    opened.append(str(address))
    return real_connect(self, address)
socket.socket.connect = spy
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=DAGS)
socket.socket.connect = real_connect
dag = bag.dags["pokewatch_ml_pipeline"]
print(json.dumps({
    "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "opened": opened,
    "dag_ids": sorted(bag.dags),
    "tags": sorted(dag.tags),
    "catchup": dag.catchup,
    "schedule": str(dag.schedule),
    "doc": dag.doc_md or "",
    "retries": {t.task_id: t.retries for t in dag.tasks},
    "retry_delay_s": {t.task_id: t.retry_delay.total_seconds() for t in dag.tasks},
    "downstream": {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks},
    "mapped": sorted(t.task_id for t in dag.tasks if "Mapped" in type(t).__name__),
}))
"""


def test_dag_parses_with_its_schedule_retries_and_no_connection(airflow_home) -> None:
    # No broker, no MLflow server: parsing must not try to reach anything.
    env = {**os.environ, **airflow_home, "AIRFLOW_CONN_REDIS_DEFAULT": "redis://127.0.0.1:1/0"}
    env.pop("REDIS_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", PARSE_DAG.replace("DAGS", repr(str(DAGS)))],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["errors"] == {}
    assert info["dag_ids"] == ["pokewatch_ml_pipeline"]
    assert info["opened"] == [], f"parsing the DAG opened connections: {info['opened']}"
    assert {"pokewatch", "ml"} <= set(info["tags"])
    assert info["catchup"] is False
    assert info["schedule"] == "0 2 * * *"
    assert "publish" in info["doc"]
    assert all(n >= 2 for n in info["retries"].values()), info["retries"]
    assert set(info["retry_delay_s"].values()) == {300.0}
    order = ["plan", "collect", "validate", "features", "context", "train", "evaluate", "register", "publish"]
    for upstream, downstream in itertools.pairwise(order):
        assert downstream in info["downstream"][upstream]
    # Pricing the partitions needs the trained model, and runs beside the evaluation.
    assert {"price", "evaluate"} <= set(info["downstream"]["train"])
    assert "register" in info["downstream"]["price"]
    assert info["mapped"] == ["collect", "features", "price", "validate"]


def _weak_champion(data_dir: Path) -> str:
    """Register the original rule (rolling mean of 3) as champion: a model the DAG's candidate beats."""
    from workers.config import PipelineSettings
    from workers.pipeline import register as gate
    from workers.pipeline import run as steps
    from workers.pipeline.models import RollingMeanModel

    settings = PipelineSettings(data_dir=data_dir, demo_cards=40, demo_days=240, max_train_rows=100_000)
    for step in ("collect", "validate"):
        getattr(steps, step)(settings, "demo", DAY)
    steps.features(settings, "demo")
    steps.train(settings, "demo", DAY)
    steps.evaluate(settings, "demo", DAY)
    candidate = settings.data_dir / "candidates" / "source=demo" / DAY.isoformat() / "model.pkl"
    if not candidate.exists():
        candidate = next(settings.data_dir.rglob("model.pkl"))
    gate.save_candidate(RollingMeanModel(), candidate)
    steps.price(settings, "demo", DAY)  # the served rows, priced by that model
    decision = steps.register(settings, "demo", DAY)
    assert decision["promoted"], decision
    return str(decision["version"])


RUN_DAG = """
import sys, time
from datetime import datetime, timezone
from dags.pokewatch_pipeline import dag
for t in dag.tasks:
    t.retries = 0  # fail fast in the test; the DAG itself retries twice
run = dag.test(logical_date=datetime(2026, 1, 2, 2, tzinfo=timezone.utc))
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print("DAGRUN", run.state, states)
sys.exit(0 if str(run.state) == "success" else 1)
"""


@pytest.mark.slow
def test_dag_run_promotes_a_model_and_every_replica_hot_reloads_without_failed_requests(
    airflow_home, redis_server, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    old = _weak_champion(data_dir)
    stack = make_stack(redis_server, data_dir, db=4, POKEWATCH_CHAMPION_POLL_S="3600")
    stack.start(timeout=180)
    try:
        r = redis.Redis.from_url(stack.broker_url)
        cards = [c["card_id"] for c in httpx.get(f"{stack.url}/cards", params={"page_size": 40}).json()["items"]]
        answers: Counter[tuple[int, str]] = Counter()
        stop = threading.Event()

        def client() -> None:
            with httpx.Client(base_url=stack.url, timeout=30) as c:
                i = 0
                while not stop.is_set():
                    resp = c.post("/fair_price", json={"card_id": cards[i % len(cards)]})
                    version = resp.json().get("model_version", "?") if resp.status_code == 200 else "-"
                    answers[(resp.status_code, version)] += 1
                    i += 1

        thread = threading.Thread(target=client)
        thread.start()
        env = {
            **os.environ,
            **airflow_home,
            "PYTHONPATH": str(ROOT),
            "POKEWATCH_DATA_DIR": str(data_dir),
            "POKEWATCH_DEMO_CARDS": "40",
            "POKEWATCH_DEMO_DAYS": "240",
            "POKEWATCH_MAX_TRAIN_ROWS": "100000",
            # The gate's promotion goes straight to the replicas here (no shadow trial): this test is
            # about the DAG's publish and the hot reload; tests/e2e/test_lifecycle.py tries challengers.
            "POKEWATCH_CHALLENGER_TRIAL": "false",
            # The provider reads the database from the connection's extra, not the URI path.
            "AIRFLOW_CONN_REDIS_DEFAULT": stack.broker_url.rsplit("/", 1)[0] + "?db=4",
        }
        run = subprocess.run(
            [sys.executable, "-c", RUN_DAG], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
        events = [json.loads(f[b"payload"]) for _, f in r.xrange(keys.MODEL_EVENTS_STREAM)]
        published = [e for e in events if e["kind"] == "published"]
        assert len(published) == 1 and published[0]["version"] != old
        new = published[0]["version"]
        # The run's record, for the metrics: every step timed, rows counted, the gate's decision.
        (record,) = [PipelineRun.model_validate_json(f[b"payload"]) for _, f in r.xrange(keys.PIPELINE_RUNS_STREAM)]
        assert list(record.steps) == [
            "collect", "validate", "features", "context", "train", "evaluate", "price", "register"
        ]  # fmt: skip
        assert all(step.seconds is not None and step.seconds >= 0 for step in record.steps.values())
        assert record.steps["features"].rows and record.steps["collect"].rows
        assert record.promoted and record.model_version == new and record.metrics["model_mape"] > 0
        # The lifecycle rule ran after the register step: the new champion has no challenger yet.
        assert record.lifecycle_action == "none" and record.challenger is None, record

        deadline = time.monotonic() + 120
        versions: list[str | None] = []
        while time.monotonic() < deadline:
            beats = httpx.get(f"{stack.url}/health").json()["replicas"]
            versions = [b["model_version"] for b in beats if b["role"] == "model" and b["live"]]
            if versions == [new, new]:
                break
            time.sleep(0.2)
        assert versions == [new, new], versions
        time.sleep(1.0)
        stop.set()
        thread.join(60)
        print(f"\nanswers during the run and reload: {dict(answers)}")
        assert all(status == 200 for status, _ in answers), dict(answers)
        assert answers[(200, old)] > 0 and answers[(200, new)] > 0
        after = httpx.post(f"{stack.url}/fair_price", json={"card_id": cards[0]}).json()
        assert after["model_version"] == new

        # A version whose artifact is broken: every replica keeps serving `new`.
        from workers.config import PipelineSettings
        from workers.model_events import publish_version
        from workers.registry import version_ref

        settings = PipelineSettings(data_dir=data_dir)
        ref = version_ref(settings, old)
        state_files = list((data_dir / "mlartifacts").rglob("serving/priced/meta.json"))
        broken = [p for p in state_files if ref.run_id in str(p)]
        assert broken, state_files
        broken[0].write_bytes(b"not the state's description")
        publish_version(settings, r, old, rollback=True)
        deadline = time.monotonic() + 60
        failures: list[dict] = []
        while time.monotonic() < deadline and len(failures) < 2:
            failures = [
                json.loads(f[b"payload"])
                for _, f in r.xrange(keys.MODEL_EVENTS_STREAM)
                if b'"load_failed"' in f[b"payload"]
            ]
            time.sleep(0.2)
        assert sorted(f["replica_id"] for f in failures) == ["model-1", "model-2"]
        assert all(f["serving_version"] == new and f["version"] == old for f in failures)
        beats = httpx.get(f"{stack.url}/health").json()["replicas"]
        models = [b for b in beats if b["role"] == "model"]
        assert [b["model_version"] for b in models] == [new, new]
        assert all(b["last_error"] and f"loading version {old} failed" in b["last_error"] for b in models)
        still = httpx.post(f"{stack.url}/fair_price", json={"card_id": cards[0]})
        assert still.status_code == 200 and still.json()["model_version"] == new

        # `pokewatch model rollback`: the champion alias goes back to the previous champion, announced as a rollback.
        from workers.model_events import rollback
        from workers.registry import champion_ref

        out = rollback(settings, r)
        assert out["version"] == old and out["rollback"] is True
        assert champion_ref(settings).version == old
        last = json.loads(r.xrevrange(keys.MODEL_EVENTS_STREAM, count=1)[0][1][b"payload"])
        assert (last["kind"], last["version"], last["rollback"]) == ("published", old, True)

        # `pokewatch model status` on the registry the DAG run added to (its versions and their roles).
        status = subprocess.run(
            [str(Path(sys.executable).parent / "pokewatch"), "model", "status"],
            env={**os.environ, "POKEWATCH_DATA_DIR": str(data_dir), "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        rows = {line.split("│")[1].strip(): line for line in status.stdout.splitlines() if line.count("│") > 4}
        assert {old, new} <= set(rows), status.stdout
        # The roles: the rolled-back version says so (the lifecycle tags it).
        assert rows[old].split("│")[2].strip() == "champion", status.stdout
        assert rows[new].split("│")[2].strip() == "rolled back", status.stdout
    finally:
        stack.stop()


RUN_FLAKY = """
import json, os, sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from workers.pipeline import run as steps

calls = Path(os.environ["CALLS"])
real = steps.features

def flaky(settings, source, part=None):
    with calls.open("a") as f:
        f.write(f"{part.index}\\n")
    if part.index == 1 and calls.read_text().split().count("1") == 1:
        raise RuntimeError("partition 1 fails on its first try")
    return real(settings, source, part)

steps.features = flaky  # the DAG's tasks import the module and call it by name
from dags.pokewatch_pipeline import dag
for t in dag.tasks:
    t.retries = 1 if t.task_id == "features" else 0
    t.retry_delay = timedelta(0)
run = dag.test(logical_date=datetime(2026, 1, 2, 2, tzinfo=timezone.utc))
tis = [[ti.task_id, ti.map_index, ti.try_number, str(ti.state)] for ti in run.get_task_instances()]
print("TIS " + json.dumps(tis))
sys.exit(0 if str(run.state) == "success" else 1)
"""


@pytest.mark.slow
def test_partitions_run_as_mapped_tasks_and_a_failed_partition_retries_alone(
    airflow_home, redis_server, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    calls = tmp_path / "feature-calls.txt"
    env = {
        **os.environ,
        **airflow_home,
        "PYTHONPATH": str(ROOT),
        "CALLS": str(calls),
        "POKEWATCH_DATA_DIR": str(data_dir),
        "POKEWATCH_DEMO_CARDS": "36",
        "POKEWATCH_DEMO_DAYS": "150",
        "POKEWATCH_PARTITIONS": "3",
        "AIRFLOW_CONN_REDIS_DEFAULT": redis_server.url.rsplit("/", 1)[0] + "?db=6",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    run = subprocess.run(
        [sys.executable, "-c", RUN_FLAKY], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    tis = json.loads(next(line for line in run.stdout.splitlines() if line.startswith("TIS "))[4:])
    by_task: dict[str, dict[int, tuple[int, str]]] = {}
    for task_id, index, tries, state in tis:
        by_task.setdefault(task_id, {})[index] = (tries, state)
    # Three mapped instances of each per-partition step, all successful.
    for task_id in ("collect", "validate", "features", "price"):
        assert sorted(by_task[task_id]) == [0, 1, 2], by_task
        assert {state for _, state in by_task[task_id].values()} == {"success"}, by_task
    # Only partition 1's features ran twice; the other partitions ran once, nothing upstream re-ran.
    assert by_task["features"][1][0] == 2 and by_task["features"][0][0] == by_task["features"][2][0] == 1
    assert sorted(calls.read_text().split()) == ["0", "1", "1", "2"]
    assert all(tries == 1 for tries, _ in {**by_task["collect"], **by_task["validate"]}.values())
    # Each partition holds its own cards, 36 in all, none twice.
    from workers.pipeline.partitions import Partition

    cards = [pd.read_parquet(p)["card_id"] for p in sorted((data_dir / "features").rglob("features-part-*.parquet"))]
    assert len(cards) == 3 and sum(len(set(c)) for c in cards) == 36
    assert all(Partition(i, 3).holds(c).all() for i, c in enumerate(cards))
