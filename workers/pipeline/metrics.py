"""Forecast and signal metrics, including the card-resampled interval."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workers.signals import BUY, SELL


def ape_of_returns(pred_ret: np.ndarray, true_ret: np.ndarray) -> np.ndarray:
    """Absolute percentage error of the forecast price, from log-returns.

    |p*e^pred - p*e^true| / (p*e^true) = |e^(pred - true) - 1|.
    """
    return np.abs(np.expm1(np.asarray(pred_ret) - np.asarray(true_ret)))


def mape_of_returns(pred_ret: np.ndarray, true_ret: np.ndarray) -> float:
    return float(np.mean(ape_of_returns(pred_ret, true_ret)))


def forecast_metrics(pred_ret: np.ndarray, true_ret: np.ndarray) -> dict[str, float]:
    """MAPE, MdAPE (both in %) and RMSE of the log price.

    Args:
        pred_ret: forecast log-returns.
        true_ret: realised log-returns at the same horizon.

    Returns:
        {"mape", "mdape", "rmse_log"}.
    """
    ape = ape_of_returns(pred_ret, true_ret)
    err = np.asarray(pred_ret) - np.asarray(true_ret)
    return {
        "mape": float(np.mean(ape) * 100),
        "mdape": float(np.median(ape) * 100),
        "rmse_log": float(np.sqrt(np.mean(err**2))),
    }


def signal_metrics(signals: np.ndarray, fwd_ret: np.ndarray) -> dict[str, float]:
    """Backtest of BUY/SELL/HOLD against the realised forward log-return.

    A BUY hits when the price rose, a SELL when it fell; an unchanged price
    (common: no sale, price carried forward) is a flat outcome, counted as a
    miss and reported separately as `flat_rate`.

    Returns:
        signal_rate, buy_rate, sell_rate, hit_rate, flat_rate, fwd_return_buy,
        fwd_return_sell, spread (mean forward return after BUY minus after SELL),
        n_signals. Rates are fractions; returns are simple returns.
    """
    signals = np.asarray(signals)
    fwd = np.expm1(np.asarray(fwd_ret, dtype="float64"))
    buy, sell = signals == BUY, signals == SELL
    acted = buy | sell
    n = int(acted.sum())
    hits = int((buy & (fwd > 0)).sum() + (sell & (fwd < 0)).sum())
    fwd_buy = float(fwd[buy].mean()) if buy.any() else float("nan")
    fwd_sell = float(fwd[sell].mean()) if sell.any() else float("nan")
    return {
        "signal_rate": float(acted.mean()) if len(signals) else 0.0,
        "buy_rate": float(buy.mean()) if len(signals) else 0.0,
        "sell_rate": float(sell.mean()) if len(signals) else 0.0,
        "hit_rate": hits / n if n else float("nan"),
        "flat_rate": float((fwd[acted] == 0).mean()) if n else float("nan"),
        "fwd_return_buy": fwd_buy,
        "fwd_return_sell": fwd_sell,
        "spread": fwd_buy - fwd_sell if buy.any() and sell.any() else float("nan"),
        "n_signals": n,
    }


def card_bootstrap_improvement(
    card_ids: np.ndarray,
    ape_model: np.ndarray,
    ape_base: np.ndarray,
    n_boot: int = 1000,
    level: float = 0.90,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Relative MAPE improvement of model over base, with a card-resampled interval.

    Whole cards are resampled with replacement, so the interval reflects that
    rows of one card are not independent.

    Args:
        card_ids: card of every evaluated row.
        ape_model: the model's absolute percentage errors per row.
        ape_base: the baseline's, same rows.
        n_boot: bootstrap replicates.
        level: interval coverage.
        seed: RNG seed, for reproducible intervals.

    Returns:
        (point, low, high), each 1 - MAPE_model / MAPE_base.
    """
    codes, _ = pd.factorize(pd.Series(card_ids))
    n_cards = int(codes.max()) + 1
    sum_model = np.bincount(codes, weights=ape_model, minlength=n_cards)
    sum_base = np.bincount(codes, weights=ape_base, minlength=n_cards)
    point = 1.0 - sum_model.sum() / sum_base.sum()
    rng = np.random.default_rng(seed)
    improvements = np.empty(n_boot)
    chunk = 100
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        idx = rng.integers(0, n_cards, size=(size, n_cards))
        improvements[start : start + size] = 1.0 - sum_model[idx].sum(axis=1) / sum_base[idx].sum(axis=1)
    alpha = (1.0 - level) / 2
    low, high = np.quantile(improvements, [alpha, 1 - alpha])
    return float(point), float(low), float(high)
