"""The reference pages are what the code generates now (`python -m tools.reference` rewrites them)."""

from __future__ import annotations

import re

import pytest

from tools import reference


@pytest.mark.parametrize("name", sorted(reference.PAGES))
def test_the_committed_reference_page_is_what_the_code_generates(name: str) -> None:
    committed = (reference.OUT / name).read_text(encoding="utf-8")
    assert committed == reference.PAGES[name](), f"docs/reference/{name} is stale: run `python -m tools.reference`"


def test_every_setting_has_a_description_and_is_in_the_configuration_page() -> None:
    page = (reference.OUT / "configuration.md").read_text(encoding="utf-8")
    fields = list(reference.settings_fields())  # raises on a field without a description
    assert len(fields) >= 60
    for _, names, _ in fields:
        assert f"`{names[0]}`" in page, names


def test_every_variable_read_directly_is_described() -> None:
    found = reference.direct_variables()
    assert {"POKEWATCH_LOG_LEVEL", "POKEWATCH_GATEWAY_URL", "POKEWATCH_EXPORTER_PORT"} <= set(found)
    assert set(found) <= set(reference.DIRECT), set(found) - set(reference.DIRECT)


def test_a_changed_default_makes_the_page_stale(monkeypatch) -> None:
    from gateway.config import GatewaySettings

    before = reference.configuration()
    field = GatewaySettings.model_fields["request_timeout_s"]
    monkeypatch.setattr(field, "default", 12.5)
    after = reference.configuration()
    assert before != after and re.search(r"`POKEWATCH_REQUEST_TIMEOUT_S` \| `12.5`", after)


def test_every_key_and_command_is_in_the_reference() -> None:
    from contracts import keys

    key_page = (reference.OUT / "redis-keys.md").read_text(encoding="utf-8")
    assert all(f"`{stream}`" in key_page for stream in keys.STREAMS)
    cli_page = (reference.OUT / "cli.md").read_text(encoding="utf-8")
    for command in ("pokewatch up", "pokewatch pipeline run", "pokewatch model challenger", "pokewatch watch add"):
        assert f"## `{command}`" in cli_page, command


def test_the_committed_architecture_diagram_is_what_its_script_draws() -> None:
    from tools import diagram

    assert diagram.OUT.read_text(encoding="utf-8") == diagram.draw(), "run `python -m tools.diagram`"
    for stream in ("predict", "quotes", "shadow-quotes", "signal-changes", "price-updates", "alerts", "model-events"):
        assert f">{stream}<" in diagram.draw(), stream
