"""The decision rule applied to quotes: thresholds, deviation, errors passed through."""

from __future__ import annotations

import pytest

from contracts.messages import ItemError, Quote, SignalDecided
from tests.factories import make_quote
from workers.serving.decision_worker import decide_quotes
from workers.signals import SignalRule


def _quote(card: str, market: float, fair: float) -> Quote:
    return make_quote(card, market, fair, model_version="2")


def test_signals_follow_the_thresholds_and_keep_item_order() -> None:
    quotes = [
        _quote("buy", 90, 100),  # exactly 10% under fair
        ItemError(card_id="gone", status=404, error="unknown card 'gone'"),
        _quote("hold", 114, 100),
        _quote("sell", 115, 100),  # exactly 15% over fair
    ]
    out = decide_quotes(quotes, "req-1", SignalRule(buy=0.10, sell=0.15))
    assert [r.card_id for r in out] == ["buy", "gone", "hold", "sell"]
    decided = [r for r in out if isinstance(r, SignalDecided)]
    assert [r.signal for r in decided] == ["BUY", "HOLD", "SELL"]
    assert [r.deviation_pct for r in decided] == pytest.approx([-10.0, 14.0, 15.0])
    assert all(r.request_id == "req-1" and r.model_version == "2" for r in decided)
    assert isinstance(out[1], ItemError)


def test_thresholds_are_configurable() -> None:
    (strict,) = decide_quotes([_quote("c", 95, 100)], "r", SignalRule(buy=0.05, sell=0.15))
    (loose,) = decide_quotes([_quote("c", 95, 100)], "r", SignalRule(buy=0.10, sell=0.15))
    assert isinstance(strict, SignalDecided) and isinstance(loose, SignalDecided)
    assert (strict.signal, loose.signal) == ("BUY", "HOLD")


def test_only_errors_gives_only_errors() -> None:
    err = ItemError(card_id="x", status=404, error="unknown card 'x'")
    assert decide_quotes([err], "r", SignalRule(0.1, 0.15)) == [err]


def test_reply_json_is_the_reply_document_of_the_serialized_results() -> None:
    from contracts.messages import Reply
    from workers.serving.decision_worker import reply_json

    results = decide_quotes(
        [_quote("a", 80, 100), ItemError(card_id="b", status=404, error="unknown card 'b'")],
        "req-9",
        SignalRule(0.1, 0.15),
    )
    text = reply_json("req-9", [r.model_dump_json() for r in results])
    assert Reply.model_validate_json(text) == Reply(request_id="req-9", results=results)
    assert text == Reply(request_id="req-9", results=results).model_dump_json()


def test_the_model_versions_rule_decides_and_each_signal_says_why() -> None:
    from contracts.messages import SignalBasis

    smooth = make_quote("smooth", 100.0, 104.0).model_copy(update={"typical_move": 0.01})
    noisy = make_quote("noisy", 100.0, 104.0).model_copy(update={"typical_move": 0.08})
    basis = SignalBasis(rule="volatility", k=2.0, reason="validated")
    out = decide_quotes([smooth, noisy], "r", SignalRule(0.1, 0.15), basis)
    assert [(r.signal, r.rule) for r in out] == [("BUY", "volatility"), ("HOLD", "volatility")]
    assert out[0].expected_move_pct == pytest.approx(4.0) and out[0].typical_move_pct == pytest.approx(1.005, abs=1e-3)
    assert "typical moves" in out[0].reason and out[0].reason.startswith("BUY")
    # The same quotes with a 5% fee: a 4% expected move does not clear it.
    (fee_smooth, _) = decide_quotes([smooth, noisy], "r", SignalRule(0.1, 0.15), basis, fee=0.05)
    assert fee_smooth.signal == "HOLD" and "does not clear the 5% trade fee" in fee_smooth.reason
    (held,) = decide_quotes([smooth], "r", SignalRule(0.1, 0.15), SignalBasis(rule="none", reason="nothing validated"))
    assert (held.signal, held.rule) == ("HOLD", "none") and "nothing validated" in held.reason
