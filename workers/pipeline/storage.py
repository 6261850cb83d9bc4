"""The pipeline's files under the data dir.

    landing/collection_date=D/source=S/fetched-P.parquet   what a source returned
    raw/collection_date=D/source=S/prices-P.parquet        validated rows
    quarantine/collection_date=D/source=S/rejected-P.parquet  rejected rows + reason
    features/source=S/features-P.parquet                   per-card features
    features/source=S/context.parquet, sets.parquet        the feed's and sets' daily moves
    features/source=S/manifest.json                        the partitions, rows and cards
    candidates/source=S/D/                                 trained model + evaluation
    candidates/source=S/D/priced/priced-P.parquet           the candidate's serving state, per partition
    runs/collection_date=D/source=S/summary.json           run summary

P names a partition of the catalogue (`part-0003-of-0025`,
workers.pipeline.partitions). One file per (collection date, source,
partition): re-running a day or one partition replaces its file atomically
(write to a temporary name, then rename), so nothing is ever duplicated and
a crash never leaves half a file. A partition written with another count
replaces the day's files of the old count.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from workers.pipeline.partitions import Partition


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

    def landing_path(self, day: date, source: str, part: Partition) -> Path:
        return self._partition("landing", day, source) / f"fetched-{part.name}.parquet"

    def raw_path(self, day: date, source: str, part: Partition) -> Path:
        return self._partition("raw", day, source) / f"prices-{part.name}.parquet"

    def quarantine_path(self, day: date, source: str, part: Partition) -> Path:
        return self._partition("quarantine", day, source) / f"rejected-{part.name}.parquet"

    def summary_path(self, day: date, source: str) -> Path:
        return self._partition("runs", day, source) / "summary.json"

    def features_dir(self, source: str) -> Path:
        return self.root / "features" / f"source={_safe(source)}"

    def features_path(self, source: str, part: Partition) -> Path:
        return self.features_dir(source) / f"features-{part.name}.parquet"

    def candidate_dir(self, day: date, source: str) -> Path:
        return self.root / "candidates" / f"source={_safe(source)}" / day.isoformat()

    def priced_path(self, day: date, source: str, part: Partition) -> Path:
        return self.candidate_dir(day, source) / "priced" / f"priced-{part.name}.parquet"

    def write_partition(self, df: pd.DataFrame, path: Path, part: Partition) -> Path:
        """Write one partition's file; files of the same kind written with another count go."""
        stem = path.name.split("-part-")[0]
        for old in path.parent.glob(f"{stem}*.parquet"):
            if not old.name.endswith(f"-of-{part.count:04d}.parquet"):
                old.unlink(missing_ok=True)
        return atomic_write_parquet(df, path)

    def write_landing(self, df: pd.DataFrame, day: date, source: str, part: Partition) -> Path:
        # Mixed-type columns (a price column holding "n/a") cannot go to Parquet
        # as they are; keep them as text and let validation judge every value.
        out = df.copy()
        for column in out.columns:
            if out[column].dtype == object:
                out[column] = out[column].astype("string")
        return self.write_partition(out, self.landing_path(day, source, part), part)

    def write_quarantine(self, df: pd.DataFrame, day: date, source: str, part: Partition) -> Path | None:
        path = self.quarantine_path(day, source, part)
        if df.empty:
            # A clean re-run of the day must not leave the old day's rejects behind.
            path.unlink(missing_ok=True)
            return None
        return self.write_partition(df, path, part)

    def read_raw(self, source: str, part: Partition | None = None) -> pd.DataFrame:
        """The validated rows of a source (of one partition's cards), one row per (card, date).

        Where several collection days hold the same (card, date), the latest
        collection wins. A day collected with another partition count is
        read whole and filtered to the partition's cards.
        """
        days = sorted(self.root.glob(f"raw/collection_date=*/source={_safe(source)}"))
        frames = []
        for day_dir in days:
            own = day_dir / f"prices-{part.name}.parquet" if part else None
            for path in [own] if own and own.exists() else sorted(day_dir.glob("prices*.parquet")):
                frame = pd.read_parquet(path)
                if part is not None and path != own:
                    frame = frame[part.holds(frame["card_id"])]
                frame["collection_date"] = day_dir.parent.name.split("=", 1)[1]
                frames.append(frame)
        if not frames:
            raise FileNotFoundError(f"no collected prices for source {source!r} under {self.root / 'raw'}")
        df = pd.concat(frames, ignore_index=True)
        df = df.sort_values("collection_date", kind="mergesort")
        df = df.drop_duplicates(["card_id", "date"], keep="last")
        return df.drop(columns="collection_date").reset_index(drop=True)
