"""Calibrating an interval on out-of-sample outcomes (conformalized quantile regression)."""

from __future__ import annotations

import numpy as np

from workers.pipeline.models.base import INTERVAL


def conformal_adjustment(low: np.ndarray, high: np.ndarray, realised: np.ndarray) -> tuple[float, float]:
    """Conformalized quantile regression: how far to move both bounds so that
    the band covers INTERVAL's share of out-of-sample outcomes.

    The conformity score of an outcome is how far it falls outside the band
    (negative inside); the band is widened (or narrowed) by the score's
    finite-sample conformal quantile at the nominal level, 80% here.

    Args:
        low, high: the uncalibrated band on held-out rows (log returns).
        realised: the rows' realised log returns.

    Returns:
        The adjustment in log-return units, and the uncalibrated coverage.
    """
    scores = np.maximum(low - realised, realised - high)
    n = len(scores)
    if n == 0:
        return 0.0, float("nan")
    level = min(1.0, np.ceil((n + 1) * (INTERVAL[1] - INTERVAL[0])) / n)
    return float(np.quantile(scores, level, method="higher")), float(np.mean(scores <= 0))
