"""Realized scores: the ledger of forecasts and how they are scored once the prices arrive.

The ledger (`<data dir>/lifecycle/`) holds, per day, what each live version
forecast from each card's newest feature row (`forecasts-<day>.parquet`, the
pipeline's), and the challenger's shadow quotes read from
`pokewatch:shadow-quotes` (`shadow-<entry id>.parquet`). A forecast counts
once per (version, card, date), and only from the version's first pipeline
date on: before it, the version was trained on the outcome. A forecast from a
date's feature row uses prices up to that date only. Independent dates are
forecasts `horizon` or more days apart, so no two counted outcomes overlap.

`score` joins forecasts with the prices that followed (realized MAPE,
interval coverage, signal hits); `compare` pairs two versions on the same
cards and independent dates with a card-resampled interval of the relative
improvement, overall and per slice (price band, set). The rule that reads
them is workers.pipeline.promotion; the run that writes them is
workers.pipeline.lifecycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contracts import keys
from contracts.messages import Quote, ShadowQuotes
from workers.config import PipelineSettings
from workers.pipeline.metrics import ape_of_returns, card_bootstrap_improvement
from workers.pipeline.monitor import latest_forecasts, outcomes
from workers.pipeline.storage import atomic_write_parquet

LEDGER = "lifecycle"
MIN_SLICE_CARDS = 10
N_BOOT = 500
LEDGER_COLUMNS = ["version", "card_id", "date", "ret", "low", "high", "way", "source"]


# ---------------------------------------------------------------- the ledger of forecasts


def ledger_dir(settings: PipelineSettings) -> Path:
    return Path(settings.data_dir) / LEDGER


def version_forecasts(model: Any, latest: pd.DataFrame, version: str, settings: PipelineSettings) -> pd.DataFrame:
    """A version's forecast from each card's newest feature row, as the ledger keeps it.

    The interval is widened to contain the fair price, as the served state's is
    (workers.priced), so the pipeline's rows and the shadow quotes score alike."""
    f = latest_forecasts(latest, model, settings.rule, settings.trade_fee)
    f["low"] = np.minimum(f["low"], f["fair"])
    f["high"] = np.maximum(f["high"], f["fair"])
    f["version"] = version
    f["source"] = "pipeline"
    return f[LEDGER_COLUMNS]


def shadow_rows(entries: list[tuple[Any, dict[bytes, bytes]]]) -> pd.DataFrame:
    """The challenger's answers read from `pokewatch:shadow-quotes`, as ledger rows."""
    rows: list[tuple[Any, ...]] = []
    for _, fields in entries:
        try:
            shadow = ShadowQuotes.model_validate_json(fields.get(keys.PAYLOAD_FIELD.encode(), b""))
        except ValueError:
            continue  # not ours to judge; the stream is written by challenger replicas only
        for result, signal in zip(shadow.results, shadow.signals, strict=False):
            if not isinstance(result, Quote):
                continue
            m = result.market_price
            way = {"BUY": 1.0, "SELL": -1.0}.get(signal or "", 0.0)
            rows.append(
                (
                    shadow.model_version,
                    result.card_id,
                    pd.Timestamp(result.date),
                    float(np.log(result.forecast_price / m)),
                    float(np.log(result.fair_price_low / m)),
                    float(np.log(result.fair_price_high / m)),
                    way,
                    "shadow",
                )
            )
    return pd.DataFrame(rows, columns=LEDGER_COLUMNS)


def read_shadow(client: Any, settings: PipelineSettings, page: int = 10_000) -> pd.DataFrame:
    """The shadow quotes added since the last run, written to the ledger; the cursor moves past them."""
    directory = ledger_dir(settings)
    cursor_file = directory / "shadow-cursor"
    cursor = cursor_file.read_text().strip() if cursor_file.exists() else "0-0"
    frames = []
    while True:
        entries = client.xrange(keys.SHADOW_STREAM, min=f"({cursor}", count=page)
        if not entries:
            break
        frames.append(shadow_rows(entries))
        last = entries[-1][0]
        cursor = last.decode() if isinstance(last, bytes) else str(last)
        if len(entries) < page:
            break
    if not frames:
        return pd.DataFrame(columns=LEDGER_COLUMNS)
    rows = pd.concat(frames, ignore_index=True).drop_duplicates(["version", "card_id", "date"])
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(rows, directory / f"shadow-{cursor.replace('-', '_')}.parquet")
    cursor_file.write_text(cursor)
    return rows


def read_ledger(settings: PipelineSettings, since: pd.Timestamp) -> pd.DataFrame:
    """Every recorded forecast dated `since` or later: the pipeline's first, then the shadow quotes.

    A (version, card, date) forecast counts once, and only from the version's first
    pipeline date on (see the module docstring)."""
    directory = ledger_dir(settings)
    files = sorted(directory.glob("forecasts-*.parquet")) + sorted(directory.glob("shadow-*.parquet"))
    if not files:
        return pd.DataFrame(columns=LEDGER_COLUMNS)
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    frame["date"] = pd.to_datetime(frame["date"])
    frame["version"] = frame["version"].astype(str)
    frame = frame[frame["date"] >= since].drop_duplicates(["version", "card_id", "date"], keep="first")
    first = frame[frame["source"] == "pipeline"].groupby("version")["date"].min()
    start = frame["version"].map(first)
    return frame[start.notna() & (frame["date"] >= start)].reset_index(drop=True)


# ---------------------------------------------------------------- scoring


