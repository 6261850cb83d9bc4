from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from workers.pipeline.schema import validate
from workers.pipeline.sources.base import SourceError
from workers.pipeline.sources.file import FileSource


def test_csv_with_messy_rows_loads_and_validates(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        "card_id,date,market_price,quantity_sold\n"
        "a,2026-01-01,10,3\n"
        "a,2026-01-02,abc,1\n"
        "b,2026-01-01,-1,0\n"
        "b,2026-01-02,5.5,\n"
    )
    raw = FileSource(path).fetch(date.today())
    assert raw["source"].iloc[0] == "file:mine.csv"
    out = validate(raw)
    assert len(out.clean) == 2
    assert out.clean["volume"].tolist()[0] == 3.0
    assert out.reasons() == {"non-numeric price": 1, "non-positive price": 1}


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "p.parquet"
    pd.DataFrame({"card_id": ["a"], "date": ["2026-01-01"], "market_price": [1.0], "currency": ["JPY"]}).to_parquet(
        path
    )
    raw = FileSource(path).fetch(date.today())
    assert raw["currency"].tolist() == ["JPY"] and raw["card_name"].tolist() == ["a"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "not found"),
        ("x.json", "{}", "unsupported file type"),
        ("cols.csv", "card_id,price\na,1\n", "lacks required column"),
    ],
)
def test_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(SourceError, match=message):
        FileSource(path).fetch(date.today())
