"""How the catalogue is split into partitions, and which partition a card is in.

A card's partition is a stable hash of its id (CRC-32, the same on every
machine, Python version and run) modulo the partition count, so a card
stays in its partition from one day to the next and every mapped task of
the DAG (collect, validate, features, price) sees the same cards. The
count scales with the catalogue: one partition per `cards_per_partition`
cards, at most MAX_PARTITIONS (tens to hundreds of mapped tasks, never
one per card: Airflow's scheduler slows with thousands of them).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_PARTITIONS = 256


@dataclass(frozen=True)
class Partition:
    """Partition `index` of `count`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_PARTITIONS or not 0 <= self.index < self.count:
            raise ValueError(f"no partition {self.index} of {self.count} (count 1..{MAX_PARTITIONS})")

    @property
    def name(self) -> str:
        """As it appears in file names and task labels: `part-0003-of-0025`."""
        return f"part-{self.index:04d}-of-{self.count:04d}"

    def holds(self, card_ids: Iterable[str] | pd.Series) -> np.ndarray:
        """Which of the card ids are in this partition (a boolean mask)."""
        return partition_of(card_ids, self.count) == self.index

    def as_dict(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}


def card_hash(card_id: str) -> int:
    """The card's stable 32-bit hash."""
    return zlib.crc32(str(card_id).encode("utf-8"))


def partition_of(card_ids: Iterable[str] | pd.Series, count: int) -> np.ndarray:
    """Each card's partition number, for `count` partitions (hashed once per distinct id)."""
    codes, uniques = pd.factorize(pd.Series(list(card_ids) if not isinstance(card_ids, pd.Series) else card_ids))
    hashed = np.fromiter((card_hash(u) % count for u in uniques), dtype="int64", count=len(uniques))
    return hashed[codes] if len(codes) else np.zeros(0, dtype="int64")


def partition_count(cards: int, cards_per_partition: int, fixed: int | None = None) -> int:
    """How many partitions a catalogue of `cards` cards is split into (`fixed` wins when set)."""
    if fixed is not None:
        return max(1, min(MAX_PARTITIONS, fixed))
    return max(1, min(MAX_PARTITIONS, math.ceil(max(cards, 1) / cards_per_partition)))


def partitions(count: int) -> list[Partition]:
    return [Partition(i, count) for i in range(count)]


def sample_order(card_ids: Iterable[str]) -> list[str]:
    """The cards in a stable pseudo-random order (by hash, then id): a prefix of it is a
    sample of whole cards that does not depend on how ids are spelled or sorted."""
    return sorted(card_ids, key=lambda c: (zlib.crc32(b"sample:" + str(c).encode("utf-8")), str(c)))
