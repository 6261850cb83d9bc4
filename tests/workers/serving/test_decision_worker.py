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


def test_each_signal_says_how_its_rule_did_and_what_the_chart_alone_says() -> None:
    from contracts.messages import SignalBasis

    rose = make_quote("rose", 100.0, 104.0).model_copy(update={"typical_move": 0.01, "recent_move": 0.05})
    fell = make_quote("fell", 100.0, 104.0).model_copy(update={"typical_move": 0.01, "recent_move": -0.01})
    basis = SignalBasis(
        rule="volatility", k=2.0, hit_rate=0.66, fire_rate=0.03, baseline="momentum", baseline_hit_rate=0.55,
        baseline_k=0.04, horizon=7,
    )  # fmt: skip
    up, down = decide_quotes([rose, fell], "r", SignalRule(0.1, 0.15), basis)
    assert (up.signal, up.rule_hit_rate, up.rule_fire_rate, up.one_line_rule) == ("BUY", 0.66, 0.03, "momentum")
    # Momentum fires at moves of 4% or more: the 5.1% rise says BUY, the 1% fall says nothing.
    assert (up.one_line_signal, down.one_line_signal) == ("BUY", "HOLD")
    assert up.recent_move_pct == pytest.approx(5.127, abs=1e-3)
    assert "right 66% of the time" in up.reason and "momentum at that rate" in up.reason
    assert "rose 5.1% over 7 observations" in up.reason and "fell 1.0% over 7 observations" in down.reason


def test_a_one_line_rule_that_shipped_decides_by_the_cards_recent_move_and_says_so() -> None:
    from contracts.messages import SignalBasis

    quotes = [
        make_quote(card, 100.0, 100.0).model_copy(update={"recent_move": move})
        for card, move in (("up", 0.041), ("down", -0.06), ("flat", 0.01), ("new", None))
    ]
    basis = SignalBasis(rule="reversion", k=0.03, hit_rate=0.68, fire_rate=0.021, horizon=7)
    out = decide_quotes(quotes, "r", SignalRule(0.1, 0.15), basis)
    assert [r.signal for r in out] == ["SELL", "BUY", "HOLD", "HOLD"]
    assert {r.one_line_rule for r in out} == {"reversion"} and out[0].one_line_signal == "SELL"
    assert out[0].reason.startswith("SELL: rose 4.2% over 7 observations; reversion rule")
    assert "turned back 68% of the time" in out[0].reason and "no price 7 observations back" in out[3].reason
