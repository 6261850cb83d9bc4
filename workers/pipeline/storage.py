"""The pipeline's files under the data dir.

    landing/collection_date=D/source=S/fetched.parquet   what a source returned
    raw/collection_date=D/source=S/prices.parquet        validated rows
    quarantine/collection_date=D/source=S/rejected.parquet  rejected rows + reason
    features/source=S/features.parquet                   model features
    candidates/source=S/D/                               trained model + evaluation
    runs/collection_date=D/source=S/summary.json         run summary

One file per (collection date, source): re-running a day replaces that day's
file atomically (write to a temporary name, then rename), so nothing is ever
duplicated and a crash never leaves half a partition.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def atomic_write_parquet(df: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def atomic_write_json(obj: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path


class DataStore:
    """Paths and partitioned reads/writes under one data dir."""

    def __init__(self, data_dir: Path | str) -> None:
        self.root = Path(data_dir)

    def _partition(self, area: str, day: date, source: str) -> Path:
        return self.root / area / f"collection_date={day.isoformat()}" / f"source={_safe(source)}"

    def landing_path(self, day: date, source: str) -> Path:
        return self._partition("landing", day, source) / "fetched.parquet"

    def raw_path(self, day: date, source: str) -> Path:
        return self._partition("raw", day, source) / "prices.parquet"

    def quarantine_path(self, day: date, source: str) -> Path:
        return self._partition("quarantine", day, source) / "rejected.parquet"

    def summary_path(self, day: date, source: str) -> Path:
        return self._partition("runs", day, source) / "summary.json"

    def features_path(self, source: str) -> Path:
        return self.root / "features" / f"source={_safe(source)}" / "features.parquet"

    def candidate_dir(self, day: date, source: str) -> Path:
        return self.root / "candidates" / f"source={_safe(source)}" / day.isoformat()

    def write_landing(self, df: pd.DataFrame, day: date, source: str) -> Path:
        # Mixed-type columns (a price column holding "n/a") cannot go to Parquet
        # as they are; keep them as text and let validation judge every value.
        out = df.copy()
        for column in out.columns:
            if out[column].dtype == object:
                out[column] = out[column].astype("string")
        return atomic_write_parquet(out, self.landing_path(day, source))

    def write_quarantine(self, df: pd.DataFrame, day: date, source: str) -> Path | None:
        path = self.quarantine_path(day, source)
        if df.empty:
            # A clean re-run of the day must not leave the old day's rejects behind.
            path.unlink(missing_ok=True)
            return None
        return atomic_write_parquet(df, path)

    def read_raw(self, source: str) -> pd.DataFrame:
        """All validated rows of a source, one row per (card, date).

        Where several collection days hold the same (card, date), the latest
        collection wins.
        """
        files = sorted(self.root.glob(f"raw/collection_date=*/source={_safe(source)}/prices.parquet"))
        if not files:
            raise FileNotFoundError(f"no collected prices for source {source!r} under {self.root / 'raw'}")
        frames = []
        for path in files:
            frame = pd.read_parquet(path)
            frame["collection_date"] = path.parent.parent.name.split("=", 1)[1]
            frames.append(frame)
        df = pd.concat(frames, ignore_index=True)
        df = df.sort_values("collection_date", kind="mergesort")
        df = df.drop_duplicates(["card_id", "date"], keep="last")
        return df.drop(columns="collection_date").reset_index(drop=True)
