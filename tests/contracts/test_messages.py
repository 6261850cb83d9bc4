"""Message contracts: versions, limits and the discriminated result lists."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from contracts import keys
from contracts.messages import MAX_BATCH, ItemError, PredictRequest, PriceQuotes, Quote, Reply
from tests.factories import make_quote


def _request(**over):
    body = {"request_id": "r1", "reply_to": keys.reply_channel("g1"), "deadline": 2e9, "items": [{"card_id": "c1"}]}
    body.update(over)
    return json.dumps(body)


def test_request_round_trips_through_json() -> None:
    req = PredictRequest.model_validate_json(_request(items=[{"card_id": "c1", "date": "2024-06-01"}]))
    again = PredictRequest.model_validate_json(req.model_dump_json())
    assert again == req
    assert again.schema_version == 1
    assert str(again.items[0].date) == "2024-06-01"


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (_request(schema_version=2), "schema_version"),
        (_request(items=[]), "items"),
        (_request(items=[{"card_id": "c"}] * (MAX_BATCH + 1)), "items"),
        (_request(items=[{"card_id": ""}]), "card_id"),
        (_request(deadline="soon"), "deadline"),
        (_request(unexpected=1), "unexpected"),
        ("{not json", "json"),
    ],
)
def test_bad_requests_are_rejected_with_the_field_named(payload: str, needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        PredictRequest.model_validate_json(payload)
    assert needle in str(err.value).lower()


def test_result_lists_keep_quotes_and_errors_apart() -> None:
    quote = make_quote(market=10, fair=12, model_version="3")
    missing = ItemError(card_id="c2", status=404, error="unknown card 'c2'")
    msg = PriceQuotes(request_id="r", reply_to="ch", deadline=1.0, results=[quote, missing])
    back = PriceQuotes.model_validate_json(msg.model_dump_json())
    assert isinstance(back.results[0], Quote) and isinstance(back.results[1], ItemError)
    assert back.results[1].status == 404


def test_reply_rejects_an_unknown_result_kind() -> None:
    with pytest.raises(ValidationError):
        Reply.model_validate_json(json.dumps({"request_id": "r", "results": [{"kind": "other"}]}))


def test_every_key_constant_is_documented() -> None:
    """Each `pokewatch:` name in contracts/keys.py is a documented key, or the fixed part of a documented family."""
    names = [v for k, v in vars(keys).items() if k.isupper() and isinstance(v, str) and v.startswith(keys.PREFIX + ":")]
    documented = [d.key for d in keys.DOCUMENTED]
    assert len(names) >= 20 and len(set(documented)) == len(documented)
    for name in names:
        families = [d for d in documented if "<" in d and (d.startswith(name) or name.startswith(d.split("<")[0]))]
        assert name in documented or families, f"{name} is not in keys.DOCUMENTED"
    assert set(keys.STREAMS) <= set(documented)
