"""The documented curl, redis-cli, watch and client-generation commands, against a running stack."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from contracts import keys
from tests.cli.documented import one_block, shell_commands
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


def _documented(prefix: str) -> str:
    """The one documented shell command that starts with `prefix`, as the docs write it."""
    (command,) = {c for _, c in shell_commands() if c.startswith(prefix)}
    return command


def test_the_documented_webhook_task_creates_a_price_below_watchlist(running) -> None:
    """docs/collectors/watchlists.md, "Get a webhook when a card drops below a price": both ways, as written."""
    import os
    import shlex
    import sys

    env = {**os.environ, "POKEWATCH_GATEWAY_URL": running.url}
    env.pop("POKEWATCH_API_KEY", None)
    by_cli = shlex.split(_documented("pokewatch watch add demo-00003 --rule price_below --target 5 --webhook"))
    out = subprocess.run([sys.executable, "-m", "workers.cli", *by_cli[1:]], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    by_curl = shlex.split(_documented("curl -X POST localhost:8000/watchlists").replace("localhost:8000", running.url))
    answer = subprocess.run([*by_curl, "-s"], capture_output=True, text=True, timeout=30, check=True)
    for created in (json.loads(out.stdout), json.loads(answer.stdout)):
        assert created["items"] == [{"card_id": "demo-00003", "rule": "price_below", "target": 5.0}], created
        assert created["webhook_url"] == "https://hooks.example.com/pokewatch" and created["name"] == "below 5"
        assert created["webhook_secret"].startswith("whsec_"), "the signing secret, shown once"


def test_the_documented_python_client_is_generated_from_the_live_schema_and_prices_a_card(running, tmp_path) -> None:
    """docs/collectors/clients.md, run as written against the running stack (localhost:8000 -> its URL)."""
    import os
    import shlex
    import sys

    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}  # its post-hooks run ruff from PATH
    generate = shlex.split(_documented("openapi-python-client generate").replace("http://127.0.0.1:8000", running.url))
    out = subprocess.run(generate, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    package = tmp_path / "pokewatch-client" / "poke_watch_client"
    operations = {p.stem for p in package.glob("api/*/*.py")} - {"__init__"}
    assert {"get_fair_price", "get_fair_prices", "list_cards", "create_watchlist", "get_health"} <= operations
    # pip install ./pokewatch-client (into a folder of its own, not this environment)
    install = _documented("pip install ./pokewatch-client").split()[2:]
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), *install]
    out = subprocess.run(pip, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    example = one_block("python", "poke_watch_client").replace("http://127.0.0.1:8000", running.url)
    run = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, env={**env, "PYTHONPATH": str(site)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    card, market, fair, signal, *_ = run.stdout.split(" ", 4)
    assert card == "demo-00000" and float(market) > 0 and float(fair) > 0 and signal in ("BUY", "SELL", "HOLD")


def test_the_documented_typescript_types_are_generated_from_the_live_schema(running, tmp_path) -> None:
    """docs/collectors/clients.md's npx line (needs Node.js and the npm registry; else skipped, saying why)."""
    import shlex

    if shutil.which("npx") is None:
        pytest.skip("Node.js (npx) is not installed: apt-get install nodejs npm")
    command = shlex.split(_documented("npx --yes openapi-typescript").replace("http://127.0.0.1:8000", running.url))
    out = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    if out.returncode != 0 and ("ENOTFOUND" in out.stderr or "EAI_AGAIN" in out.stderr or "ECONN" in out.stderr):
        pytest.skip(f"the npm registry is out of reach: {out.stderr.strip()[-200:]}")
    assert out.returncode == 0, out.stdout + out.stderr
    types = (tmp_path / "pokewatch.d.ts").read_text()
    assert '"/fair_price"' in types and "get_fair_price:" in types and "create_watchlist:" in types
