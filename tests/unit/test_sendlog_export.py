"""CSV for Japanese Excel and JSON Lines for SIEM tools."""

from __future__ import annotations

import csv
import io
import json

from sendlog_support import make_record

from dlp.model import Action
from dlp.sendlog import StoredEntry
from dlp.sendlog.export import COLUMNS, write_csv, write_jsonl


def _entries() -> list[StoredEntry]:
    recs = [
        make_record(1, subject='=HYPERLINK("http://x")', mynumbers=2, action=Action.HOLD),
        make_record(2, subject="髙橋さんへ 資料 𠮷野家", attachments=(("①名簿.xlsx", "ab" * 32),)),
    ]
    return [StoredEntry(i + 1, r, "0" * 64, f"{i:064d}") for i, r in enumerate(recs)]


def test_csv_utf8_has_bom_and_all_columns() -> None:
    buf = io.BytesIO()
    assert write_csv(_entries(), buf) == 2
    data = buf.getvalue()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == [c[0] for c in COLUMNS]
    assert b"\r\n" in data
    row = dict(zip(rows[0], rows[2], strict=True))
    assert row["subject"] == "髙橋さんへ 資料 𠮷野家"
    assert row["attachments"].startswith("①名簿.xlsx (")
    assert row["attachment_sha256"] == "ab" * 32
    assert row["recipients"] == "k@partner.co.jp (partner)"


def test_csv_neutralises_formulas() -> None:
    buf = io.BytesIO()
    write_csv(_entries(), buf)
    rows = list(csv.reader(io.StringIO(buf.getvalue().decode("utf-8-sig"), newline="")))
    assert rows[1][rows[0].index("subject")].startswith("'=HYPERLINK")


def test_csv_shift_jis_round_trips_japanese() -> None:
    buf = io.BytesIO()
    write_csv(_entries(), buf, encoding="shift_jis", japanese_headers=True)
    data = buf.getvalue()
    assert not data.startswith(b"\xef\xbb\xbf")
    text = data.decode("cp932")  # must decode cleanly
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0][:4] == ["ID", "日時(UTC)", "日時", "種別"]
    # 髙 and ① are CP932 extensions and survive; 𠮷 is outside CP932 and becomes "?"
    assert "髙橋さんへ 資料 ?野家" in rows[2]
    assert any(c.startswith("①名簿.xlsx") for c in rows[2])
    assert "判定" in rows[0] and "hold" in rows[1]


def test_jsonl_carries_every_field() -> None:
    buf = io.BytesIO()
    entries = _entries()
    assert write_jsonl(entries, buf) == 2
    lines = buf.getvalue().decode("utf-8").splitlines()
    obj = json.loads(lines[0])
    want = set(entries[0].record.to_json()) | {"id", "hash", "prev_hash"}
    assert set(obj) == want
    assert obj["verdict"]["action"] == "hold"
    assert obj["findings"][0] == {
        "detector": "mynumber",
        "confidence": "high",
        "count": 2,
        "distinct": 2,
        "locations": 1,
    }
    assert json.loads(lines[1])["attachments"][0]["filename"] == "①名簿.xlsx"
