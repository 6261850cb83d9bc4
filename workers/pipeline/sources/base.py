"""The one small interface every price source implements."""

from __future__ import annotations

from datetime import date
from typing import Protocol

import pandas as pd

from workers.pipeline.partitions import Partition


class SourceError(Exception):
    """A price source could not produce a table (bad file, API failure...)."""


class PriceSource(Protocol):
    """Produces the long price table (see workers.pipeline.schema), unvalidated: the whole
    catalogue, or only the cards of one partition."""

    name: str

    def fetch(self, as_of: date, partition: Partition | None = None) -> pd.DataFrame: ...

    def catalogue_size(self) -> int | None:
        """How many cards the source holds, if it can tell without fetching them (sizes the partitions)."""
        ...


def only(frame: pd.DataFrame, partition: Partition | None) -> pd.DataFrame:
    """The rows of the partition's cards (all rows when there is no partition)."""
    if partition is None or partition.count == 1 or "card_id" not in frame.columns:
        return frame
    return frame[partition.holds(frame["card_id"].astype(str))].reset_index(drop=True)
