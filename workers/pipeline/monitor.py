"""Watching the champion live: its earlier forecasts scored against the prices that arrived since.

The champion was shipped with its serving state, each card's feature rows
up to its training day. Its forecast from each card's last row is the
forecast it has been serving; the prices collected since give the outcome
`horizon` observations later. Each pipeline run scores those (realized MAPE,
interval coverage, signal hits), logs them to MLflow with the collection day
as the step (one point per run: a time series across runs), and flags decay.

Decay: the realized MAPE is worse than the champion's own backtest MAPE
beyond the realized figure's sampling noise, i.e. the 5th percentile of its
card-resampled bootstrap is above the backtest. With few outcomes nothing is
flagged: noise, not decay.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from workers.pipeline.metrics import ape_of_returns, signal_metrics
from workers.pipeline.models.base import signal_directions
from workers.signals import SignalRule, labels

logger = logging.getLogger(__name__)

MIN_OUTCOMES = 30
N_BOOT = 500


def latest_forecasts(state: pd.DataFrame, model: Any, rule: SignalRule, fee: float = 0.0) -> pd.DataFrame:
    """The model's forecast from each card's last state row: card_id, date, ret, low, high, fair
    (log ratios) and `way`, its signal under the rule it ships with (+1 BUY, -1 SELL, 0 HOLD)."""
    last = state.sort_values("date").groupby("card_id", sort=False).tail(1)
    fc = model.predict(last)
    return pd.DataFrame(
        {
            "card_id": last["card_id"].to_numpy(),
            "date": pd.to_datetime(last["date"]).to_numpy(),
            "ret": fc.ret,
            "low": fc.low,
            "high": fc.high,
            "fair": fc.fair,
            "way": signal_directions(model, fc, rule, fee),
        }
    )


def outcomes(forecasts: pd.DataFrame, prices: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Each forecast with its realized log move: the card's price `horizon` observations after the
    forecast's date over the price on that date. Forecasts whose outcome has not arrived are dropped."""
    p = prices[["card_id", "date", "market_price"]].copy()
    p["date"] = pd.to_datetime(p["date"])
    p = p.sort_values(["card_id", "date"], kind="mergesort")
    p["step"] = p.groupby("card_id", sort=False).cumcount()
    origin = forecasts.merge(p, on=["card_id", "date"], how="inner")
    later = p.rename(columns={"date": "outcome_date", "market_price": "outcome_price", "step": "outcome_step"})
    origin["outcome_step"] = origin["step"] + horizon
    out = origin.merge(later, on=["card_id", "outcome_step"], how="inner")
    out["realized"] = np.log(out["outcome_price"].to_numpy() / out["market_price"].to_numpy())
    return out.drop(columns=["step", "outcome_step"])


def realized_metrics(scored: pd.DataFrame, backtest_mape: float | None) -> dict[str, Any]:
    """Realized MAPE (%), coverage, signal hits and the decay flag of scored forecasts (see `outcomes`)."""
    n = len(scored)
    if n == 0:
        return {"n": 0, "decay": False, "reason": "no outcome has arrived since the champion was trained"}
    y = scored["realized"].to_numpy()
    ape = ape_of_returns(scored["ret"].to_numpy(), y)
    inside = (y >= scored["low"].to_numpy()) & (y <= scored["high"].to_numpy())
    sig = signal_metrics(labels(scored["way"].to_numpy()), y)
    out: dict[str, Any] = {
        "n": n,
        "mape": 100 * float(ape.mean()),
        "coverage": float(inside.mean()),
        "signal_rate": sig["signal_rate"],
        "hit_rate": sig["hit_rate"],
        "backtest_mape": backtest_mape,
    }
    if n < MIN_OUTCOMES or backtest_mape is None:
        return {**out, "decay": False, "reason": f"{n} outcomes: too few to judge" if n < MIN_OUTCOMES else ""}
    cards, idx = np.unique(scored["card_id"].to_numpy(), return_inverse=True)
    per_card = np.bincount(idx, weights=ape) / np.bincount(idx)
    counts = np.bincount(idx)
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(cards), (N_BOOT, len(cards)))
    boot = 100 * (per_card[draws] * counts[draws]).sum(axis=1) / counts[draws].sum(axis=1)
    low = float(np.quantile(boot, 0.05))
    decay = low > backtest_mape
    out.update(mape_low=low, decay=decay)
    out["reason"] = f"realized MAPE {out['mape']:.3f}% (5th pct {low:.3f}%) vs backtest {backtest_mape:.3f}%: " + (
        "worse beyond noise" if decay else "within noise"
    )
    if decay:
        logger.warning("champion decay: %s", out["reason"])
    return out
