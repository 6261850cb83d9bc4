"""The BUY / SELL / HOLD rules and their defaults: the only place either is written.

Two rules, one of which each model version ships with (chosen per feed on
validation, workers.pipeline.models.fair):

- `fixed`: BUY when the market is >= `buy` under fair, SELL when it is >=
  `sell` over fair (POKEWATCH_BUY_THRESHOLD, POKEWATCH_SELL_THRESHOLD,
  10% and 15% by default);
- `volatility`: BUY / SELL when the expected move to fair is at least `k` of
  the card's typical moves over the horizon (its calibrated 80% band's
  half-width in standard deviations). A smooth card moving 0.3% a day and a
  noisy one moving 8% are then judged on their own scale;
- `probability`: BUY when the model gives at least `k` chance that the price
  is higher after the horizon and fair is above the market; SELL likewise
  for lower. A flat price counts against both, so on a market where most
  prices do not move from one week to the next this rule is the one that
  can be right more often than not;
- `none`: no rule validated; every card HOLDs, with the reason.

With a trade fee (POKEWATCH_TRADE_FEE, a fraction, default 0) a signal fires
only where the expected move clears it: a BUY needs fair/market - 1 > fee, a
SELL needs 1 - fair/market > fee.

The decision worker, the walk-forward evaluation, the live champion scores
and the rule choice all call `directions` / `decide`, so what is chosen, what
is measured and what is served follow one rule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

BUY = "BUY"
SELL = "SELL"
HOLD = "HOLD"

RuleKind = Literal["fixed", "volatility", "probability", "none"]

# z of the 90% quantile of a normal: an 80% band is +-Z80 standard deviations.
Z80 = 1.2816
# No card's typical move counts as less than this (log units): a price that
# has not moved for weeks has a near-zero band, and any gap would be "many
# typical moves" of nothing.
MIN_TYPICAL_MOVE = 0.005


@dataclass(frozen=True)
class SignalRule:
    """The fixed thresholds: BUY when the market is >= `buy` under fair, SELL when >= `sell` over.

    Fractions: 0.10 is 10%.
    """

    buy: float = 0.10
    sell: float = 0.15


DEFAULT_RULE = SignalRule()


@dataclass(frozen=True)
class SignalPolicy:
    """The rule a model version ships with, and why it was chosen.

    `k` is the volatility rule's threshold in typical moves, or the
    probability rule's least chance; the fixed rule's
    thresholds and the fee are the deployment's (SignalRule, fee), not the model's.
    """

    rule: RuleKind = "fixed"
    k: float | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, value: dict[str, Any] | None) -> SignalPolicy:
        """The policy recorded in a model's choice; a model without one used the fixed rule."""
        if not value:
            return cls()
        return cls(rule=value.get("rule", "fixed"), k=value.get("k"), reason=value.get("reason", ""))


FIXED = SignalPolicy()


def deviation(market: np.ndarray, fair: np.ndarray) -> np.ndarray:
    """Relative deviation of the market price from the fair price: market/fair - 1."""
    return np.asarray(market, dtype="float64") / np.asarray(fair, dtype="float64") - 1.0


