"""Every command in the shell blocks of the README and of docs/ is run by a test: one without a test fails here."""

from __future__ import annotations

from tests.cli.documented import ROOT, one_block, shell_commands
from tests.cli.test_stack_commands import REDIS_CLI

# Command prefix -> the test file that runs it as the docs show it.
COVERED = {
    "make up": "tests/e2e/test_up.py",  # `make up` is setup + `pokewatch up`, which that test runs
    "make test": ".ci/run",  # CI's own command
    "curl -X POST localhost:8000/fair_price": "tests/cli/test_stack_commands.py",
    "curl -N localhost:8000/signals/stream": "tests/cli/test_stack_commands.py",
    "pokewatch pipeline ": "tests/cli/test_pipeline.py",
    "pokewatch evaluate ": "tests/cli/test_pipeline.py",
    "pokewatch model challenger": "tests/e2e/test_lifecycle.py",
    "pokewatch model compare": "tests/e2e/test_lifecycle.py",
    "pokewatch model ": "tests/cli/test_pipeline.py",
    "pokewatch up --challenger": "tests/e2e/test_up.py",
    "pokewatch keys ": "tests/cli/test_keys.py",
    "pokewatch watch ": "tests/cli/test_stack_commands.py",
    "pokewatch scan": "tests/cli/test_stack_commands.py",
    "redis-cli ": "tests/cli/test_stack_commands.py",
    "curl -s localhost:8000/metrics": "tests/e2e/test_metrics.py",  # Prometheus scrapes that URL there
    "prometheus --config.file": "tests/e2e/test_metrics.py",  # with the config `pokewatch up` writes
    "pokewatch top": "tests/cli/test_top.py",
    "pokewatch asyncapi": "tests/contracts/test_asyncapi.py",
    "export ": "tests/cli/test_airflow.py",
    "airflow ": "tests/cli/test_airflow.py",
    "grep -r ": "tests/e2e/test_logs.py",  # a request id through every process's log
    "make docs": "tests/docs/test_site.py",  # builds the site as `make docs` does, then opens it in Chromium
    "pip install openapi-python-client": "pyproject.toml",  # a dev dependency: `make setup` installs it
    "openapi-python-client generate": "tests/cli/test_stack_commands.py",
    "pip install ./pokewatch-client": "tests/cli/test_stack_commands.py",
    "npx --yes openapi-typescript": "tests/cli/test_stack_commands.py",
    "curl -X POST localhost:8000/watchlists": "tests/cli/test_stack_commands.py",
    # k8s/README.md (the site's Kubernetes page):
    "docker build -f docker/": "tests/deploy/test_images.py",  # the same Dockerfiles and context, built with Podman
    # No cluster here: the manifests this command acts on are validated against the Kubernetes schemas and
    # checkov, and the command it runs in the pod (`pokewatch keys create`) is tested in tests/cli/test_keys.py.
    "kubectl ": "tests/deploy/test_manifests.py",
    'curl -H "X-API-Key: <key>" -X POST': "tests/e2e/test_security.py",  # a key-authorized /fair_price
    ".venv/bin/pytest ": "tests/",  # runs tests of this suite: the files it names must exist
}


def _commands() -> list[str]:
    return [command for _, command in shell_commands()]


def test_every_documented_command_has_a_test_that_runs_it() -> None:
    commands = shell_commands()
    assert len(commands) >= 25 and any(page.startswith("docs/") for page, _ in commands)
    for page, command in commands:
        owners = [test for prefix, test in COVERED.items() if command.startswith(prefix)]
        assert owners, f"no test runs the command {command!r} of {page}: add one and list it here"
        assert (ROOT / owners[0]).exists(), owners
        if command.startswith(".venv/bin/pytest "):
            for path in command.split()[1:]:
                assert path.startswith("-") or (ROOT / path).exists(), command


def test_the_redis_cli_lines_tested_are_the_documented_lines() -> None:
    readme = {c.removeprefix("redis-cli ") for c in _commands() if c.startswith("redis-cli ")}
    follow = "XREAD BLOCK 0 STREAMS pokewatch:signals '$'"
    assert readme == {*REDIS_CLI, follow}


def test_the_subscriber_example_prints_each_change_once(redis_server) -> None:
    """The documented Python subscriber, run as written against a real server."""
    import os
    import subprocess
    import sys
    import time

    import redis

    from contracts import keys
    from contracts.messages import SignalChanged
    from tests.factories import make_quote
    from workers.serving.decision_worker import decide_quotes
    from workers.signals import DEFAULT_RULE

    example = one_block("python", "xreadgroup")
    url = redis_server.url.rsplit("/", 1)[0] + "/15"
    r = redis.Redis.from_url(url)
    r.flushdb()
    for card, market in (("c1", 80.0), ("c2", 130.0)):
        (decision,) = decide_quotes([make_quote(card, market=market, fair=100.0)], "r", DEFAULT_RULE)
        change = SignalChanged(card_id=card, previous_signal="HOLD", signal=decision.signal, decision=decision)
        r.xadd(keys.SIGNAL_CHANGES_STREAM, {keys.PAYLOAD_FIELD: change.model_dump_json()})
    proc = subprocess.Popen(
        [sys.executable, "-c", example], env={**os.environ, "REDIS_URL": url}, stdout=subprocess.PIPE, text=True
    )
    try:
        lines = [proc.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        while r.xpending(keys.SIGNAL_CHANGES_STREAM, "my-dashboard")["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)  # it acks each change just after printing it
    finally:
        proc.kill()
        proc.wait(10)
    assert lines[0].startswith("c1: HOLD -> BUY at 80.0 (fair 100.0, version 1)"), lines
    assert lines[1].startswith("c2: HOLD -> SELL at 130.0"), lines
    assert r.xpending(keys.SIGNAL_CHANGES_STREAM, "my-dashboard")["pending"] == 0, "each change acked"
    r.flushdb()


def test_the_signature_check_is_five_lines_and_tells_a_forgery() -> None:
    """The documented receiver-side check, run as written, on headers the notifier makes."""
    import base64
    import secrets

    from workers.notify.webhooks import signed_headers

    example = one_block("python", "webhook-signature")
    body_lines = [line for line in example.split("def verify", 1)[1].splitlines()[1:] if line.strip()]
    assert len(body_lines) <= 5, body_lines
    scope: dict = {}
    exec(example, scope)
    verify = scope["verify"]
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    body = '{"alert_id":"alert_1","card_id":"demo-00001","trigger":"signal HOLD -> BUY"}'
    headers = signed_headers(secret, "alert_1", body)
    assert verify(body.encode(), headers, secret) is True
    assert verify(body.encode(), headers, other) is False
    assert verify(body.replace("BUY", "SELL").encode(), headers, secret) is False
    assert verify(body.encode(), {**headers, "webhook-id": "alert_2"}, secret) is False
