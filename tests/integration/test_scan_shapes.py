"""Issue 15: My Number shapes real offices produce, through the real ``dlp scan --json``.

A Word form with one digit per table cell, an HTML table with the number split
4-4-4 over three cells, and invisible characters (zero-width, soft hyphen, bidi
marks) pasted inside a number.  Each must give a ``high`` finding; cells that
merely sit next to each other (a year, a postcode part, an amount) must not
become a number without a My Number label over or beside them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_scan_cli import NUMBERS, lines, run

pytestmark = pytest.mark.timeout(120)

NUMBER = NUMBERS[0]


def high(*paths: Path) -> dict[str, int]:
    """High My Number findings per scanned file (one ``dlp scan`` for all of them)."""
    out = lines(run("--json", "--min-confidence", "low", *map(str, paths)))
    return {Path(r["source"]).name: r["summary"]["mynumber"]["by_confidence"]["high"] for r in out}


def _docx(path: Path, rows: list[list[str]], merge_first_row: bool = False) -> Path:
    docx = pytest.importorskip("docx")
    doc = docx.Document()
    doc.add_paragraph("扶養控除等申告書")
    width = max(len(r) for r in rows)
    table = doc.add_table(rows=len(rows), cols=width)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    if merge_first_row:
        table.cell(0, 0).merge(table.cell(0, width - 1))
        table.cell(0, 0).text = rows[0][0]
    doc.save(str(path))
    return path


def test_word_form_one_digit_per_cell(tmp_path: Path) -> None:
    beside = _docx(tmp_path / "beside.docx", [["氏名", "山田太郎"], ["個人番号", *NUMBER]])
    under = _docx(tmp_path / "under.docx", [["個人番号"], list(NUMBER)], merge_first_row=True)
    # Twelve one-digit cells with no My Number label: a score sheet, not a number.
    scores = _docx(tmp_path / "scores.docx", [["評価", *NUMBER]])
    assert high(beside, under, scores) == {"beside.docx": 1, "under.docx": 1, "scores.docx": 0}
