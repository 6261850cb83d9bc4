"""The fair price: a value level for signals, and the choice between its candidates.

A next-step forecast almost never sits 10-15% away from the market, so it
cannot drive BUY/SELL. PokeWatch's fair price is a *value level*, from one of
three candidates chosen on a held-out slice of the training window:

- `gbm`: the expected mean of the card's next `fair_horizon` prices (8 by
  default), forecast by a squared-error GBM (workers.pipeline.models.gbm).
  The mean (not the median) is the point: after a thin-volume spike the
  typical next print is unchanged, but the expected level is well below it;
- `reversion`: for a card that trades (its price moved on at least half of
  its last 10 observations) the mean of its last 3 prices, else the market;
- `forecast`: the shipped h-step forecast itself. Signals are judged by the
  move over the horizon, and on a market where the level over 8 steps says
  little about the next one the forecast is the better-aimed candidate.

Each candidate is tried with each signal rule (workers.signals): the fixed
thresholds, the volatility rule at each k of VOLATILITY_KS and the
probability rule at each chance of PROBABILITY_KS. A pair qualifies on the
held-out dates when it fires on at least MIN_SIGNAL_SHARE of the rows (and
MIN_VALIDATION_SIGNALS signals), its signals are right at least MIN_HIT_RATE
+ HIT_MARGIN of the time, and their mean realised move in the signal's
direction clears the trade fee. The qualifying pair with the largest total
edge net of the fee ships (what a trader following every signal would have
made). If none qualifies the fair level still ships (the GBM's where it could
be fitted) with the rule `none`: every card HOLDs and says why.

Thresholds of the choice are the product's goals, not tuned numbers: a
signal right less than 55% of the time is not worth a fee, and one that
fires on fewer than 1 in 200 card-days tells a collector nothing. The margin
is for what changes between the validation dates and the dates the model
then serves: a rule's hit rate fell by 2-5 points from one to the next in
rolling backtests on every shared feed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workers.signals import SignalPolicy, SignalRule, directions

MIN_VALIDATION_SIGNALS = 20
MIN_SIGNAL_SHARE = 0.005
MIN_HIT_RATE = 0.55
HIT_MARGIN = 0.05
VOLATILITY_KS = (1.0, 1.5, 2.0, 3.0)
PROBABILITY_KS = (0.55, 0.6, 0.65, 0.7, 0.8)


FAIR_PARAMS: dict[str, Any] = {"min_samples_leaf": 100}
# A card whose price moved on at least this share of its last 10 observations
# trades often enough for a dislocation to be corrected by the next sales.
REVERSION_MIN_CHANGE_SHARE = 0.5


def reversion_fair(frame: pd.DataFrame) -> np.ndarray:
    """The fair level of a liquid card is the mean of its last 3 prices; else the market.

    The mean of the last 3 (the original rule) fires on one-off prints, but
    on a card that rarely trades the next observation is usually the same
    price carried forward, so the signal cannot come true. Restricting it to
    cards that trade lifts its hit rate and forward-return spread on both
    real feeds; it ships where it beats the GBM fair level on validation.
    """
    liquid = frame["change_share_10"].to_numpy() >= REVERSION_MIN_CHANGE_SHARE
    return np.where(liquid, frame["mean_rel_3"].to_numpy(dtype="float64"), 0.0)


def signal_edge(
    way: np.ndarray, realised: np.ndarray, fee: float = 0.0, dates: np.ndarray | None = None
) -> dict[str, float]:
    """How the signals `way` (+1 BUY, -1 SELL, 0 HOLD) did against the realised moves.

    Args:
        way: directions of the signals.
        realised: the next h-step log moves of the market.
        fee: the trade fee (fraction), taken off every signal's gain.
        dates: integer codes of the rows' dates, for the date-resampled hit rate.

    Returns:
        n, rate, hit_rate, hit_low (the 10th percentile of the hit rate over
        resampled dates: signals on one day share one market move), mean_edge
        (mean simple gain in the signal's direction, before the fee),
        total_net (sum of gains net of the fee) and spread (mean simple move
        after BUY minus after SELL; NaN unless both fired).
    """
    acted = way != 0
    n = int(acted.sum())
    if not n:
        return {
            "n": 0, "rate": 0.0, "hit_rate": 0.0, "hit_low": 0.0, "mean_edge": 0.0, "total_net": 0.0,
            "spread": float("nan"),
        }  # fmt: skip
    move = np.expm1(realised)
    gain = np.where(way[acted] > 0, move[acted], -move[acted])
    hit = float(np.mean(gain > 0))
    buys, sells = way > 0, way < 0
    return {
        "n": n,
        "rate": n / len(way),
        "hit_rate": hit,
        "hit_low": hit if dates is None else _date_resampled_low(dates[acted], gain > 0),
        "mean_edge": float(gain.mean()),
        "total_net": float((gain - fee).sum()),
        "spread": float(move[buys].mean() - move[sells].mean()) if buys.any() and sells.any() else float("nan"),
    }


def _date_resampled_low(dates: np.ndarray, hits: np.ndarray, n_boot: int = 200) -> float:
    """10th percentile of the hit rate when whole dates are resampled with replacement."""
    codes, _ = pd.factorize(pd.Series(dates))
    n_dates = int(codes.max()) + 1
    hit_sum = np.bincount(codes, weights=hits.astype("float64"), minlength=n_dates)
    count = np.bincount(codes, minlength=n_dates).astype("float64")
    idx = np.random.default_rng(0).integers(0, n_dates, size=(n_boot, n_dates))
    rates = hit_sum[idx].sum(axis=1) / np.maximum(count[idx].sum(axis=1), 1.0)
    return float(np.quantile(rates, 0.10))


def pair_key(fair: str, policy: SignalPolicy) -> str:
    """How a (fair candidate, rule) pair is named in the validation table: "gbm/volatility@2"."""
    return f"{fair}/{policy.rule}" + (f"@{policy.k:g}" if policy.k else "")


def _qualifies(edge: dict[str, float], n_rows: int, fee: float) -> bool:
    return (
        edge["n"] >= max(MIN_VALIDATION_SIGNALS, MIN_SIGNAL_SHARE * n_rows)
        and edge["hit_rate"] >= MIN_HIT_RATE + HIT_MARGIN
        and edge["hit_low"] >= MIN_HIT_RATE
        and edge["mean_edge"] > fee
        # Where both fire, a BUY must be followed by a higher move than a SELL:
        # many small right SELLs must not hide BUYs that lose.
        and not edge["spread"] <= 0
    )


def choose_signals(
    candidates: dict[str, np.ndarray],
    typical: np.ndarray,
    realised: np.ndarray,
    rule: SignalRule,
    fee: float = 0.0,
    chances: tuple[np.ndarray, np.ndarray] | None = None,
    dates: np.ndarray | None = None,
) -> tuple[str, SignalPolicy, dict[str, dict[str, float]]]:
    """The fair candidate and signal rule to ship, and every pair's validation figures.

    Args:
        candidates: name -> fair prices (log ratios) on the validation rows;
            the first is the level shipped when no pair qualifies.
        typical: the rows' typical moves (workers.signals.typical_move).
        realised: the validation rows' next h-step log moves.
        rule: the fixed thresholds in force.
        fee: the trade fee in force.
        chances: the rows' chances of a higher / lower price (None: no probability rule).
        dates: the rows' dates (None: the hit rate is not resampled by date).
    """
    policies = [SignalPolicy("fixed")] + [SignalPolicy("volatility", k) for k in VOLATILITY_KS]
    if chances is not None:
        policies += [SignalPolicy("probability", k) for k in PROBABILITY_KS]
    up, down = chances if chances is not None else (None, None)
    table: dict[str, dict[str, float]] = {}
    best: tuple[float, str, str, SignalPolicy] | None = None
    for name, fair in candidates.items():
        for policy in policies:
            key = pair_key(name, policy)
            edge = signal_edge(directions(fair, typical, policy, rule, fee, up, down), realised, fee, dates)
            table[key] = edge
            if _qualifies(edge, len(realised), fee) and (best is None or edge["total_net"] > best[0]):
                best = (edge["total_net"], key, name, policy)
    if best is None:
        most = max(table, key=lambda k: table[k]["n"])
        reason = (
            f"on {len(realised)} validation rows no rule fired on >= {MIN_SIGNAL_SHARE:.1%} of them "
            f"with >= {MIN_HIT_RATE + HIT_MARGIN:.0%} right, a mean move above the {fee:.0%} fee "
            "and BUYs followed by higher moves than SELLs"
            + (
                f" (most signals: {most}, {table[most]['n']}, {table[most]['hit_rate']:.0%} right)"
                if table[most]["n"]
                else " (none fired at all)"
            )
        )
        return next(iter(candidates)), SignalPolicy("none", reason=reason), table
    _, key, name, policy = best
    e = table[key]
    reason = (
        f"validated on {len(realised)} rows: {e['n']} signals ({e['rate']:.1%}), "
        f"{e['hit_rate']:.0%} right, mean move {e['mean_edge']:+.2%} in their direction"
    )
    return name, SignalPolicy(policy.rule, policy.k, reason), table
