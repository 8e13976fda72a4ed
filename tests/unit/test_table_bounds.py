"""A CSV whose ragged rows would pad into millions of cells is read as text."""

from __future__ import annotations

from dlp.config import ScanSettings
from dlp.extract.base import Budget
from dlp.extract.text import extract, table_chunks


def test_one_wide_row_among_many_short_ones_is_not_padded_into_a_table() -> None:
    text = "a\n" * 1000 + "," * 10_000 + "\n"  # 12 KB; as a table 10 million cells
    assert table_chunks(text, "attachment:x.csv") == ()
    result = extract(
        text.encode(), "x.csv", "attachment:x.csv", Budget.from_settings(ScanSettings())
    )
    assert result.kind == "text"
    assert [c.text for c in result.chunks] == [text]


def test_ordinary_ragged_table_still_gets_columns() -> None:
    text = "氏名,個人番号,備考\n山田,123456789018\n佐藤,234567890123,転居\n"
    chunks = table_chunks(text, "attachment:x.csv")
    assert {c.field_label for c in chunks} >= {"氏名", "個人番号"}
