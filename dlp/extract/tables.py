"""Tables → one TextChunk per column, headed by the column's label.

The detector treats ``field_label`` as context for every value under it, so a
column headed 個人番号 raises every number in it to high confidence
(dlp/extract/base.py contract).  Real office sheets rarely start with the
header in row 1 — a title, a date and a blank row usually come first — so the
label of a column is the last text cell above its first value, looked for in
the first ``HEADER_SCAN_ROWS`` rows.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

from dlp.model import TextChunk

HEADER_SCAN_ROWS = 20
_VALUE_CHARS = re.compile(r"[\s\d\-‐‑–—−ー.,/:()+#*]*+")
_DIGIT = re.compile(r"\d")
# "^[...]*\d[...]*$" said the same (only these characters, one digit at least) but
# tried every digit as the one: a 20,000-digit cell ending in a letter took 2 s.


def column_name(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA (spreadsheet column letters)."""
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(65 + rem) + name
    return name


def is_value_like(cell: str) -> bool:
    """A cell that looks like data (digits and separators), not like a heading."""
    # NFKC leaves ASCII as it is (and isascii is a flag, not a scan).
    text = cell if cell.isascii() else unicodedata.normalize("NFKC", cell)
    return _VALUE_CHARS.fullmatch(text) is not None and _DIGIT.search(text) is not None


def column_label(cells: Sequence[str]) -> str | None:
    """The last text cell above the first value; a column without values: its first cell."""
    label: str | None = None
    first: str | None = None
    for cell in cells[:HEADER_SCAN_ROWS]:
        text = cell.strip()
        if not text:
            continue
        if is_value_like(text):
            return label
        label = text[:200]
        if first is None:
            first = label
    return first


def header_row(columns: Sequence[Sequence[str]]) -> int | None:
    """The row among the first ``HEADER_SCAN_ROWS`` with the most heading-like cells.

    A title row (職員名簿) or a date line (作成日 2024-04-01) has one or two;
    the header row of the table has one per column."""
    best, best_count = None, 1
    depth = min(HEADER_SCAN_ROWS, max((len(c) for c in columns), default=0))
    for r in range(depth):
        count = 0
        for col in columns:
            cell = col[r].strip() if r < len(col) else ""
            if cell and not is_value_like(cell):
                count += 1
        if count > best_count:
            best, best_count = r, count
    return best


def columns_to_chunks(
    columns: list[list[str]],
    location: str,
    *,
    letters: bool = True,
    prepare: Callable[[list[list[str]]], None] | None = None,
    title: str = "",
    names_my_number: Callable[[str], bool] | None = None,
) -> list[TextChunk]:
    """One chunk per non-empty column; location ``<location>!C`` (or ``!3`` without letters).

    ``prepare`` may rewrite the cells (forms.py) after the labels were taken.

    ``title`` (a sheet's name) and the cells above the header row title the table; when
    one names My Number (``names_my_number``), a column headed only 番号 or No. is
    headed by that title (``マイナンバー一覧：番号``): the sheet ``マイナンバー`` or the
    list ``マイナンバー一覧`` says what its numbers are."""
    head = header_row(columns)
    labels: list[str | None] = []
    for cells in columns:
        label = None
        if head is not None and head < len(cells):
            cell = cells[head].strip()
            if cell and not is_value_like(cell):
                label = cell[:200]
        labels.append(label if label is not None else column_label(cells))
    if names_my_number is not None and head is not None:
        named = _title_naming(columns, head, title, names_my_number)
        if named:
            labels = [
                f"{named}：{label}" if label and _GENERIC_NUMBER.fullmatch(_fold(label)) else label
                for label in labels
            ]
    if prepare is not None:
        prepare(columns)
    chunks: list[TextChunk] = []
    for idx, cells in enumerate(columns):
        text = "\n".join(cells).strip("\n")
        if not text.strip():
            continue
        col = column_name(idx) if letters else str(idx + 1)
        chunks.append(TextChunk(text=text, location=f"{location}!{col}", field_label=labels[idx]))
    return chunks


_GENERIC_NUMBER = re.compile(r"(?:番号|no\.?|number|ナンバー|num\.?)")


def _fold(label: str) -> str:
    return unicodedata.normalize("NFKC", label).strip().lower()


def _title_naming(
    columns: list[list[str]], head: int, title: str, names: Callable[[str], bool]
) -> str:
    """The sheet name or a title cell above the header row that names My Number, or ""."""
    candidates = [title] + [c[r].strip() for c in columns for r in range(min(head, len(c)))]
    return next((t[:50] for t in candidates if t and names(t)), "")


def rows_to_columns(rows: Sequence[Sequence[str]]) -> list[list[str]]:
    width = max((len(r) for r in rows), default=0)
    cols: list[list[str]] = [[] for _ in range(width)]
    for row in rows:
        for i in range(width):
            cols[i].append(row[i] if i < len(row) else "")
    return cols
