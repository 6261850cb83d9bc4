"""`pokewatch top` in a real terminal (tmux): it shows a running stack's replicas and lag, and Ctrl-C quits it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from contracts import keys
from tests.e2e.conftest import running_stack

pytestmark = pytest.mark.slow


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10).stdout


def test_top_shows_replicas_and_lag_and_quits_on_ctrl_c(redis_server, champion_data_dir, tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux not installed (apt-get install tmux; .ci/run does)")
    session = f"pokewatch-top-{time.monotonic_ns()}"
    done = tmp_path / "exit-code"
    with running_stack(redis_server, champion_data_dir, db=14) as stack:
        r = redis.Redis.from_url(stack.broker_url)
        # A group with a known lag: three entries nobody has read yet.
        r.xgroup_create(keys.PIPELINE_RUNS_STREAM, "top-test", id="$", mkstream=True)
        for _ in range(3):
            r.xadd(keys.PIPELINE_RUNS_STREAM, {keys.PAYLOAD_FIELD: "{}"})
        # The size comes from the pane (a COLUMNS / LINES inherited from the test process would override it).
        command = (
            f"unset COLUMNS LINES; REDIS_URL={stack.broker_url} {sys.executable} -m workers.cli top; echo $? > {done}"
        )
        _tmux("new-session", "-d", "-s", session, "-x", "220", "-y", "80", command)
        try:
            screen = ""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                screen = _tmux("capture-pane", "-p", "-t", session)
                if "model-2" in screen and "requests/s" in screen and "top-test" in screen:
                    break
                time.sleep(0.5)
            print(screen)
            assert "PokeWatch top" in screen
            for replica in ("model-1", "model-2", "decision-1"):
                assert replica in screen, replica
            (row,) = [line for line in screen.splitlines() if "top-test" in line]
            cells = [c.strip() for c in row.strip("│ ").split("│")]
            assert cells[1:5] == ["top-test", "3", "0", "0"], row  # lag 3, pending 0, no consumer
            assert any("pokewatch:predict" in line and " model " in line for line in screen.splitlines()), screen
            _tmux("send-keys", "-t", session, "C-c")
            deadline = time.monotonic() + 15
            while not done.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert done.exists() and done.read_text().strip() == "0", "Ctrl-C quits cleanly"
        finally:
            _tmux("kill-session", "-t", session)
