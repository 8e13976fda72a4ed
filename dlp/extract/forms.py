"""Form-shaped sheets: labels left of values, and numbers typed one digit per cell.

Column chunks give a table's header to every value under it, but a form
(扶養控除等申告書, 個人番号届出書 …) puts the label to the *left* of the value,
often across merged cells, and the official Excel templates give each of
the twelve digits of a My Number its own box.  For small sheets (forms are
small; big ones are tables) two fixes are applied to the rendered columns:

- a run of 12 or more cells in a row holding one digit each, behind a label
  or under one (a Word form puts 個人番号 in a merged cell over the twelve
  boxes), is joined into the first cell of the run (the others emptied), so the number
  exists as one string;
- a cell with 10+ digits gets the nearest text label within three cells to
  its left prepended (``個人番号 123456789012``), so the keyword sits next to
  the number in that column's text.

- cells of digit groups in a row that make twelve digits together (4-4-4, 3-3-3-3,
  6-6), behind or under such a label, are joined the same way (``1234 5678 9012``).

All only where that label holds a My Number keyword (the detector's own
list), so ordinary tables — a name left of a number, twelve monthly figures —
are left exactly as they are.  Nothing is duplicated: every digit still
appears exactly once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from dlp.extract.tables import is_value_like

MAX_ROWS = 500
LOOK_LEFT = 3


def apply(columns: list[list[str]], keywords: tuple[str, ...] = ()) -> None:
    """Rewrite ``columns`` in place; ``keywords``: ``[scan] extra_keywords``."""
    if not columns or max(len(c) for c in columns) > MAX_ROWS:
        return
    has_keyword = keyword_matcher(keywords)
    height = max(len(c) for c in columns)
    for r in range(height):
        _join_digit_boxes(columns, r, has_keyword)
        _join_quads(columns, r, has_keyword)
    for c in range(1, len(columns)):
        col = columns[c]
        for r, value in enumerate(col):
            if len(value) < 10 or sum(ch.isdigit() for ch in value) < 10:
                continue
            label = _left_label(columns, c, r)
            if label and label not in value and has_keyword(label):
                col[r] = f"{label} {value}"


@functools.lru_cache(maxsize=8)
def keyword_matcher(extra: tuple[str, ...] = ()) -> Callable[[str], bool]:
    """Whether a label names My Number: the detector's own words plus the configured
    ``extra_keywords`` (the list has one home, ``dlp.detect.mynumber``).  Cached: one
    per setting, not one regex build per sheet or table."""
    from dlp.detect.mynumber import build_detector

    return build_detector(extra_keywords=extra).has_keyword


def _cell(columns: list[list[str]], c: int, r: int) -> str:
    col = columns[c]
    return col[r].strip() if r < len(col) else ""


def _join_digit_boxes(columns: list[list[str]], r: int, has_keyword: Callable[[str], bool]) -> None:
    c = 0
    while c < len(columns):
        start = c
        while c < len(columns) and _single_digit(_cell(columns, c, r)):
            c += 1
        if c - start >= 12 and (
            has_keyword(_left_label(columns, start, r))
            or has_keyword(_above_label(columns, start, r))
        ):
            digits = "".join(_cell(columns, k, r) for k in range(start, c))
            columns[start][r] = digits
            for k in range(start + 1, c):
                columns[k][r] = ""
        c = max(c, start + 1)


def _join_quads(columns: list[list[str]], r: int, has_keyword: Callable[[str], bool]) -> None:
    """Cells of digit groups in a row that hold twelve digits together (a number typed
    4-4-4, 3-3-3-3 or 6-6 into boxes) behind or under a My Number label: joined with
    spaces into the first cell."""
    c = 0
    while c < len(columns):
        start = c
        while c < len(columns) and _group(_cell(columns, c, r)):
            c += 1
        run = c - start
        if (
            2 <= run <= 6
            and sum(len(_cell(columns, k, r)) for k in range(start, c)) == 12
            and (
                has_keyword(_left_label(columns, start, r))
                or has_keyword(_above_label(columns, start, r))
            )
        ):
            columns[start][r] = " ".join(_cell(columns, k, r) for k in range(start, c))
            for k in range(start + 1, c):
                columns[k][r] = ""
        c = max(c, start + 1)


def _group(cell: str) -> bool:
    """A group of a number split over cells: 2 to 8 digits (one digit a cell is
    ``_join_digit_boxes``'s)."""
    return 2 <= len(cell) <= 8 and cell.isdigit()


def _single_digit(cell: str) -> bool:
    return len(cell) == 1 and cell.isdigit()


def _left_label(columns: list[list[str]], c: int, r: int) -> str:
    for k in range(c - 1, max(-1, c - 1 - LOOK_LEFT), -1):
        cell = _cell(columns, k, r)
        if cell:
            return cell[:40] if not is_value_like(cell) else ""
    return ""


def _above_label(columns: list[list[str]], c: int, r: int) -> str:
    """The nearest text cell above the first box, over at most ``LOOK_LEFT`` empty
    rows: a heading merged over the boxes lands in the first column it spans.  The
    values of the rows above are passed over - the heading of a list of persons is
    the heading of every row, not only of the first three (a review of 3 Dec 2026
    found one number of four)."""
    blanks = 0
    for k in range(r - 1, -1, -1):
        cell = _cell(columns, c, k)
        if not cell:
            blanks += 1
            if blanks > LOOK_LEFT:
                return ""
            continue
        blanks = 0
        if not is_value_like(cell):
            return cell[:40]
    return ""
