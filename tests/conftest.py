"""Shared fixtures: real data location, isolated data dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
