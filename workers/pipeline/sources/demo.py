"""Deterministic SYNTHETIC price histories for the offline default.

Every row it produces says so: card names start with "Synthetic", the set is
"Synthetic Demo Set N", and `source` is "demo (synthetic)".

Calibration. Parameters are set so the output matches these statistics of
the real histories in shared/data (measured on daily-step log returns):

| statistic                         | TCGplayer weekly | Japanese daily | demo   |
|-----------------------------------|------------------|----------------|--------|
| share of unchanged steps          | 45.6%            | 45.9%          | 46.9%  |
| steps moving >= 10%               | 5.5%             | 2.8%           | 2.6%   |
| median |move| among moving steps  | 1.9%             | 1.0%           | 1.5%   |
| 90th pct |move| among moving      | 10.1%            | 5.7%           | 6.1%   |
| 99th pct |move| among moving      | 40%              | 27%            | 24%    |
| mean drift per step               | +0.025%          | -0.25%         | 0.00%  |
| lag-1 autocorrelation of returns  | -0.08            | -0.09          | -0.20  |
| median card price                 | $12.5            | 2,059 JPY      | $9.9   |

(demo: 500 cards x 365 days, seed 7.) The daily demo sits between the two
feeds: daily steps like the Japanese data, tails between the two.

The process: a latent value follows a random walk with a small card-specific
drift; a sale happens on a step with a card-specific probability (no sale:
the last price is carried forward, as both real feeds do); a sale prints the
value times a transient noise term (thin markets overshoot and revert, which
gives the negative autocorrelation), and rare jumps (spikes and crashes) hit
the print and partly persist in the value.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from workers.pipeline.partitions import Partition

SOURCE_NAME = "demo (synthetic)"


def generate(
    n_cards: int = 200, n_days: int = 365, end: date | None = None, seed: int = 7, cards: np.ndarray | None = None
) -> pd.DataFrame:
    """Generate a long table of synthetic daily prices.

    Every card draws from its own random stream (seeded by `seed` and its
    number), so a card's history is the same whichever other cards are
    generated with it: a partition of the catalogue can be generated alone.

    Args:
        n_cards: number of synthetic cards in the catalogue.
        n_days: number of daily observations per card.
        end: last date (default 2026-01-01, fixed so runs are reproducible).
        seed: RNG seed; the same arguments always give the same table.
        cards: the card numbers (0..n_cards-1) to generate; default all.

    Returns:
        Long table with card_id, card_name, set_name, date, market_price,
        currency, source, volume.
    """
    if n_cards < 1 or n_days < 2:
        raise ValueError("demo source needs n_cards >= 1 and n_days >= 2")
    numbers = np.arange(n_cards) if cards is None else np.asarray(cards, dtype="int64")
    end = end or date(2026, 1, 1)
    price = np.empty((len(numbers), n_days))
    volume = np.empty((len(numbers), n_days))
    for row, number in enumerate(numbers):
        price[row], volume[row] = _card(int(number), n_days, seed)

    dates = pd.date_range(end=pd.Timestamp(end), periods=n_days, freq="D")
    # Object arrays repeat references: one Python string per card, not per row.
    card_ids = np.array([f"demo-{i:05d}" for i in numbers], dtype=object)
    names = np.array([f"Synthetic Card {i}" for i in numbers], dtype=object)
    sets = np.array([f"Synthetic Demo Set {i // 100 + 1}" for i in numbers], dtype=object)
    return pd.DataFrame(
        {
            "card_id": np.repeat(card_ids, n_days),
            "card_name": np.repeat(names, n_days),
            "set_name": np.repeat(sets, n_days),
            "date": np.tile(dates.values, len(numbers)),
            "market_price": price.ravel(),
            "currency": "USD",
            "source": SOURCE_NAME,
            "volume": volume.ravel(),
        }
    )


def _card(number: int, n_days: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One card's daily prices and volumes, from its own random stream."""
    rng = np.random.default_rng([seed, number])
    start_price = np.exp(rng.normal(np.log(12.0), 1.1))
    drift = rng.normal(0.0, 0.0012)
    vol = np.exp(rng.normal(np.log(0.014), 0.5))
    sale_prob = float(np.clip(rng.beta(3.0, 3.0) * 1.1, 0.05, 0.98))

    # Latent value: random walk plus rare persistent jumps.
    steps = drift + vol * rng.standard_normal(n_days)
    jump_size = rng.normal(0.0, 0.2, n_days) * (rng.random(n_days) < 0.03)
    log_value = np.log(start_price) + np.cumsum(steps + 0.4 * jump_size)

    # Observed print: value times transient noise (overshoot that reverts).
    noise = rng.normal(0.0, 0.6, n_days) * vol + 0.6 * jump_size
    sale = rng.random(n_days) < sale_prob
    sale[0] = True
    # Carry the last printed price forward on days without a sale.
    idx = np.maximum.accumulate(np.where(sale, np.arange(n_days), 0))
    price = np.round(np.exp((log_value + noise)[idx]), 2).clip(min=0.01)
    volume = np.where(sale, 1 + rng.poisson(3.0 * sale_prob, n_days), 0).astype("float64")
    return price, volume


class DemoSource:
    """Synthetic histories ending the day before the collection date."""

    name = "demo"

    def __init__(self, n_cards: int = 200, n_days: int = 365, seed: int = 7) -> None:
        self.n_cards, self.n_days, self.seed = n_cards, n_days, seed

    def catalogue_size(self) -> int:
        return self.n_cards

    def fetch(self, as_of: date, partition: Partition | None = None) -> pd.DataFrame:
        """The catalogue, or only the cards of `partition` (generated alone, not filtered)."""
        numbers = np.arange(self.n_cards)
        if partition is not None:
            numbers = numbers[partition.holds([f"demo-{i:05d}" for i in numbers])]
        return generate(self.n_cards, self.n_days, end=as_of - timedelta(days=1), seed=self.seed, cards=numbers)
