"""The AsyncAPI document: generated from the code, complete, valid, served by the gateway."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts import keys

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "contracts" / "asyncapi.json"
SCHEMA = ROOT / ".cache" / "asyncapi-specs" / "package" / "schemas" / "3.0.0-without-$id.json"


def test_every_stream_constant_is_in_the_streams_list() -> None:
    constants = {v for k, v in vars(keys).items() if k.endswith("_STREAM") and isinstance(v, str)}
    assert constants == set(keys.STREAMS), "add the new stream to keys.STREAMS (and to workers.asyncapi.FLOWS)"


def test_the_committed_document_is_the_generated_one() -> None:
    from workers.asyncapi import render

    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "contracts/asyncapi.json is stale: run `pokewatch asyncapi --out contracts/asyncapi.json`"
    )


def test_the_document_lists_every_stream_its_groups_and_messages() -> None:
    doc = json.loads(COMMITTED.read_text(encoding="utf-8"))
    channels = list(doc["channels"].values())
    addresses = {c["address"] for c in channels}
    assert set(keys.STREAMS) <= addresses, set(keys.STREAMS) - addresses
    groups = {(c["address"], c["bindings"]["redis"].get("groupName")) for c in channels}
    expected = {*keys.GROUPS.items(), *keys.NOTIFY_GROUPS.items()}
    assert expected <= groups, expected - groups
    schemas = doc["components"]["schemas"]
    for name in ("PredictRequest", "PriceQuotes", "SignalDecided", "SignalChanged", "PriceUpdated", "Alert", "Reply"):
        assert schemas[name]["properties"], name
    assert keys.reply_channel("*") in addresses


def test_the_document_validates_against_the_asyncapi_3_schema() -> None:
    import jsonschema

    if not SCHEMA.exists():
        pytest.skip("AsyncAPI JSON Schema not downloaded: run `make asyncapi-schema` (make test does)")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    doc = json.loads(COMMITTED.read_text(encoding="utf-8"))
    errors = [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(doc)]
    assert errors == []
    broken = {**doc, "channels": {"x": {"address": 5}}}
    assert list(validator.iter_errors(broken)), "the validator does refuse a broken document"
