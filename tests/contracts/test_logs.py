"""The one log format: service and request id on every line, text or JSON."""

from __future__ import annotations

import io
import json
import logging

import pytest

from contracts import logs


@pytest.fixture
def captured():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)

    def configure(fmt: str) -> io.StringIO:
        logs.configure("svc-1", level="DEBUG", fmt=fmt)
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        return stream

    yield configure
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_text_lines_carry_the_service_and_the_request_id(captured) -> None:
    out = captured("text")
    log = logging.getLogger("pokewatch.test")
    log.info("outside")
    with logs.request_context("abc123"):
        log.info("inside %d", 1)
    log.info("explicit", extra={"request_id": "given"})
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("INFO svc-1 pokewatch.test [-] outside")
    assert lines[1].endswith("INFO svc-1 pokewatch.test [abc123] inside 1")
    assert lines[2].endswith("[given] explicit")


def test_json_lines_are_one_object_each(captured) -> None:
    out = captured("json")
    with logs.request_context("r-9"):
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("x").exception("failed")
    (doc,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (doc["service"], doc["request_id"], doc["level"], doc["message"]) == ("svc-1", "r-9", "ERROR", "failed")
    assert "ValueError: boom" in doc["exc"]
