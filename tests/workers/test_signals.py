from __future__ import annotations

import numpy as np
import pytest

from workers.signals import SignalRule, decide


def test_thresholds_are_inclusive_and_configurable():
    market = np.array([90.0, 91.0, 115.0, 114.0, 100.0])
    fair = np.full(5, 100.0)
    assert decide(market, fair).tolist() == ["BUY", "HOLD", "SELL", "HOLD", "HOLD"]
    assert decide(market, fair, SignalRule(buy=0.05, sell=0.10)).tolist() == [
        "BUY",
        "BUY",
        "SELL",
        "SELL",
        "HOLD",
    ]


def test_the_volatility_rule_judges_each_card_on_its_own_scale():
    from workers.signals import SignalPolicy, directions

    move = np.log(np.array([1.03, 1.03, 0.97, 1.01]))  # fair 3% above, 3% above, 3% below, 1% above
    typical = np.array([0.01, 0.05, 0.01, 0.01])  # a smooth card, a noisy one, smooth, smooth
    way = directions(move, typical, SignalPolicy("volatility", k=2.0))
    assert way.tolist() == [1.0, 0.0, -1.0, 0.0], "3% is 3 typical moves of a smooth card, 0.6 of a noisy one"
    assert directions(move, typical, SignalPolicy("fixed")).tolist() == [0.0] * 4, "none is 10% / 15% away"
    assert directions(move, typical, SignalPolicy("none")).tolist() == [0.0] * 4


def test_a_signal_fires_only_where_the_expected_move_clears_the_fee():
    from workers.signals import SignalPolicy, directions

    fair = np.array([130.0, 112.0, 70.0, 86.0])  # market 100: BUY +30%, BUY +12%, SELL -30%, SELL -14%
    move = np.log(fair / 100.0)
    policy = SignalPolicy("fixed")
    assert directions(move, np.ones(4), policy).tolist() == [1.0, 1.0, -1.0, -1.0]
    assert directions(move, np.ones(4), policy, fee=0.15).tolist() == [1.0, 0.0, -1.0, 0.0]


def test_the_reason_says_what_decided():
    from workers.signals import SignalPolicy, explain

    rule = SignalRule()
    vol = explain(np.log(1.03), np.log(0.99), np.log(1.05), 0.01, 1.0, SignalPolicy("volatility", 2.0), rule, 0.0)
    assert vol.startswith("BUY: expected move +3.0% [-1.0%, +5.0%]") and "3.0 typical moves of 1.0%" in vol
    blocked = explain(np.log(1.12), 0.0, np.log(1.2), 0.01, 0.0, SignalPolicy("fixed"), rule, 0.15, before_fee=1.0)
    assert blocked.startswith("HOLD") and "does not clear the 15% trade fee" in blocked
    none = explain(0.05, 0.0, 0.1, 0.01, 0.0, SignalPolicy("none", reason="no rule was right 55% of the time"), rule, 0)
    assert none.startswith("HOLD: no signal rule validated") and "55%" in none


def test_the_probability_rule_fires_on_a_likely_move_towards_fair():
    from workers.signals import SignalPolicy, directions, explain

    move = np.log(np.array([1.02, 1.02, 0.98, 0.98]))
    up = np.array([0.70, 0.50, 0.10, 0.70])
    down = np.array([0.10, 0.30, 0.75, 0.10])
    policy = SignalPolicy("probability", k=0.65)
    # A likely rise with fair above: BUY; a likely fall with fair below: SELL; a likely rise with fair below: HOLD.
    assert directions(move, np.ones(4), policy, up=up, down=down).tolist() == [1.0, 0.0, -1.0, 0.0]
    assert directions(move, np.ones(4), policy).tolist() == [0.0] * 4, "no chances, no probability signal"
    why = explain(move[0], 0.0, 0.05, 0.01, 1.0, policy, SignalRule(), 0.0, 0.70, 0.10)
    assert why.startswith("BUY") and "chance higher 70%, lower 10%" in why and "65%" in why


def test_the_one_line_rules_follow_or_fade_the_recent_move_at_their_threshold():
    from workers.signals import SignalPolicy, confidence, directions

    past = np.log1p(np.array([0.05, -0.05, 0.01, np.nan]))
    zero = np.zeros(4)
    assert directions(zero, np.ones(4), SignalPolicy("momentum", 0.03), past=past).tolist() == [1.0, -1.0, 0.0, 0.0]
    assert directions(zero, np.ones(4), SignalPolicy("reversion", 0.03), past=past).tolist() == [-1.0, 1.0, 0.0, 0.0]
    assert directions(zero, np.ones(4), SignalPolicy("momentum", 0.03)).tolist() == [0.0] * 4, "no moves, no signal"
    # Every rule ranks rows by its own confidence; the fixed rule's is the gap in multiples of its threshold.
    score, side = confidence("fixed", np.log(np.array([1 / 0.8, 1 / 1.3])), np.ones(2))
    assert score == pytest.approx([2.0, 2.0]) and side.tolist() == [1.0, -1.0]
    assert directions(np.log(np.array([1 / 0.85])), np.ones(1), SignalPolicy("fixed", 2.0)).tolist() == [0.0]
