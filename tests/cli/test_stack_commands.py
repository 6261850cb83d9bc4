"""The documented curl, redis-cli, watch and client-generation commands, against a running stack."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections import Counter

import pytest
import redis

from contracts import keys
from tests.e2e.conftest import running_stack, scan_decisions

pytestmark = pytest.mark.slow

# The README's "Watching it with redis-cli" block, as written there.
REDIS_CLI = [
    "XINFO GROUPS pokewatch:predict",
    "XINFO CONSUMERS pokewatch:predict model",
    "XPENDING pokewatch:predict model - + 10",
    "XRANGE pokewatch:signals - + COUNT 5",
    "XRANGE pokewatch:dead-letter - + COUNT 10",
    "HGETALL pokewatch:replicas",
    "XRANGE pokewatch:signal-changes - + COUNT 5",
    "XLEN pokewatch:signal-changes",
    "XRANGE pokewatch:alerts - + COUNT 5",
    "XINFO GROUPS pokewatch:signal-changes",
]


@pytest.fixture(scope="module")
def running(redis_server, champion_data_dir):
    with running_stack(redis_server, champion_data_dir, db=3) as stack:
        # The start-up scan's decisions land first: the live follow below must see the README's request.
        assert len(scan_decisions(stack)) == 40
        yield stack


def test_the_quick_start_curl_prices_a_card(running) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    # curl -X POST localhost:8000/fair_price -d '{"card_id": "demo-00000"}'
    out = subprocess.run(
        ["curl", "-s", "-X", "POST", f"{running.url}/fair_price", "-d", '{"card_id": "demo-00000"}'],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    body = json.loads(out.stdout)
    assert body["card_id"] == "demo-00000" and body["signal"] in {"BUY", "SELL", "HOLD"}, body


def test_the_redis_cli_lines_show_groups_replicas_and_signals(running) -> None:
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli not installed (apt-get install redis-tools; .ci/run does)")
    port, db = running.broker_url.rsplit(":", 1)[1].split("/")
    cli = ["redis-cli", "-p", port, "-n", db]
    follow = subprocess.Popen(
        [*cli, "XREAD", "BLOCK", "0", "STREAMS", "pokewatch:signals", "$"], stdout=subprocess.PIPE
    )
    time.sleep(0.5)  # the blocking read is in place
    priced = subprocess.run(
        ["curl", "-s", "-X", "POST", f"{running.url}/fair_price", "-d", '{"card_id": "demo-00001"}'],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert '"signal"' in priced.stdout, priced.stdout
    followed, _ = follow.communicate(timeout=10)
    assert b"demo-00001" in followed, "XREAD BLOCK 0 ... '$' shows the next decision as it is made"
    outputs = {}
    for line in REDIS_CLI:
        out = subprocess.run([*cli, *line.split()], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0 and "ERR" not in out.stdout, (line, out.stdout, out.stderr)
        outputs[line] = out.stdout
    assert "model" in outputs["XINFO GROUPS pokewatch:predict"] and "decision" not in outputs[REDIS_CLI[0]]
    assert "model-1" in outputs["XINFO CONSUMERS pokewatch:predict model"]
    # The decision worker made the notifier's group on the changes, so no change waits for a notifier's first start.
    assert "notifier" in outputs["XINFO GROUPS pokewatch:signal-changes"]
    assert "demo-00001" in outputs["XRANGE pokewatch:signals - + COUNT 5"]
    assert {"model-1", "model-2", "decision-1"} <= set(outputs["HGETALL pokewatch:replicas"].split())
    assert redis.Redis.from_url(running.broker_url).xlen(keys.DEAD_LETTER_STREAM) == 0


def test_the_readme_curl_follows_signal_changes(running) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    # curl -N localhost:8000/signals/stream -H 'Last-Event-ID: 0-0'
    out = subprocess.run(
        ["curl", "-sN", "--max-time", "2", f"{running.url}/signals/stream", "-H", "Last-Event-ID: 0-0"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 28, "curl stops at --max-time: the stream stays open"  # 28 = operation timed out
    assert out.stdout.startswith("retry: "), out.stdout
    changes = redis.Redis.from_url(running.broker_url).xrange(keys.SIGNAL_CHANGES_STREAM)
    ids = [line[4:] for line in out.stdout.splitlines() if line.startswith("id: ")]
    assert ids == [i.decode() for i, _ in changes], "the replay is the whole stream, in order"


def test_the_readme_watch_commands_keep_a_watchlist(running) -> None:
    import os
    import sys

    env = {**os.environ, "POKEWATCH_GATEWAY_URL": running.url}
    env.pop("POKEWATCH_API_KEY", None)

    def watch(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "workers.cli", "watch", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)

    # pokewatch watch add demo-00001 demo-00002 --rule signal --signal BUY --name grails
    added = watch("add", "demo-00001", "demo-00002", "--rule", "signal", "--signal", "BUY", "--name", "grails")
    assert added.returncode == 0, added.stderr
    created = json.loads(added.stdout)
    assert [i["card_id"] for i in created["items"]] == ["demo-00001", "demo-00002"]
    # pokewatch watch add demo-00003 --rule price_below --target 5
    assert watch("add", "demo-00003", "--rule", "price_below", "--target", "5").returncode == 0
    refused = watch("add", "demo-00003", "--webhook", "http://169.254.169.254/latest")
    said = " ".join((refused.stdout + refused.stderr).split())  # the console wraps long lines
    assert refused.returncode == 1 and "422" in said and "169.254.169.254" in said, said
    listed = json.loads(watch("list", "--json").stdout)
    assert created["id"] in {w["id"] for w in listed} and "grails" in watch("list").stdout
    # pokewatch watch remove <id>
    assert watch("remove", created["id"]).returncode == 0
    assert created["id"] not in {w["id"] for w in json.loads(watch("list", "--json").stdout)}
    gone = watch("remove", created["id"])
    assert gone.returncode == 1 and "404" in gone.stdout + gone.stderr


def test_the_readme_scan_command_decides_every_card_once(running) -> None:
    import os
    import sys

    # pokewatch scan
    out = subprocess.run(
        [sys.executable, "-m", "workers.cli", "scan"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "REDIS_URL": running.broker_url},
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    sent = json.loads(out.stdout)
    assert sent == {"version": "1", "cards": 40, "requests": 1}
    r = redis.Redis.from_url(running.broker_url)
    deadline = time.monotonic() + 30
    while True:
        decided = [json.loads(f[b"payload"]) for _, f in r.xrange(keys.SIGNALS_STREAM)]
        scans = Counter(d["request_id"] for d in decided if d["request_id"].startswith("scan-1-"))
        if len(scans) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(scans.values()) == [40, 40], "the start-up scan and this one, each every card once"
