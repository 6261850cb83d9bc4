"""Champion and challenger on real processes, prices replayed day by day.

The stack runs as it does in production (an embedded Redis server, uvicorn,
two model replicas, a decision worker, a challenger replica); the registry
is a real MLflow on sqlite. Each replayed day appends one day of prices and
runs the pipeline's data steps and its lifecycle rule
(workers.pipeline.lifecycle.judge) with the stack's broker, as the DAG's
publish task does. The prices are built so the outcome is known in advance:

- days 0-7 trend up 1.5% a day per card (with noise): naive (the champion)
  is 1.5% off, drift (the card's mean move over 26 observations) close, the
  3-price rolling mean twice as far off as naive;
- from day 8 the trend reverses: drift keeps forecasting a rise for weeks.

So the rolling mean, made challenger by hand, must be retired and never
promoted; drift, made challenger by the backtest gate, must be promoted
after exactly N dates; and, promoted, it must be rolled back once the
reversal has lasted N dates. Meanwhile a client keeps asking for prices:
every answer is a 200 from a champion, never from a challenger.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import redis

from contracts import keys
from tests.e2e.conftest import make_stack
from workers.config import PipelineSettings

ROOT = Path(__file__).resolve().parents[2]
CARDS = 40
HISTORY = 130
DAY0 = date(2026, 6, 1)
REVERSAL = 8  # the first replayed day whose move is down
NEEDED = 3
SHADOW_MAXLEN = 100
STREAM_MAXLEN = 300

pytestmark = pytest.mark.timeout(900)


def prices_until(day: int) -> pd.DataFrame:
    """Every card's history up to replay day `day` (day 0 = DAY0): up 1.5% a day, down from REVERSAL on."""
    rng = np.random.default_rng(11)
    start = DAY0 - timedelta(days=HISTORY)
    n = HISTORY + day + 1
    steps = np.where(np.arange(n) >= HISTORY + REVERSAL, -0.015, 0.015)
    frames = []
    for i in range(CARDS):
        noise = rng.normal(0, 0.002, n)
        log_price = np.log(5 + 3 * i) + np.cumsum(steps + noise)
        frames.append(
            pd.DataFrame(
                {
                    "card_id": f"lc-{i:02d}",
                    "card_name": f"Card {i}",
                    "set_name": "Alpha" if i % 2 else "Beta",
                    "date": [(start + timedelta(days=k)).isoformat() for k in range(n)],
                    "market_price": np.round(np.exp(log_price), 4),
                    "volume": 10,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def run_data_steps(settings: PipelineSettings, day: int, directory: Path) -> date:
    from workers.pipeline import run as steps

    on = DAY0 + timedelta(days=day)
    path = directory / f"prices-{day}.csv"
    prices_until(day).to_csv(path, index=False)
    steps.collect(settings, "file", on, path)
    steps.validate(settings, "file", on)
    steps.features(settings, "file")
    steps.context(settings, "file")
    return on


def register(settings: PipelineSettings, model, on: date) -> dict:
    """Register a baseline as the day's candidate through the gate, scored on its own backtest."""
    from workers.pipeline import register as gate
    from workers.pipeline import run as steps
    from workers.pipeline.evaluate import with_targets
    from workers.pipeline.metrics import mape_of_returns

    frame = with_targets(steps.load_features(settings, "file"), 1, settings.fair_horizon)
    frame = frame.dropna(subset=["target"])
    model.fit(frame)
    gate.save_candidate(model, settings.data_dir / "candidates" / "source=file" / str(on) / "model.pkl")
    steps.price(settings, "file", on)
    serving = steps.merge_priced(settings, "file", on)
    test = frame[pd.to_datetime(frame["date"]) > pd.Timestamp(on) - pd.Timedelta(days=20)].copy()
    test["pred_model"] = model.predict(test).ret
    truth = test["target"].to_numpy()
    mape = 100 * mape_of_returns(test["pred_model"].to_numpy(), truth)
    naive = 100 * mape_of_returns(np.zeros(len(test)), truth)
    evaluation = {
        "model": {"mape": mape},
        "naive": {"mape": naive},
        "model_vs_naive_mape_improvement": 1 - mape / naive,
    }
    champion = steps.load_champion(settings)
    loaded = (champion[0].version, champion[1][0] if champion[1] else None) if champion else None
    decision = gate.register(settings, model, evaluation, test, {"model": model.name}, {}, serving, None, 0, loaded)
    return decision.as_dict()


def cli(*args: str, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "workers.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def test_challenger_is_promoted_after_n_dates_the_worse_never_and_a_decaying_champion_rolls_back(
    redis_server, tmp_path: Path, monkeypatch
) -> None:
    from workers.pipeline.lifecycle import judge
    from workers.pipeline.models import DriftModel, NaiveModel, RollingMeanModel

    data_dir = tmp_path / "data"
    tracking = f"sqlite:///{(data_dir / 'mlflow.db').resolve()}"
    for name, value in {
        "POKEWATCH_DATA_DIR": str(data_dir),
        "MLFLOW_TRACKING_URI": tracking,
        "POKEWATCH_CHALLENGER_DATES": str(NEEDED),
    }.items():
        monkeypatch.setenv(name, value)
    settings = PipelineSettings()
    data_dir.mkdir(parents=True)

    on = run_data_steps(settings, 0, tmp_path)
    champion = register(settings, NaiveModel(), on)
    assert champion["promoted"] and champion["version"] == "1", champion
    worse = register(settings, RollingMeanModel(), on)
    assert not worse["promoted"] and not worse["challenger"], worse  # the backtest gate already rejects it

    stack = make_stack(
        redis_server,
        data_dir,
        db=9,
        POKEWATCH_CHAMPION_POLL_S="2",
        POKEWATCH_SHADOW_MAXLEN=str(SHADOW_MAXLEN),
        POKEWATCH_STREAM_MAXLEN=str(STREAM_MAXLEN),
        POKEWATCH_SCAN="false",
    )
    stack.challengers = 1
    try:
        stack.start(timeout=180)
    except Exception:
        stack.stop()
        raise
    r = redis.Redis.from_url(stack.broker_url)
    env = {**os.environ, "REDIS_URL": stack.broker_url, "PYTHONPATH": str(ROOT)}
    answers: list[tuple[float, float, int, str]] = []  # sent, received, status, version
    request_ids: list[str] = []
    stop = threading.Event()
    moved: dict[str, float] = {}  # when the promotion / the rollback had reached every model replica

    def client() -> None:
        with httpx.Client(base_url=stack.url, timeout=30) as c:
            i = 0
            while not stop.is_set():
                sent = time.monotonic()
                resp = c.post("/fair_price", json={"card_id": f"lc-{i % CARDS:02d}"})
                version = resp.json().get("model_version", "?") if resp.status_code == 200 else resp.text[:200]
                answers.append((sent, time.monotonic(), resp.status_code, version))
                if resp.status_code == 200:
                    request_ids.append(resp.json()["request_id"])
                i += 1
                time.sleep(0.01)

    thread = threading.Thread(target=client)
    thread.start()
    decisions: dict[int, dict] = {}
    try:
        # A person makes the rolling mean the challenger; the challenger replica loads it.
        assert cli("model", "challenger", worse["version"], env=env)["challenger"] == worse["version"]
        wait_for(lambda: challenger_serving(stack) == worse["version"], "challenger replica loads version 2")
        for day in range(0, 12):
            on = DAY0 + timedelta(days=day) if day == 0 else run_data_steps(settings, day, tmp_path)
            if day == 4:
                better = register(settings, DriftModel(window=26), on)
                assert better["challenger"] and not better["promoted"], better  # the gate sends it to trial
                wait_for(lambda: challenger_serving(stack) == better["version"], "challenger replica loads drift")
            if day == 5:
                # Killed mid-run: users see nothing of it, the shadow stream stays bounded.
                victim = next(c for c in stack.children if c.name == "challenger-1")
                victim.process.send_signal(signal.SIGKILL)
                victim.process.wait()
                wait_for(lambda: httpx.get(f"{stack.url}/health").json()["challenger"]["live"] == 0, "seen down")
                health = httpx.get(f"{stack.url}/health").json()
                assert health["status"] == "ok" and health["challenger"]["down"] == 1, health
                time.sleep(2)
                assert r.xlen(keys.PREDICT_STREAM) <= STREAM_MAXLEN + 100
                assert r.xlen(keys.SHADOW_STREAM) <= SHADOW_MAXLEN + 100
                top = subprocess.run(
                    [sys.executable, "-m", "workers.cli", "top", "--once"],
                    env={**env, "COLUMNS": "250"}, cwd=ROOT, capture_output=True, text=True, timeout=60,
                )  # fmt: skip
                assert top.returncode == 0 and "challenger-1" in top.stdout and "shadow" in top.stdout, top.stdout
                stack.spawn_challenger("challenger-2")
            judging = time.monotonic()
            decisions[day] = judge(settings, "file", on, r)
            if day == 6:  # mid-trial: champion and challenger side by side
                exported = lifecycle_metrics(r)
                assert exported[("pokewatch_lifecycle_comparison", ("challenger", "dates"))] == 2
                assert exported[("pokewatch_realized_metric", (better["version"], "challenger", "dates"))] == 2
                assert exported[("pokewatch_lifecycle_challenger_version", ())] == int(better["version"])
                look_at_the_model_page(stack.url, champion["version"], better["version"], "2 of 3 dates")
                # pokewatch model compare: the same scores and decision, looked at, nothing moved
                compared = cli("model", "compare", "--source", "file", env=env)
                assert compared["decision"]["action"] == "hold" and compared["vs_champion"]["dates"] == 2
            action = decisions[day]["decision"]["action"]
            if action in ("promote", "rollback"):
                target = decisions[day]["decision"]["version"]
                moved[f"{action} decided"] = judging  # the event goes out while the rule records
                wait_for(lambda t=target: model_versions(stack) == [t], f"model replicas serve {target}")
                moved[action] = time.monotonic()
        shadow = [json.loads(f[b"payload"]) for _, f in r.xrange(keys.SHADOW_STREAM)]
        # A person sets a challenger and withdraws it: the shadow group comes and goes with it.
        assert cli("model", "challenger", worse["version"], env=env)["challenger"] == worse["version"]
        assert keys.SHADOW_GROUP in groups(r)
        assert cli("model", "challenger", "--clear", env=env) == {"challenger": None}
        assert keys.SHADOW_GROUP not in groups(r)
    finally:
        stop.set()
        thread.join(timeout=30)
        stack.stop()

    actions = {day: (d["decision"]["action"], d["decision"]["version"]) for day, d in decisions.items()}
    print(json.dumps({day: [*a, decisions[day]["rule_state"]] for day, a in actions.items()}, indent=1))
    # The worse challenger: held while dates accrue, retired at N dates, never promoted.
    assert [actions[d][0] for d in range(0, NEEDED)] == ["hold"] * NEEDED, actions
    assert actions[NEEDED] == ("retire", worse["version"]), actions
    # The better one, challenger from day 4: held for N - 1 scored dates, promoted at the Nth.
    assert [actions[d] for d in range(4, 4 + NEEDED)] == [("hold", better["version"])] * NEEDED, actions
    assert actions[4 + NEEDED] == ("promote", better["version"]), actions
    assert all(a[0] != "promote" or a[1] == better["version"] for a in actions.values())
    # The reversal: the promoted drift decays and is rolled back to the naive champion.
    rolled = [d for d, a in actions.items() if a[0] == "rollback"]
    assert rolled and actions[rolled[0]][1] == champion["version"] and rolled[0] >= REVERSAL, actions
    # Recorded: tags on the versions, events on the model-events stream.
    from workers import registry

    tags = {str(v.version): v.tags for v in registry.versions(settings)}
    assert tags[worse["version"]]["lifecycle.retired"] == "True"
    assert tags[better["version"]]["lifecycle.promoted"] == "True"
    assert tags[better["version"]]["lifecycle.rolled_back"] == "True"
    assert registry.champion_version(settings) == champion["version"]
    # Users: every answer a 200 from the champion of the moment; the challenger's were shadow only.
    assert answers and all(status == 200 for _, _, status, _ in answers), Counter(a[2:] for a in answers)
    by_version = Counter(v for *_, v in answers)
    assert set(by_version) == {champion["version"], better["version"]}, by_version
    drift = [(sent, got) for sent, got, _, v in answers if v == better["version"]]
    assert min(got for _, got in drift) >= moved["promote decided"]
    assert all(sent < moved["rollback"] for sent, _ in drift)
    assert {s["model_version"] for s in shadow} <= {worse["version"], better["version"]}
    # Shadow quotes answer the very requests users sent (the stream keeps the newest).
    assert shadow and {s["request_id"] for s in shadow} <= set(request_ids)
    assert len(shadow) <= SHADOW_MAXLEN + 100


def wait_for(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.3)


def lifecycle_metrics(r: redis.Redis) -> dict[tuple[str, tuple[str, ...]], float]:
    """What the metrics exporter reports of the lifecycle, read from the stack's broker."""
    from workers.monitoring.exporter import StreamCollector

    out = {}
    for family in StreamCollector(r).collect():
        for sample in family.samples:
            out[(sample.name, tuple(sample.labels.values()))] = sample.value
    return out


def groups(r: redis.Redis) -> set[str]:
    return {g["name"].decode() for g in r.xinfo_groups(keys.PREDICT_STREAM)}


def challenger_serving(stack) -> str | None:
    health = httpx.get(f"{stack.url}/health").json()
    live = [r for r in health["replicas"] if r["role"] == "challenger" and r["live"]]
    return live[0]["model_version"] if live else None


def model_versions(stack) -> list[str]:
    return httpx.get(f"{stack.url}/health").json()["model_versions"]


def look_at_the_model_page(url: str, champion: str, challenger: str, rule: str) -> None:
    """In a real browser: the rule's state, the scores side by side, one chart line per version."""
    from selenium.webdriver.common.by import By

    from tests.e2e.test_pages import ARTIFACTS, _browser, severe

    browser = _browser()
    try:
        browser.get(f"{url}/ui/model")
        assert browser.find_element(By.ID, "lc-champion").text == champion
        assert browser.find_element(By.ID, "lc-challenger").text == challenger
        assert browser.find_element(By.ID, "lc-rule").text.startswith(rule)
        assert browser.find_element(By.ID, "lc-decision").text == "hold"
        rows = [r.text.split()[:2] for r in browser.find_elements(By.CSS_SELECTOR, "#realized tbody tr")]
        assert rows == [[champion, "champion"], [challenger, "challenger"]], rows
        lines = browser.find_elements(By.CSS_SELECTOR, "#realized-chart polyline")
        assert {line.get_attribute("data-version") for line in lines} == {champion, challenger}
        assert all(len(line.get_attribute("points").split()) >= 2 for line in lines)
        assert severe(browser) == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "model-lifecycle.png"))
    finally:
        browser.quit()


def test_with_auto_promote_off_the_rule_records_its_decision_and_moves_nothing(
    redis_server, tmp_path: Path, monkeypatch
) -> None:
    """POKEWATCH_AUTO_PROMOTE=false: a person decides. The decision and its numbers are recorded
    (event, MLflow, pokewatch:lifecycle), the aliases stay, and each version's realized scores are
    a time series on its MLflow run."""
    from workers import registry
    from workers.pipeline.lifecycle import judge
    from workers.pipeline.models import DriftModel, NaiveModel

    data_dir = tmp_path / "data"
    for name, value in {
        "POKEWATCH_DATA_DIR": str(data_dir),
        "MLFLOW_TRACKING_URI": f"sqlite:///{(data_dir / 'mlflow.db').resolve()}",
        "POKEWATCH_CHALLENGER_DATES": str(NEEDED),
        "POKEWATCH_AUTO_PROMOTE": "false",
    }.items():
        monkeypatch.setenv(name, value)
    settings = PipelineSettings()
    data_dir.mkdir(parents=True)
    r = redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/11")
    r.flushdb()
    on = run_data_steps(settings, 0, tmp_path)
    champion = register(settings, NaiveModel(), on)["version"]
    better = register(settings, DriftModel(window=26), on)
    assert better["challenger"], better
    decided = [
        judge(settings, "file", run_data_steps(settings, d, tmp_path) if d else on, r) for d in range(NEEDED + 1)
    ]
    last = decided[-1]["decision"]
    assert last["action"] == "promote" and last["version"] == better["version"] and not last["applied"]
    assert "a person decides" in last["reason"]
    assert registry.champion_version(settings) == champion  # nothing moved
    assert registry.challenger_version(settings) == better["version"]
    event = json.loads(r.xrevrange(keys.MODEL_EVENTS_STREAM, count=1)[0][1][b"payload"])
    assert (event["kind"], event["action"], event["applied"]) == ("decision", "promote", False)
    assert event["numbers"]["dates"] == NEEDED and event["numbers"]["low"] > 0
    assert json.loads(r.get(keys.LIFECYCLE_KEY))["decision"]["applied"] is False
    tags = registry.client(settings).get_model_version(settings.model_name, better["version"]).tags
    assert tags["lifecycle.last_action"] == "promote" and tags["lifecycle.applied"] == "False"
    run_id = registry.version_ref(settings, better["version"]).run_id
    history = registry.client(settings).get_metric_history(run_id, "realized.mape")
    assert len(history) == NEEDED and len({m.step for m in history}) == NEEDED  # one point per run


def test_a_champion_its_replicas_cannot_load_is_rolled_back_at_once(redis_server, tmp_path: Path, monkeypatch) -> None:
    """Promoted, the new champion's state is unreadable: every replica keeps serving the old one and
    announces the failure; the rollout watch moves the champion back before any replica starts on it."""
    from workers import registry
    from workers.pipeline.models import DriftModel, NaiveModel
    from workers.pipeline.promotion import Decision
    from workers.pipeline.rollout import act

    data_dir = tmp_path / "data"
    tracking = f"sqlite:///{(data_dir / 'mlflow.db').resolve()}"
    monkeypatch.setenv("POKEWATCH_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    settings = PipelineSettings()
    data_dir.mkdir(parents=True)
    on = run_data_steps(settings, 0, tmp_path)
    champion = register(settings, NaiveModel(), on)["version"]
    broken = register(settings, DriftModel(window=26), on)["version"]
    state = registry.priced_dir(settings, registry.version_ref(settings, broken))
    assert state is not None
    (state / "meta.json").write_text('{"format": -1}')  # a state no replica can open

    stack = make_stack(redis_server, data_dir, db=8, POKEWATCH_SCAN="false")
    stack.start(timeout=180)
    try:
        r = redis.Redis.from_url(stack.broker_url)
        act(settings, r, Decision("promote", broken, "test: promoted by hand"), champion)
        assert registry.champion_version(settings) == champion
        tags = registry.client(settings).get_model_version(settings.model_name, broken).tags
        assert tags["lifecycle.rolled_back"] == "True"
        events = [json.loads(f[b"payload"]) for _, f in r.xrange(keys.MODEL_EVENTS_STREAM)]
        assert {e["replica_id"] for e in events if e["kind"] == "load_failed"} == {"model-1", "model-2"}
        (rolled,) = [e for e in events if e["kind"] == "decision"]
        assert rolled["action"] == "rollback" and rolled["version"] == champion and "failed to load" in rolled["reason"]
        assert model_versions(stack) == [champion]
        resp = httpx.post(f"{stack.url}/fair_price", json={"card_id": "lc-01"}, timeout=30)
        assert resp.status_code == 200 and resp.json()["model_version"] == champion
        # A replica that starts now finds a champion it can load.
        stack.spawn_model("model-3")
        stack.wait_ready(models=3)
        assert model_versions(stack) == [champion]
    finally:
        stack.stop()
