from __future__ import annotations

import numpy as np

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
