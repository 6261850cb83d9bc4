"""The `pokewatch` command as a user runs it: the installed console script, in a fresh data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

POKEWATCH = str(Path(sys.executable).parent / "pokewatch")
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli_env(tmp_path: Path, redis_server) -> dict[str, str]:
    url = redis_server.url.rsplit("/", 1)[0] + "/15"
    redis.Redis.from_url(url).flushdb()
    env = {
        **os.environ,
        "POKEWATCH_DATA_DIR": str(tmp_path / "data"),
        "POKEWATCH_DEMO_CARDS": "30",
        "POKEWATCH_DEMO_DAYS": "150",
        "POKEWATCH_MAX_TRAIN_ROWS": "100000",
        "REDIS_URL": url,
        "COLUMNS": "200",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("POKEMONPRICETRACKER_API_KEY", None)
    return env


@pytest.fixture
def pokewatch(cli_env: dict[str, str], tmp_path: Path) -> Run:
    """`pokewatch(*args)`: run the command; returns the finished process (text output)."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POKEWATCH, *args], env=cli_env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout
        )

    return run
