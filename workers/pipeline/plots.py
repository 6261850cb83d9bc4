"""The plots a person wants next to a model version."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workers.signals import BUY, HOLD, SELL, labels

MODELS = ("model", "naive", "rolling_mean_3")


def evaluation_figures(test: pd.DataFrame) -> dict[str, Any]:
    """Predicted vs actual, error distribution and signal mix on the test window.

    Args:
        test: evaluation rows with `target` and `pred_<model>` / `way_<model>`
            (each model's signals under the rule it shipped with).

    Returns:
        name -> matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sample = test.sample(min(len(test), 5000), random_state=0)
    actual = np.exp(sample["log_price"] + sample["target"])
    figs: dict[str, Any] = {}

    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(actual, np.exp(sample["log_price"] + sample["pred_model"]), s=4, alpha=0.4)
    lim = [actual.min(), actual.max()]
    ax.plot(lim, lim, color="black", linewidth=1)
    ax.set(xscale="log", yscale="log", xlabel="actual price", ylabel="forecast price", title="Forecast vs actual")
    figs["predicted_vs_actual"] = fig

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = [float(b) for b in np.linspace(0, 30, 61)]
    for name in MODELS:
        ape = 100 * np.abs(np.expm1(test[f"pred_{name}"] - test["target"]))
        ax.hist(np.clip(ape, 0, 30), bins=bins, histtype="step", label=f"{name} (MAPE {ape.mean():.2f}%)")
    ax.set(yscale="log", xlabel="absolute % error (clipped at 30)", ylabel="rows", title="Error distribution")
    ax.legend()
    figs["error_distribution"] = fig

    fig, ax = plt.subplots(figsize=(7, 4))
    kinds = [BUY, SELL, HOLD]
    width = 0.25
    for i, name in enumerate(MODELS):
        sig = labels(test[f"way_{name}"].to_numpy())
        shares = [100 * float(np.mean(sig == s)) for s in kinds]
        ax.bar(np.arange(3) + i * width, shares, width, label=name)
    ax.set_xticks(np.arange(3) + width, kinds)
    ax.set(yscale="log", ylabel="% of card-periods", title="Signal mix on the evaluation window")
    ax.legend()
    figs["signal_mix"] = fig
    return figs