def score(ledger: pd.DataFrame, prices: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Ledger rows whose outcome has arrived, with `realized`, `ape`, `inside`, `hit` and the price."""
    if ledger.empty:
        return ledger.assign(realized=[], ape=[], inside=[], hit=[], market_price=[], set_name=[])
    out = outcomes(ledger, prices, horizon)
    y = out["realized"].to_numpy()
    out["ape"] = ape_of_returns(out["ret"].to_numpy(), y)
    out["inside"] = (y >= out["low"].to_numpy()) & (y <= out["high"].to_numpy())
    way = out["way"].to_numpy()
    out["hit"] = np.where(way != 0, np.sign(y) == way, np.nan)
    return out


def per_date(scored: pd.DataFrame) -> list[dict[str, Any]]:
    """One point per version and forecast date: realized MAPE (%), coverage, hit rate, outcomes."""
    if scored.empty:
        return []
    g = scored.groupby(["version", "date"])
    table = pd.DataFrame(
        {
            "mape": 100 * g["ape"].mean(),
            "coverage": g["inside"].mean(),
            "hit_rate": g["hit"].mean(),
            "signals": g["hit"].count(),
            "n": g["ape"].size(),
        }
    ).reset_index()
    table["date"] = table["date"].dt.strftime("%Y-%m-%d")
    return [
        {str(k): (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        for row in table.to_dict("records")
    ]


def summary(scored: pd.DataFrame, version: str) -> dict[str, Any]:
    mine = scored[scored["version"] == version]
    if mine.empty:
        return {"n": 0, "dates": 0}
    hits = mine["hit"].dropna()
    return {
        "n": len(mine),
        "dates": int(mine["date"].nunique()),
        "mape": round(100 * float(mine["ape"].mean()), 4),
        "coverage": round(float(mine["inside"].mean()), 4),
        "hit_rate": round(float(hits.mean()), 4) if len(hits) else None,
        "signals": len(hits),
    }


def independent_dates(dates: pd.Series, horizon: int) -> list[pd.Timestamp]:
    """Forecast dates at least `horizon` days apart, oldest first: their outcomes do not overlap."""
    kept: list[pd.Timestamp] = []
    for d in sorted(pd.to_datetime(pd.Series(dates).unique())):
        if not kept or (d - kept[-1]).days >= horizon:
            kept.append(d)
    return kept


@dataclass
class Comparison:
    """`new` against `old` on the same cards and dates; improvement = 1 - MAPE_new / MAPE_old (%)."""

    new: str
    old: str
    dates: int = 0
    n: int = 0
    mape_new: float | None = None
    mape_old: float | None = None
    improvement: float | None = None
    low: float | None = None
    high: float | None = None
    slices: list[dict[str, Any]] = field(default_factory=list)

    @property
    def regressed(self) -> list[dict[str, Any]]:
        return [s for s in self.slices if s["regressed"]]

    def text(self, needed: int) -> str:
        if self.improvement is None:
            return f"0 of {needed} dates: no outcome of {self.new} vs {self.old} yet"
        return (
            f"{min(self.dates, needed)} of {needed} dates, difference {self.improvement:+.1f}% "
            f"[{self.low:+.1f}, {self.high:+.1f}]"
        )


def compare(
    scored: pd.DataFrame, new: str, old: str, horizon: int, n_boot: int = N_BOOT, last: int | None = None
) -> Comparison:
    """The paired comparison of two versions' realized errors on their common (card, date) forecasts
    (only the `last` independent dates, if given: the rollback watches the recent ones)."""
    a = scored[scored["version"] == new].set_index(["card_id", "date"])
    b = scored[scored["version"] == old].set_index(["card_id", "date"])
    both = a[["ape", "market_price"]].join(b[["ape"]], rsuffix="_old", how="inner").reset_index()
    if "set_name" in a.columns:
        both = both.merge(a["set_name"].reset_index(), on=["card_id", "date"], how="left")
    dates = independent_dates(both["date"], horizon) if len(both) else []
    if last is not None:
        dates = dates[-last:]
    both = both[both["date"].isin(dates)]
    out = Comparison(new, old, dates=len(dates), n=len(both))
    if both.empty:
        return out
    point, low, high = card_bootstrap_improvement(
        both["card_id"].to_numpy(), both["ape"].to_numpy(), both["ape_old"].to_numpy(), n_boot=n_boot
    )
    out.mape_new = round(100 * float(both["ape"].mean()), 4)
    out.mape_old = round(100 * float(both["ape_old"].mean()), 4)
    out.improvement, out.low, out.high = (round(100 * x, 3) for x in (point, low, high))
    out.slices = slices(both, n_boot)
    return out


def slices(both: pd.DataFrame, n_boot: int) -> list[dict[str, Any]]:
    """The improvement in each price band (thirds of the compared rows' prices: any currency) and
    each set, with its interval; `regressed` when the new version is worse there beyond noise."""
    bands = pd.qcut(both["market_price"].rank(method="first"), 3, labels=["low", "middle", "high"])
    groups: list[tuple[str, pd.Series]] = [(f"price band {b}", bands == b) for b in ("low", "middle", "high")]
    if "set_name" in both.columns:
        groups += [(f"set {s}", both["set_name"] == s) for s in both["set_name"].dropna().unique()]
    out = []
    for name, mask in groups:
        part = both[mask.to_numpy()]
        cards = part["card_id"].nunique()
        if cards < MIN_SLICE_CARDS:
            continue
        point, low, high = card_bootstrap_improvement(
            part["card_id"].to_numpy(), part["ape"].to_numpy(), part["ape_old"].to_numpy(), n_boot=n_boot
        )
        out.append(
            {
                "slice": name,
                "cards": int(cards),
                "improvement": round(100 * point, 3),
                "low": round(100 * low, 3),
                "high": round(100 * high, 3),
                "regressed": bool(high < 0),
            }
        )
    return out
