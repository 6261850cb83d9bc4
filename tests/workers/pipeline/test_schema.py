"""Data layer: validation sends every bad row to quarantine with a reason."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workers.pipeline.schema import validate


def _raw(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


GOOD = {"card_id": "a", "date": "2026-01-01", "market_price": "10.5", "card_name": "A", "set_name": "S"}


def test_good_rows_are_typed():
    out = validate(_raw([GOOD, {**GOOD, "date": "2026-01-02", "market_price": 11}]))
    assert len(out.clean) == 2 and out.quarantined.empty
    assert out.clean["market_price"].dtype == np.float64
    assert str(out.clean["date"].dtype).startswith("datetime64")
    assert out.clean["currency"].tolist() == ["USD", "USD"]


def test_each_bad_row_gets_its_reason():
    rows = [
        GOOD,
        {**GOOD, "date": "2026-01-02", "market_price": "-3"},
        {**GOOD, "date": "2026-01-03", "market_price": "0"},
        {**GOOD, "date": "2026-01-04", "market_price": "n/a"},
        {**GOOD, "date": "2026-01-05", "market_price": None},
        {**GOOD, "date": "2026-01-06", "market_price": "inf"},
        {**GOOD, "date": "not a date"},
        {**GOOD, "card_id": ""},
        {**GOOD, "card_id": "ghost", "date": "2026-01-07"},
    ]
    out = validate(_raw(rows), known_cards={"a"})
    assert len(out.clean) == 1
    assert out.reasons() == {
        "non-positive price": 2,
        "non-numeric price": 1,
        "missing price": 1,
        "non-finite price": 1,
        "bad date": 1,
        "missing card_id": 1,
        "unknown card": 1,
    }
    # Quarantined rows keep their original values for a person to inspect.
    assert "n/a" in out.quarantined["market_price"].tolist()


def test_duplicate_card_date_keeps_last_and_quarantines_the_rest():
    rows = [GOOD, {**GOOD, "market_price": "12"}, {**GOOD, "date": "2026-01-01 00:00:00", "market_price": "13"}]
    out = validate(_raw(rows))
    assert out.clean["market_price"].tolist() == [13.0]
    assert out.reasons() == {"duplicate card_id and date (kept the last)": 2}


def test_unknown_cards_accepted_without_catalog():
    out = validate(_raw([{**GOOD, "card_id": "anything"}]))
    assert len(out.clean) == 1


def test_bad_volume_is_quarantined_not_crashing():
    out = validate(_raw([{**GOOD, "volume": "lots"}, {**GOOD, "date": "2026-01-02", "volume": "3"}]))
    assert out.reasons() == {"bad volume": 1}
    assert out.clean["volume"].tolist() == [3.0]


def test_the_documented_csv_example_is_read_and_validated_whole(tmp_path) -> None:
    """docs/pipeline/pipeline.md, "Bring your own prices": its example rows pass through the file source."""
    from datetime import date

    from tests.cli.documented import one_block
    from workers.pipeline.schema import validate as validate_rows
    from workers.pipeline.sources.file import FileSource

    (tmp_path / "my_prices.csv").write_text(one_block("csv", "card_id,card_name"))
    checked = validate_rows(FileSource(tmp_path / "my_prices.csv").fetch(date(2026, 12, 2)))
    assert len(checked.clean) == 2 and checked.quarantined.empty
    assert set(checked.clean["card_id"]) == {"base1-4"} and checked.clean["market_price"].tolist() == [412.5, 405.0]
