"""Histogram gradient boosting as PokeWatch fits it: quantized designs, recency weights, one fit per target.

Fits on the same rows (the forecast and both interval bounds) share one
quantized design matrix (`Design`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from workers.pipeline.features import FEATURE_COLUMNS


def regressor(loss: str, **kw: Any) -> HistGradientBoostingRegressor:
    """A histogram GBM regressor with PokeWatch's defaults, `kw` overriding them."""
    params: dict[str, Any] = dict(
        learning_rate=0.08,
        max_iter=150,
        max_leaf_nodes=31,
        min_samples_leaf=200,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=0,
    )
    params.update(kw)
    return HistGradientBoostingRegressor(loss=loss, **params)  # type: ignore[arg-type]


def _usable_columns(frame: pd.DataFrame) -> list[str]:
    """Features with at least two distinct values (the binner needs a split)."""
    return [c for c in FEATURE_COLUMNS if frame[c].nunique(dropna=True) >= 2]


def recent(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    return frame.nlargest(limit, "date")


# A recency-weighted fit leaves out rows older than eight half-lives (280
# days at the default 35): their weight is under 0.4% of the newest rows'.
# On a long feed they are most of the cost (Magic Online's 660 days: half).
MIN_RECENCY_WEIGHT = 0.5**8


def recency_weight(dates: pd.Series, half_life_days: float | None) -> np.ndarray:
    """Weights halving every `half_life_days` back from the latest training date."""
    if not half_life_days:
        return np.ones(len(dates))
    age = (dates.max() - dates).dt.days.to_numpy(dtype="float64")
    return np.power(0.5, age / half_life_days)


def _bin_edges(X: np.ndarray, max_bins: int = 255, sample: int = 200_000) -> list[np.ndarray]:
    """Per-column quantile edges (at most max_bins distinct values per column)."""
    rows = X if len(X) <= sample else X[np.random.default_rng(0).choice(len(X), sample, replace=False)]
    qs = np.linspace(0.0, 1.0, max_bins)
    edges = []
    for j in range(X.shape[1]):
        col = rows[:, j]
        col = col[~np.isnan(col)]
        edges.append(np.unique(np.quantile(col, qs)).astype("float32") if col.size else np.zeros(1, "float32"))
    return edges


def _quantize(X: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Map every value to the nearest edge at or above it (NaN stays NaN).

    With at most 255 distinct values per column the GBM bins them exactly,
    so nothing is lost against its own 255-bin histograms, and a weighted fit
    skips the weighted-percentile binning that costs ~10 s per 180k rows.
    """
    out = np.empty_like(X)
    for j, e in enumerate(edges):
        idx = np.minimum(np.searchsorted(e, X[:, j], side="left"), len(e) - 1)
        out[:, j] = np.where(np.isnan(X[:, j]), np.nan, e[idx])
    return out


@dataclass
class Design:
    """The quantized feature matrix of some training rows: fits on the same
    rows (forecast and both interval bounds) share it."""

    columns: list[str]
    edges: list[np.ndarray]
    X: np.ndarray

    @classmethod
    def of(cls, rows: pd.DataFrame) -> Design:
        columns = _usable_columns(rows)
        X = rows[columns].to_numpy(dtype="float32")
        edges = _bin_edges(X)
        return cls(columns, edges, _quantize(X, edges))


def _training_arrays(
    rows: pd.DataFrame, target: str, median_of_price: bool, half_life_days: float | None, design: Design
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The design, target and weights a fit learns from (rows below MIN_RECENCY_WEIGHT left out)."""
    y = rows[target].to_numpy(dtype="float64")
    weight = recency_weight(rows["date"], half_life_days)
    X = design.X
    keep = weight >= MIN_RECENCY_WEIGHT
    if not keep.all():
        X, y, weight = X[keep], y[keep], weight[keep]
    if median_of_price:
        # Absolute error on the price ratio, weighted by 1/actual, is the
        # MAPE of the forecast price.
        weight = weight * np.exp(-y)
        y = np.expm1(y)
    return X, y, weight


@dataclass
class Fitted:
    """One fitted estimator, the feature columns it uses and their bin edges."""

    estimator: HistGradientBoostingRegressor
    columns: list[str]
    edges: list[np.ndarray]

    @classmethod
    def fit(
        cls,
        rows: pd.DataFrame,
        target: str,
        loss: str,
        median_of_price: bool = False,
        half_life_days: float | None = None,
        design: Design | None = None,
        **kw: Any,
    ) -> Fitted:
        design = design or Design.of(rows)
        X, y, weight = _training_arrays(rows, target, median_of_price, half_life_days, design)
        est = regressor(loss, **kw).fit(X, y, sample_weight=weight)
        return cls(est, design.columns, design.edges)

    def grow(
        self, rows: pd.DataFrame, target: str, max_iter: int, median_of_price: bool, half_life_days: float | None,
        design: Design,
    ) -> Fitted:  # fmt: skip
        """Carry on boosting to `max_iter` iterations on the rows (and settings) it was fitted on.

        The result is the fit `max_iter` iterations would have made from the start:
        a cheap first fit can be judged before paying for the whole of it.
        """
        X, y, weight = _training_arrays(rows, target, median_of_price, half_life_days, design)
        self.estimator.set_params(max_iter=max_iter, warm_start=True)
        self.estimator.fit(X, y, sample_weight=weight)
        self.estimator.set_params(warm_start=False)
        return self

    def predict(self, frame: pd.DataFrame, median_of_price: bool = False) -> np.ndarray:
        X = _quantize(frame[self.columns].to_numpy(dtype="float32"), self.edges)
        out = self.estimator.predict(X)
        return np.log1p(np.maximum(out, -0.95)) if median_of_price else out


# The direction model sees the most recent rows only: what moves a card's
# next price changes faster than its level, and three trees an iteration
# cost three times a regression's. 80,000 rows are 22 weeks of the weekly
# feed's 3,656 cards and 330 days of Magic Online's 245.
DIRECTION_ROWS = 80_000
DIRECTION_PARAMS: dict[str, Any] = {
    "learning_rate": 0.15,
    "max_iter": 40,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 200,
    "l2_regularization": 1.0,
}


@dataclass
class Direction:
    """Chances that a card's price is higher / lower after the horizon (a flat price is neither):
    a three-class gradient-boosted classifier of the sign of the h-step move.

    Recency weights are chosen on validation (GBMModel): with the forecast's
    half-life the effective sample of a three-class fit shrinks and its
    chances can come out overconfident (Magic Online daily h=1, fitted on
    150,000 rows in 60 iterations: 52.6% of signals right weighted, 55.6%
    unweighted), while on a short feed the recent rows are what counts (the
    Japanese daily feed the other way round).
    """

    estimator: HistGradientBoostingClassifier
    columns: list[str]
    edges: list[np.ndarray]

    @classmethod
    def rows(cls, rows: pd.DataFrame) -> pd.DataFrame:
        """The rows a fit on `rows` learns from."""
        return recent(rows, DIRECTION_ROWS)

    @classmethod
    def fit(cls, rows: pd.DataFrame, half_life_days: float | None = None, design: Design | None = None) -> Direction:
        """Fit on the most recent DIRECTION_ROWS of `rows`; `design`, if given, must be theirs."""
        rows = cls.rows(rows)
        design = design or Design.of(rows)
        y = np.sign(rows["target"].to_numpy(dtype="float64"))
        est = HistGradientBoostingClassifier(early_stopping=False, random_state=0, **DIRECTION_PARAMS)
        est.fit(design.X, y, sample_weight=recency_weight(rows["date"], half_life_days))
        return cls(est, design.columns, design.edges)

    def chances(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(P(up), P(down)) of each row."""
        proba = self.estimator.predict_proba(_quantize(frame[self.columns].to_numpy(dtype="float32"), self.edges))
        classes = list(self.estimator.classes_)

        def of(label: float) -> np.ndarray:
            return proba[:, classes.index(label)] if label in classes else np.zeros(len(frame))

        return of(1.0), of(-1.0)
