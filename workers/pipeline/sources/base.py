"""The one small interface every price source implements."""

from __future__ import annotations

from datetime import date
from typing import Protocol

import pandas as pd


class SourceError(Exception):
    """A price source could not produce a table (bad file, API failure...)."""


class PriceSource(Protocol):
    """Produces the long price table (see workers.pipeline.schema), unvalidated."""

    name: str

    def fetch(self, as_of: date) -> pd.DataFrame: ...
