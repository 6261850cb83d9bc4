"""A model version's priced serving state: every served (card, date) with the model's outputs.

The pipeline prices the state once, partition by partition
(`price` then `write_part`), and merges the partitions into one directory
of flat columns (`merge`) that it logs beside the model. A model replica
memory-maps those columns (`open_dir`): loading 50,000 cards is opening a
few files, and replicas on one machine share the pages through the page
cache instead of each holding a copy.

    rows/<column>.npy   one value per (card, date) row, sorted by card and date
    cards.parquet       card_id, card_name, set_name, currency, start, end (its rows)
    meta.json           the version's signal rule and whether it has chances
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contracts import history
from workers.signals import FIXED, typical_move

EPOCH_DAY = np.datetime64(history.EPOCH.isoformat(), "D")
FORMAT = 1
ROW_COLUMNS: dict[str, str] = {
    "days": "int32",  # days since history.EPOCH
    "market": "float64",  # shown to users as is: kept exact
    "forecast": "float32",
    "fair": "float32",
    "low": "float32",
    "high": "float32",
    "typical": "float32",
    "up": "float32",
    "down": "float32",
    "recent": "float32",
    "volume": "float32",
}
CARD_COLUMNS = ["card_id", "card_name", "set_name", "currency"]


@dataclass
class Priced:
    """Row arrays (ROW_COLUMNS; `up` and `down` None when the model gives no chances) and cards."""

    rows: dict[str, np.ndarray | None]
    cards: pd.DataFrame  # CARD_COLUMNS + start, end
    basis: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        days = self.rows["days"]
        return 0 if days is None else len(days)


def price(state: pd.DataFrame, model: Any, chunk_rows: int = 250_000) -> Priced:
    """Run the model once over every row of `state` (feature rows sorted by card and date), in chunks."""
    n = len(state)
    rows: dict[str, Any] = {k: np.empty(n, dtype=dtype) for k, dtype in ROW_COLUMNS.items()}
    has_chances = True
    for start in range(0, n, chunk_rows):
        part = state.iloc[start : start + chunk_rows]
        fc = model.predict(part)
        market = part["market_price"].to_numpy(dtype="float64")
        fair = market * np.exp(fc.fair)
        sl = slice(start, start + len(part))
        rows["market"][sl] = market
        rows["forecast"][sl] = market * np.exp(fc.ret)
        rows["fair"][sl] = fair
        # The interval is the model's 80% band of the next observed price,
        # widened where needed so that it always contains the fair price.
        rows["low"][sl] = np.minimum(market * np.exp(fc.low), fair)
        rows["high"][sl] = np.maximum(market * np.exp(fc.high), fair)
        # From the band before it is widened to the fair price: the card's own spread.
        rows["typical"][sl] = typical_move(fc.low, fc.high)
        if fc.up is None or fc.down is None:
            has_chances = False
        else:
            rows["up"][sl], rows["down"][sl] = fc.up, fc.down
    if not has_chances:
        rows["up"] = rows["down"] = None
    # What the one-line rules read: the move over the last h observations, as the pipeline computed it.
    log_price = np.log(rows["market"])
    codes, uniques = pd.factorize(state["card_id"], sort=False)
    h = int(getattr(model, "horizon", 1))
    rows["recent"][:] = np.nan
    if n > h:
        same = codes[h:] == codes[:-h]
        rows["recent"][h:] = np.where(same, log_price[h:] - log_price[:-h], np.nan)
    rows["days"][:] = (state["date"].to_numpy().astype("datetime64[D]") - EPOCH_DAY).astype("int32")
    rows["volume"][:] = (
        state["volume"].to_numpy(dtype="float32") if "volume" in state.columns else np.full(n, np.nan, "float32")
    )
    # Per-card boundaries from integer codes: materializing one Python
    # string per row (millions) would fragment the heap for good.
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if n else np.array([], "int64")
    ends = np.r_[starts[1:], n] if n else starts
    cards = pd.DataFrame({"card_id": [str(uniques[codes[s]]) for s in starts]})
    for column in CARD_COLUMNS[1:]:
        values = state[column].iloc[starts].tolist() if column in state.columns else [None] * len(starts)
        cards[column] = [None if pd.isna(v) else str(v) for v in values]
    cards["start"], cards["end"] = starts.astype("int64"), ends.astype("int64")
    policy = getattr(model, "signal_policy", FIXED)
    basis = {**policy.as_dict(), "reason": policy.reason[:1000], "horizon": max(policy.horizon, 1)}
    return Priced(rows, cards, basis)


def write_part(priced: Priced, path: Path) -> Path:
    """One partition's priced rows with their cards, as one Parquet file (atomically)."""
    frame = pd.DataFrame({k: v for k, v in priced.rows.items() if v is not None})
    ids = np.repeat(priced.cards["card_id"].to_numpy(dtype=object), priced.cards["end"] - priced.cards["start"])
    frame.insert(0, "card_id", ids)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    cards = priced.cards.drop(columns=["start", "end"]).to_json(orient="records")
    meta = {**(table.schema.metadata or {}), b"pokewatch.basis": json.dumps(priced.basis).encode(),
            b"pokewatch.cards": cards.encode()}  # fmt: skip
    pq.write_table(table.replace_schema_metadata(meta), tmp)
    os.replace(tmp, path)
    return path


