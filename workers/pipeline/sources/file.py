"""Import a user's own price history from CSV or Parquet in the long format."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from workers.pipeline.partitions import Partition
from workers.pipeline.schema import OPTIONAL_DEFAULTS, REQUIRED_COLUMNS
from workers.pipeline.sources.base import SourceError, only

VOLUME_ALIASES = ("volume", "quantity_sold", "sample_count")


class FileSource:
    """Long-format CSV or Parquet: card_id, date, market_price are required;
    card_name, set_name, currency and source get defaults when absent; a
    `volume` column (or `quantity_sold`) is used when present."""

    name = "file"

    def __init__(self, path: Path | str, currency: str = "USD") -> None:
        self.path = Path(path)
        self.currency = currency

    def catalogue_size(self) -> int | None:
        """Distinct card ids in a Parquet file (its card_id column only); None for CSV or an unreadable file."""
        if self.path.suffix.lower() not in {".parquet", ".pq"} or not self.path.exists():
            return None
        try:
            return int(pd.read_parquet(self.path, columns=["card_id"])["card_id"].nunique())
        except Exception:  # fetch reports the file's problem with its detail
            return None

    def fetch(self, as_of: date, partition: Partition | None = None) -> pd.DataFrame:
        """The file's rows (a partition's: Parquet reads only their row groups' matches; CSV is read whole)."""
        if not self.path.exists():
            raise SourceError(f"input file not found: {self.path}")
        suffix = self.path.suffix.lower()
        try:
            if suffix in {".parquet", ".pq"} and partition is not None and partition.count > 1:
                ids = pd.read_parquet(self.path, columns=["card_id"])["card_id"].astype(str).unique()
                mine = ids[partition.holds(pd.Series(ids))].tolist()
                df = (
                    pd.read_parquet(self.path, filters=[("card_id", "in", mine)])
                    if mine
                    else pd.read_parquet(self.path).iloc[:0]
                )
            elif suffix in {".parquet", ".pq"}:
                df = pd.read_parquet(self.path)
            elif suffix in {".csv", ".txt"}:
                # Read every column as text: validation decides what is a valid
                # price or date and quarantines the rest with a reason.
                df = pd.read_csv(self.path, dtype=str, keep_default_na=False, na_values=[""])
            else:
                raise SourceError(f"unsupported file type {suffix!r}: use .csv or .parquet")
        except SourceError:
            raise
        except Exception as exc:  # pyarrow / parser errors carry the useful detail
            raise SourceError(f"cannot read {self.path}: {exc}") from exc
        missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        if missing:
            raise SourceError(f"{self.path} lacks required column(s) {missing}; found {list(df.columns)}")
        if "volume" not in df.columns:
            for alias in VOLUME_ALIASES:
                if alias in df.columns:
                    df["volume"] = df[alias]
                    break
        defaults = dict(OPTIONAL_DEFAULTS, currency=self.currency, source=f"file:{self.path.name}")
        for column, default in defaults.items():
            if column not in df.columns:
                df[column] = df["card_id"] if default is None else default
        return only(df, partition)
