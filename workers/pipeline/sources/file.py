"""Import a user's own price history from CSV or Parquet in the long format."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from workers.pipeline.schema import OPTIONAL_DEFAULTS, REQUIRED_COLUMNS
from workers.pipeline.sources.base import SourceError

VOLUME_ALIASES = ("volume", "quantity_sold", "sample_count")


class FileSource:
    """Long-format CSV or Parquet: card_id, date, market_price are required;
    card_name, set_name, currency and source get defaults when absent; a
    `volume` column (or `quantity_sold`) is used when present."""

    name = "file"

    def __init__(self, path: Path | str, currency: str = "USD") -> None:
        self.path = Path(path)
        self.currency = currency

    def fetch(self, as_of: date) -> pd.DataFrame:
        if not self.path.exists():
            raise SourceError(f"input file not found: {self.path}")
        suffix = self.path.suffix.lower()
        try:
            if suffix in {".parquet", ".pq"}:
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
        return df