def read_part(path: Path) -> Priced:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    frame = table.to_pandas()
    rows = {k: (frame[k].to_numpy(dtype=dtype) if k in frame.columns else None) for k, dtype in ROW_COLUMNS.items()}
    cards = pd.DataFrame(json.loads(meta[b"pokewatch.cards"]), columns=CARD_COLUMNS)
    codes = pd.factorize(frame["card_id"], sort=False)[0]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(frame) else np.array([], "int64")
    cards["start"], cards["end"] = starts.astype("int64"), np.r_[starts[1:], len(frame)].astype("int64")
    return Priced(rows, cards, json.loads(meta[b"pokewatch.basis"]))


def merge(parts: Sequence[Path], out_dir: Path) -> dict[str, Any]:
    """The partitions' priced rows as one directory of flat columns, read one partition at a time."""
    import pyarrow.parquet as pq

    total = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    first = read_part(parts[0]) if parts else None
    chances = first is not None and first.rows["up"] is not None
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "rows").mkdir(parents=True)
    columns = {
        k: np.lib.format.open_memmap(tmp / "rows" / f"{k}.npy", mode="w+", dtype=dtype, shape=(total,))
        for k, dtype in ROW_COLUMNS.items()
        if chances or k not in ("up", "down")
    }
    cards: list[pd.DataFrame] = []
    offset = 0
    for i, path in enumerate(parts):
        part = first if i == 0 and first is not None else read_part(path)
        n = len(part)
        for k, out in columns.items():
            out[offset : offset + n] = part.rows[k]
        cards.append(part.cards.assign(start=part.cards["start"] + offset, end=part.cards["end"] + offset))
        offset += n
    for out in columns.values():
        out.flush()
    del columns
    index = pd.concat(cards, ignore_index=True) if cards else pd.DataFrame(columns=[*CARD_COLUMNS, "start", "end"])
    if index["card_id"].duplicated().any():
        raise ValueError("a card is in more than one partition: the partitions overlap")
    index.to_parquet(tmp / "cards.parquet", index=False)
    meta = {"format": FORMAT, "rows": total, "cards": len(index), "chances": chances,
            "basis": first.basis if first else {}}  # fmt: skip
    (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return meta


def open_dir(directory: Path) -> Priced:
    """The merged state, its row columns memory-mapped read-only (nothing copied)."""
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{directory}: priced state format {meta.get('format')!r}, this code reads {FORMAT}")
    rows: dict[str, np.ndarray | None] = {}
    for k in ROW_COLUMNS:
        path = directory / "rows" / f"{k}.npy"
        rows[k] = np.load(path, mmap_mode="r") if path.exists() else None
    cards = pd.read_parquet(directory / "cards.parquet")
    return Priced(rows, cards, meta["basis"])
