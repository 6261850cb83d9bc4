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
- `momentum` / `reversion`: the one-line rules a collector can read off the
  chart: the card's move over the last h observations continues (momentum)
  or turns back (reversion), firing where that move is at least `k` (log
  units). They are the baselines every model rule must beat at the same
  fire rate, and ship themselves where they clear the goal on a market and
  no model rule beats them;
- `none`: no rule validated; every card HOLDs, with the reason.

Every rule fires where its own confidence (`confidence`) reaches `k`: the
pipeline sets `k` on validation so that the rule fires on the most confident
few card-days only (POKEWATCH_MAX_SIGNAL_SHARE, workers.pipeline.models.fair).

With a trade fee (POKEWATCH_TRADE_FEE, a fraction, default 0) a signal fires
only where the expected move clears it: a BUY needs fair/market - 1 > fee, a
SELL needs 1 - fair/market > fee.

The decision worker, the walk-forward evaluation, the live champion scores
and the rule choice all call `directions` / `decide`, so what is chosen, what
is measured and what is served follow one rule.

Why over 300 lines: the rules and the sentences that explain them are kept
side by side, so what fires and what a user reads cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

BUY = "BUY"
SELL = "SELL"
HOLD = "HOLD"

RuleKind = Literal["fixed", "volatility", "probability", "momentum", "reversion", "none"]
# The rules read off the card's own recent move, not off a model.
ONE_LINE_RULES: tuple[RuleKind, ...] = ("momentum", "reversion")

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
    """The rule a model version ships with, why it was chosen and how it did on validation.

    `k` is where the rule fires on its confidence (`confidence`): the fixed
    rule's multiple of its thresholds (None: 1), the volatility rule's typical
    moves, the probability rule's least chance, a one-line rule's least recent
    move (log units). The fixed rule's thresholds and the fee are the
    deployment's (SignalRule, fee), not the model's.

    The validation figures let every reply say how far to trust the signal:
    how often the rule was right and how often it fired, and what the better
    one-line rule (`baseline`, firing where the recent move is at least
    `baseline_k`) did at the same rate.
    """

    rule: RuleKind = "fixed"
    k: float | None = None
    reason: str = ""
    hit_rate: float | None = None
    fire_rate: float | None = None
    baseline: str | None = None
    baseline_hit_rate: float | None = None
    baseline_k: float | None = None
    horizon: int = 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, value: dict[str, Any] | None) -> SignalPolicy:
        """The policy recorded in a model's choice; a model without one used the fixed rule."""
        if not value:
            return cls()
        known = {f: value[f] for f in cls.__dataclass_fields__ if f in value}
        return cls(**known)


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