def typical_move(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """A card's typical move over the horizon (log units): its 80% band's half-width in
    standard deviations, at least MIN_TYPICAL_MOVE.

    Args:
        low, high: the calibrated band as log ratios to the market price.
    """
    width = np.asarray(high, dtype="float64") - np.asarray(low, dtype="float64")
    return np.maximum(width / (2 * Z80), MIN_TYPICAL_MOVE)


def directions(
    move: np.ndarray,
    typical: np.ndarray,
    policy: SignalPolicy = FIXED,
    rule: SignalRule = DEFAULT_RULE,
    fee: float = 0.0,
    up: np.ndarray | None = None,
    down: np.ndarray | None = None,
) -> np.ndarray:
    """+1 where BUY fires, -1 where SELL fires, 0 on HOLD.

    Args:
        move: expected moves to fair, log(fair / market).
        typical: the cards' typical moves (typical_move), same shape.
        policy: which rule, and its k.
        rule: the fixed thresholds.
        fee: the trade fee the expected move must clear (fraction).
        up, down: chances of a higher / lower price after the horizon
            (the probability rule; without them it never fires).
    """
    move = np.asarray(move, dtype="float64")
    # A tiny tolerance keeps "exactly 10% under" a BUY despite float rounding.
    eps = 1e-9
    if policy.rule == "fixed":
        dev = np.exp(-move) - 1.0  # market / fair - 1
        way = np.where(dev <= -rule.buy + eps, 1.0, np.where(dev >= rule.sell - eps, -1.0, 0.0))
    elif policy.rule == "volatility":
        z = move / np.asarray(typical, dtype="float64")
        k = float(policy.k or 0.0)
        way = np.where(z >= k - eps, 1.0, np.where(z <= -k + eps, -1.0, 0.0))
    elif policy.rule == "probability" and up is not None and down is not None:
        k = float(policy.k or 1.0)
        up, down = np.asarray(up, dtype="float64"), np.asarray(down, dtype="float64")
        way = np.where((up >= k - eps) & (move > 0), 1.0, np.where((down >= k - eps) & (move < 0), -1.0, 0.0))
    else:
        way = np.zeros(move.shape)
    if fee > 0:
        gain = np.where(way > 0, np.expm1(move), -np.expm1(move))
        way = np.where(gain > fee, way, 0.0)
    return way


def labels(way: np.ndarray) -> np.ndarray:
    """ "BUY" / "SELL" / "HOLD" of directions."""
    way = np.asarray(way)
    return np.where(way > 0, BUY, np.where(way < 0, SELL, HOLD)).astype(object)


def decide(market: np.ndarray, fair: np.ndarray, rule: SignalRule = DEFAULT_RULE) -> np.ndarray:
    """The fixed rule's signal of each (market, fair) pair: an object array of "BUY" / "SELL" / "HOLD"."""
    move = np.log(np.asarray(fair, dtype="float64") / np.asarray(market, dtype="float64"))
    return labels(directions(move, np.ones_like(move), FIXED, rule))


def direction(fair_log_ratio: np.ndarray, rule: SignalRule = DEFAULT_RULE) -> np.ndarray:
    """The fixed rule's directions for fair prices given as log(fair / market)."""
    move = np.asarray(fair_log_ratio, dtype="float64")
    return directions(move, np.ones_like(move), FIXED, rule)


def explain(
    move: float,
    low: float,
    high: float,
    typical: float,
    way: float,
    policy: SignalPolicy,
    rule: SignalRule,
    fee: float,
    up: float | None = None,
    down: float | None = None,
    before_fee: float | None = None,
) -> str:
    """Why one card's signal is what it is, in a sentence a trader can check.

    Args:
        move, low, high: the expected move to fair and its interval (log units).
        typical: the card's typical move (log units).
        way: the signal's direction (see `directions`).
        policy, rule, fee: what decided it.
        up, down: the chances of a higher / lower price (the probability rule).
        before_fee: the direction the rule gave before the fee (None: the same as `way`),
            computed with the others by `directions(..., fee=0)`.
    """
    pct = f"expected move {np.expm1(move) * 100:+.1f}% [{np.expm1(low) * 100:+.1f}%, {np.expm1(high) * 100:+.1f}%]"
    if policy.rule == "none":
        return f"HOLD: no signal rule validated for this model ({policy.reason}); {pct}"
    if policy.rule == "fixed":
        test = f"fixed rule: BUY at market >= {rule.buy:.0%} under fair, SELL at >= {rule.sell:.0%} over"
    elif policy.rule == "volatility":
        scale = f"{move / typical:+.1f} typical moves of {np.expm1(typical) * 100:.1f}%"
        test = f"volatility rule: {scale}, fires at {policy.k:g}"
    else:
        odds = f"chance higher {up or 0:.0%}, lower {down or 0:.0%}"
        test = f"probability rule: {odds}, fires at {policy.k or 0:.0%} with fair on the same side"
    verdict = BUY if way > 0 else SELL if way < 0 else HOLD
    blocked = ""
    if way == 0 and fee > 0 and before_fee:
        blocked = f"; does not clear the {fee:.0%} trade fee"
    elif way != 0 and fee > 0:
        blocked = f"; clears the {fee:.0%} trade fee"
    return f"{verdict}: {pct}; {test}{blocked}"
