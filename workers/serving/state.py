"""Serving-time card state: what a model replica needs to price any card on any date.

Where it lives. The pipeline prices every served row once, partition by
partition, with the version it registers, and logs the merged columns beside
the model (workers.priced): for every card, its last `serving_days` days of
market price, forecast, fair price and band, typical move, chances and
recent move. A replica memory-maps those columns (`ServingState.open`):
loading is opening files, whatever the catalogue's size, and replicas on one
machine share the pages. A reply is always computed by one model version on
the data that version was trained with; nothing else has to be kept in sync.
Versions from before the priced state carry feature rows, which the replica
prices itself at load (`ServingState.build`).

A request is a dictionary lookup and a binary search per card: no pandas, no
model call on the hot path.

Dates. `date` omitted means the card's latest known price. A past date means
the state as of that date: the last observation on or before it (weekly
series have one price a week). A date before the card's first observation or
after its latest one is a 404.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contracts import history
from contracts.messages import ItemError, PredictItem, Quote, SignalBasis
from workers import priced


@dataclass
class ServingState:
    """Model outputs for every (card, date) of the state, ready for lookups.

    Compact on purpose (replicas map it and share it): per row only the day
    number, five float32 prices (market, forecast, fair, low, high), the
    card's typical move (the signal rules' scale) and the volume (market price
    in float64, as shown to users); names, sets and currencies once per card,
    and the version's signal rule once. The feature frame is dropped once priced.
    """

    version: str
    cards: dict[str, tuple[int, int]]  # card_id -> [start, end) rows
    days: np.ndarray  # int32 days since history.EPOCH
    market: np.ndarray
    forecast: np.ndarray
    fair: np.ndarray
    low: np.ndarray
    high: np.ndarray
    volume: np.ndarray
    typical: np.ndarray
    up: np.ndarray | None
    down: np.ndarray | None
    recent: np.ndarray  # the card's move over the last h observations (log units; NaN before that many)
    basis: SignalBasis
    info: dict[str, tuple[str | None, str | None, str | None]]  # card_id -> (name, set, currency)

    @classmethod
    def build(cls, version: str, state: pd.DataFrame, model: Any, chunk_rows: int = 250_000) -> ServingState:
        """Run the model once over every row of the state (sorted by card and date), in chunks."""
        return cls.of(version, priced.price(state, model, chunk_rows))

    @classmethod
    def open(cls, version: str, directory: Path) -> ServingState:
        """The state the pipeline priced and merged (workers.priced), memory-mapped: nothing is copied."""
        return cls.of(version, priced.open_dir(directory))

    @classmethod
    def of(cls, version: str, state: priced.Priced) -> ServingState:
        cards = state.cards
        ids = cards["card_id"].tolist()
        spans = dict(zip(ids, zip(cards["start"].tolist(), cards["end"].tolist(), strict=True), strict=True))

        def column(name: str) -> list[str | None]:
            return [None if v is None or v != v else str(v) for v in cards[name].tolist()]

        info = dict(
            zip(ids, zip(column("card_name"), column("set_name"), column("currency"), strict=True), strict=True)
        )
        # Plain ndarray views of the mapped columns: still the file's pages, never copied.
        rows = {k: None if v is None else np.asarray(v) for k, v in state.rows.items()}
        arrays = {k: rows[k] for k in ("days", "market", "forecast", "fair", "low", "high", "volume", "typical")}
        return cls(
            version=version,
            cards=spans,
            info=info,
            up=rows["up"],
            down=rows["down"],
            recent=rows["recent"],  # type: ignore[arg-type]
            basis=SignalBasis(**state.basis),
            **arrays,  # type: ignore[arg-type]
        )

    def __len__(self) -> int:
        return len(self.days)

    def locate(self, card_id: str, day: dt.date | None) -> int | ItemError:
        """Row of the card's state on `day` (as of that date), or a 404 explaining why not."""
        span = self.cards.get(card_id)
        if span is None:
            return ItemError(card_id=card_id, date=day, status=404, error=f"unknown card {card_id!r}")
        start, end = span
        if day is None:
            return end - 1
        n = history.day_number(day)
        first, last = int(self.days[start]), int(self.days[end - 1])
        if n > last:
            return ItemError(
                card_id=card_id,
                date=day,
                status=404,
                error=f"no price for {card_id!r} on {day}: latest known price is on {history.date_of(last)}",
            )
        if n < first:
            return ItemError(
                card_id=card_id,
                date=day,
                status=404,
                error=f"no price for {card_id!r} on {day}: served history starts on {history.date_of(first)}",
            )
        return start + int(np.searchsorted(self.days[start:end], n, side="right")) - 1

    def quote(self, items: list[PredictItem], served_by: str) -> list[Quote | ItemError]:
        """Results for the items, in their order."""
        out: list[Quote | ItemError] = []
        for item in items:
            row = self.locate(item.card_id, item.date)
            if isinstance(row, ItemError):
                out.append(row)
                continue
            # Every field comes from the validated state arrays: no re-validation per quote.
            out.append(
                Quote.model_construct(
                    kind="quote",
                    card_id=item.card_id,
                    card_name=self.info[item.card_id][0],
                    date=history.date_of(int(self.days[row])),
                    market_price=round(float(self.market[row]), 4),
                    forecast_price=round(float(self.forecast[row]), 4),
                    fair_price=round(float(self.fair[row]), 4),
                    fair_price_low=round(float(self.low[row]), 4),
                    fair_price_high=round(float(self.high[row]), 4),
                    typical_move=round(float(self.typical[row]), 5),
                    chance_up=None if self.up is None else round(float(self.up[row]), 4),
                    chance_down=None if self.down is None else round(float(self.down[row]), 4),
                    recent_move=None if np.isnan(self.recent[row]) else round(float(self.recent[row]), 5),
                    currency=self.info[item.card_id][2],
                    model_version=self.version,
                    served_by=served_by,
                )
            )
        return out

    def catalog(self) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """Per-card summary and price history as JSON, for the gateway's browsing endpoints.

        History is columnar: `{"days": [days since history.EPOCH], "price": [...], "volume": [... or null]}`;
        `contracts.history.history_points` turns it into the API's points.
        """
        import orjson

        summary: dict[str, bytes] = {}
        histories: dict[str, bytes] = {}
        volume = self.volume
        for card_id, (start, end) in self.cards.items():
            name, set_name, currency = self.info[card_id]
            summary[card_id] = orjson.dumps(
                {
                    "card_id": card_id,
                    "card_name": name,
                    "set_name": set_name,
                    "currency": currency,
                    "first_date": history.date_of(int(self.days[start])).isoformat(),
                    "last_date": history.date_of(int(self.days[end - 1])).isoformat(),
                    "last_price": round(float(self.market[end - 1]), 4),
                    "observations": end - start,
                }
            )
            # Columnar (day numbers, prices, volumes; NaN -> null): no Python object per point.
            histories[card_id] = orjson.dumps(
                {"days": self.days[start:end], "price": self.market[start:end], "volume": volume[start:end]},
                option=orjson.OPT_SERIALIZE_NUMPY,
            )
        return summary, histories
