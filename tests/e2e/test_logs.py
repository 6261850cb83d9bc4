"""One request, followed by its request id through the logs of every process it crossed."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.e2e.conftest import make_stack

pytestmark = pytest.mark.slow


def test_a_request_id_is_on_the_gateway_model_and_decision_log_lines(redis_server, champion_data_dir) -> None:
    stack = make_stack(redis_server, champion_data_dir, db=14, POKEWATCH_LOG_LEVEL="DEBUG", POKEWATCH_LOG_FORMAT="json")
    stack.start(timeout=180)
    try:
        card = httpx.get(f"{stack.url}/cards", params={"page_size": 1}).json()["items"][0]["card_id"]
        resp = httpx.post(f"{stack.url}/fair_price", json={"card_id": card}, timeout=30)
        assert resp.status_code == 200, resp.text
        request_id = resp.json()["request_id"]
    finally:
        codes = stack.stop()
    assert all(code in (0, -15) for code in codes.values()), codes

    def lines(name: str) -> list[dict]:
        """This stack's lines of one process that mention the request (the log files are shared by name)."""
        text = (champion_data_dir / "logs" / f"{name}.log").read_text()
        return [json.loads(line) for line in text.splitlines() if request_id in line]

    gateway = lines("gateway")
    models = lines("model-1") + lines("model-2")
    decision = lines("decision-1")
    for name, found in (("gateway", gateway), ("model replica", models), ("decision worker", decision)):
        assert found, f"no {name} log line carries request {request_id}"
        assert all(doc["request_id"] == request_id for doc in found), found
    assert {doc["service"] for doc in models} <= {"model-1", "model-2"}
    assert {doc["service"] for doc in gateway} == {"gateway"} and {doc["service"] for doc in decision} == {"decision-1"}
    # docs/operators/logs.md: grep -r <request id> .pokewatch/data/logs/
    grep = subprocess.run(["grep", "-r", request_id, f"{champion_data_dir}/logs/"], capture_output=True, text=True)
    files = {line.split(":", 1)[0].rsplit("/", 1)[1] for line in grep.stdout.splitlines()}
    assert {"gateway.log", "decision-1.log"} <= files and files & {"model-1.log", "model-2.log"}, files