def confidence(
    kind: str,
    move: np.ndarray,
    typical: np.ndarray,
    rule: SignalRule = DEFAULT_RULE,
    up: np.ndarray | None = None,
    down: np.ndarray | None = None,
    past: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """How sure a rule is of each row, and which way it would point: (score, side).

    A rule with threshold k fires where score >= k, BUY where side is +1 and SELL
    where it is -1. The scores: the fixed rule's gap to fair in multiples of its
    threshold on that side; the volatility rule's gap in typical moves; the
    probability rule's chance of a move towards fair; a one-line rule's recent
    move (its size; momentum follows its sign, reversion goes against it).

    Args:
        kind: the rule.
        move: expected moves to fair, log(fair / market).
        typical: the cards' typical moves (typical_move).
        rule: the fixed thresholds.
        up, down: chances of a higher / lower price (the probability rule; None: it never fires).
        past: the cards' moves over the last h observations, log units (the one-line rules; NaN: unknown).
    """
    move = np.asarray(move, dtype="float64")
    side = np.sign(move)
    zero = np.zeros(move.shape)
    if kind == "fixed":
        dev = np.exp(-move) - 1.0  # market / fair - 1
        score = np.where(move > 0, -dev / rule.buy, np.where(move < 0, dev / rule.sell, 0.0))
    elif kind == "volatility":
        score = np.abs(move) / np.asarray(typical, dtype="float64")
    elif kind == "probability" and up is not None and down is not None:
        up, down = np.asarray(up, dtype="float64"), np.asarray(down, dtype="float64")
        score = np.where(move > 0, up, np.where(move < 0, down, 0.0))
    elif kind in ONE_LINE_RULES and past is not None:
        recent = np.nan_to_num(np.asarray(past, dtype="float64"), nan=0.0)
        score = np.abs(recent)
        side = np.sign(recent) if kind == "momentum" else -np.sign(recent)
    else:
        return zero, zero
    return score, side


def directions(
    move: np.ndarray,
    typical: np.ndarray,
    policy: SignalPolicy = FIXED,
    rule: SignalRule = DEFAULT_RULE,
    fee: float = 0.0,
    up: np.ndarray | None = None,
    down: np.ndarray | None = None,
    past: np.ndarray | None = None,
) -> np.ndarray:
    """+1 where BUY fires, -1 where SELL fires, 0 on HOLD.

    Args:
        move: expected moves to fair, log(fair / market).
        typical: the cards' typical moves (typical_move), same shape.
        policy: which rule, and its k.
        rule: the fixed thresholds.
        fee: the trade fee the expected move must clear (fraction). A one-line
            rule has no expected move of its own: it was chosen only where its
            mean move on validation cleared the fee.
        up, down: chances of a higher / lower price after the horizon
            (the probability rule; without them it never fires).
        past: the cards' moves over the last h observations (the one-line rules).
    """
    move = np.asarray(move, dtype="float64")
    score, side = confidence(policy.rule, move, typical, rule, up, down, past)
    k = policy.k if policy.k is not None else (1.0 if policy.rule == "fixed" else float("inf"))
    # A tiny tolerance keeps "exactly 10% under" a BUY despite float rounding.
    eps = 1e-9
    way = np.where((score >= k - eps) & (score > 0), side, 0.0)
    if fee > 0 and policy.rule not in ONE_LINE_RULES:
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


def moved(past: float | None, horizon: int) -> str:
    """ "rose 4.1% over 7 observations": a card's recent move as a collector reads it off the chart."""
    if past is None or not np.isfinite(past):
        return f"no price {horizon} observation{'s' if horizon > 1 else ''} back"
    span = f"over {horizon} observation{'s' if horizon > 1 else ''}"
    pct = abs(np.expm1(past)) * 100
    if past == 0:
        return f"unchanged {span}"
    return f"{'rose' if past > 0 else 'fell'} {pct:.1f}% {span}"


def _track_record(policy: SignalPolicy) -> str:
    """ "right 64% of the time on validation, firing on 3.2% of card-days"."""
    if policy.hit_rate is None:
        return ""
    rate = f", firing on {policy.fire_rate:.1%} of card-days" if policy.fire_rate is not None else ""
    return f"; on validation right {policy.hit_rate:.0%} of the time{rate}"


def _one_line_says(policy: SignalPolicy, past: float | None) -> str:
    """What the better one-line rule at the shipped rule's rate says for this card."""
    if policy.baseline not in ONE_LINE_RULES or policy.baseline_k is None or policy.baseline_hit_rate is None:
        return ""
    kind = policy.baseline
    way = directions(np.zeros(1), np.ones(1), SignalPolicy(kind, policy.baseline_k), past=np.array([past]))  # type: ignore[arg-type]
    verdict = BUY if way[0] > 0 else SELL if way[0] < 0 else HOLD
    trigger = f"fires at moves of {np.expm1(policy.baseline_k) * 100:.1f}%"
    return (
        f"; {kind} at that rate ({trigger}) was right {policy.baseline_hit_rate:.0%}"
        f" and says {verdict} here ({moved(past, policy.horizon)})"
    )


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
    past: float | None = None,
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
        past: the card's move over the last h observations (log units; None: unknown).
    """
    pct = f"expected move {np.expm1(move) * 100:+.1f}% [{np.expm1(low) * 100:+.1f}%, {np.expm1(high) * 100:+.1f}%]"
    verdict = BUY if way > 0 else SELL if way < 0 else HOLD
    if policy.rule == "none":
        return f"HOLD: no signal rule validated for this model ({policy.reason}); {pct}"
    if policy.rule in ONE_LINE_RULES:
        went = "continued" if policy.rule == "momentum" else "turned back"
        hit = f"{policy.hit_rate:.0%}" if policy.hit_rate is not None else "most"
        rate = f", firing on {policy.fire_rate:.1%} of card-days" if policy.fire_rate is not None else ""
        return (
            f"{verdict}: {moved(past, policy.horizon)}; {policy.rule} rule, fires at moves of "
            f"{np.expm1(policy.k or 0.0) * 100:.1f}% or more: on this market such moves {went} "
            f"{hit} of the time on validation{rate}, and no model rule did better; model's {pct}"
        )
    k = policy.k if policy.k is not None else 1.0
    if policy.rule == "fixed":
        test = f"fixed rule: BUY at market >= {rule.buy * k:.0%} under fair, SELL at >= {rule.sell * k:.0%} over"
    elif policy.rule == "volatility":
        scale = f"{move / typical:+.1f} typical moves of {np.expm1(typical) * 100:.1f}%"
        test = f"volatility rule: {scale}, fires at {k:g}"
    else:
        odds = f"chance higher {up or 0:.0%}, lower {down or 0:.0%}"
        test = f"probability rule: {odds}, fires at {k:.0%} with fair on the same side"
    blocked = ""
    if way == 0 and fee > 0 and before_fee:
        blocked = f"; does not clear the {fee:.0%} trade fee"
    elif way != 0 and fee > 0:
        blocked = f"; clears the {fee:.0%} trade fee"
    return f"{verdict}: {pct}; {test}{blocked}{_track_record(policy)}{_one_line_says(policy, past)}"
