"""Price sources behind one interface; `make_source` picks one by name."""

from __future__ import annotations

from pathlib import Path

from workers.config import PipelineSettings
from workers.pipeline.sources.base import PriceSource, SourceError
from workers.pipeline.sources.demo import DemoSource
from workers.pipeline.sources.file import FileSource
from workers.pipeline.sources.pokemonpricetracker import PokemonPriceTrackerSource
from workers.pipeline.tracked_cards import load_tracked_cards

SOURCES = ("demo", "file", "pokemonpricetracker")

__all__ = ["SOURCES", "PriceSource", "SourceError", "make_source"]


def make_source(name: str, settings: PipelineSettings, input_path: Path | None = None) -> PriceSource:
    """Build the named source from settings.

    Raises:
        SourceError: unknown name, or a missing --input for the file source.
    """
    if name == "demo":
        return DemoSource(settings.demo_cards, settings.demo_days, settings.demo_seed)
    if name == "file":
        if input_path is None:
            raise SourceError("the file source needs --input PATH (CSV or Parquet, long format)")
        return FileSource(input_path, currency=settings.default_currency)
    if name == "pokemonpricetracker":
        key = settings.pokemonpricetracker_api_key
        return PokemonPriceTrackerSource(
            key.get_secret_value() if key else None,
            load_tracked_cards(settings.cards_file),
            base_url=settings.pokemonpricetracker_base_url,
            days=settings.pokemonpricetracker_days,
        )
    raise SourceError(f"unknown source {name!r}: choose one of {', '.join(SOURCES)}")
