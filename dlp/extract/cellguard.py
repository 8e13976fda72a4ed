"""Refuse "cell bombs" before calamine allocates them.

calamine stores a sheet as one dense rectangle from the first to the last
used cell (32 bytes a cell).  A 6 KB xlsx with values in A1 and XFD1048576
makes it ask for 512 GB and *abort the process* (a Rust allocation failure is
not a Python exception); an ODS with one cell repeated 1000 x 100000 times
does the same in 1.5 KB.  So the span of every sheet is bounded first:

- xlsx: one regex pass over each worksheet part, streamed in 4 MB blocks, that
  only matches the rare references able to make a sheet large (columns from AA
  on, rows from 200 000 on, row elements included).  If those leave the box
  within ``limit`` cells the sheet is safe; otherwise a precise pass decides.
  Cells and rows without an ``r`` attribute are placed one after the other by
  calamine, so they cannot jump.
- ods: lxml iterparse over content.xml, multiplying out
  ``number-rows-repeated`` / ``number-columns-repeated`` of cells that hold a
  value (LibreOffice legitimately repeats *empty* rows a million times).

xls (BIFF8) cannot exceed 65 536 x 256 cells and is not checked.
"""

from __future__ import annotations

import re
import zipfile

from lxml import etree

from dlp.extract.base import Budget, BudgetExceeded
from dlp.model import AttachmentStatus

_BLOCK = 4 << 20
_SAFE_ROWS = 199_999
_SAFE_COLS = 26
# (a) two-or-more-letter columns; (b) rows >= 200 000 (cell refs and <row r=...>)
_WIDE_OR_DEEP = re.compile(
    rb"""r=["']([A-Z]{2,4})([0-9]{1,9})["']|r=["']([A-Z]?)([0-9]{7,9}|[2-9][0-9]{5})["']"""
)
_ANY_REF = re.compile(rb"""r=["']([A-Z]{0,4})([0-9]{1,9})["']""")


def cell_limit(budget: Budget) -> int:
    """Cells a sheet may span: a sixteenth of the byte budget (calamine: 32 B a cell)."""
    return max(1_000_000, budget.max_total_bytes // 16)


def col_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ch - 64)
    return n


def check_xlsx(zf: zipfile.ZipFile, budget: Budget) -> None:
    limit = cell_limit(budget)
    for info in zf.infolist():
        name = info.filename
        if not (name.startswith("xl/worksheets/") and name.endswith(".xml")):
            continue
        rows, cols = _scan(zf, info, _WIDE_OR_DEEP, budget)
        if max(rows, _SAFE_ROWS) * max(cols, _SAFE_COLS) <= limit:
            continue
        rows, cols = _scan(zf, info, _ANY_REF, budget)
        if rows * cols > limit:
            raise BudgetExceeded(
                AttachmentStatus.TOO_LARGE,
                f"a sheet spans {rows} rows x {cols} columns, beyond {limit} cells (cell bomb?)",
            )


def _scan(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, pattern: re.Pattern[bytes], budget: Budget
) -> tuple[int, int]:
    max_row = max_col = 0
    carry = b""
    with zf.open(info) as fh:
        while True:
            block = fh.read(_BLOCK)
            if not block:
                break
            budget.check_time()
            buf = carry + block
            for m in pattern.finditer(buf):
                letters = m.group(1) if m.group(1) is not None else m.group(3)
                digits = m.group(2) if m.group(2) is not None else m.group(4)
                if letters:
                    max_col = max(max_col, col_number(letters))
                max_row = max(max_row, int(digits))
            carry = buf[-32:]  # a reference cut at the block edge is seen in the next pass
    return max_row, max_col


_TBL = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_ROW = f"{{{_TBL}}}table-row"
_CELL = f"{{{_TBL}}}table-cell"
_COVERED = f"{{{_TBL}}}covered-table-cell"
_TABLE = f"{{{_TBL}}}table"
_ROWS_REP = f"{{{_TBL}}}number-rows-repeated"
_COLS_REP = f"{{{_TBL}}}number-columns-repeated"
_VALUE_TYPE = f"{{{_OFFICE}}}value-type"


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 1


def check_ods(zf: zipfile.ZipFile, budget: Budget) -> None:
    if "content.xml" not in zf.namelist():
        return
    limit = cell_limit(budget)
    with zf.open("content.xml") as fh:
        row_index = 0
        max_row = max_col = 0
        count = 0
        for event, el in etree.iterparse(
            fh,
            events=("start", "end"),
            tag=(_TABLE, _ROW),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
        ):
            if el.tag == _TABLE:
                if event == "start":
                    row_index = 0
                else:
                    el.clear()
                continue
            if event == "start":
                continue
            count += 1
            if count % 2048 == 0:
                budget.check_time()
            reps = _int(el.get(_ROWS_REP))
            col = last_valued = 0
            for cell in el:
                if cell.tag not in (_CELL, _COVERED):
                    continue
                col += _int(cell.get(_COLS_REP))
                if cell.get(_VALUE_TYPE) is not None or len(cell):
                    last_valued = col
            row_index += reps
            if last_valued:
                max_row = max(max_row, row_index)
                max_col = max(max_col, last_valued)
                if max_row * max_col > limit:
                    raise BudgetExceeded(
                        AttachmentStatus.TOO_LARGE,
                        f"a sheet spans {max_row} rows x {max_col} columns, beyond {limit} cells "
                        "(cell bomb?)",
                    )
            el.clear()
            parent = el.getparent()
            while parent is not None and el.getprevious() is not None:
                del parent[0]  # keep the tree from growing with the rows already seen
