"""Tables laid out with spaces in plain text: a list pasted into a mail body.

Offices align a list in a monospaced view with runs of spaces or ideographic spaces::

    氏名　　　　住所　　　　　　　　　電話
    山田　太郎　東京都千代田区1-1　　03-1234-5678
    佐藤　花子　大阪府大阪市北区2-2　06-1234-5678

Read like a CSV file (``table_chunks``): one chunk per column, headed by its label,
so the table detectors (``roster``) see the rows.  How a block is read:

* **Width.**  Positions are display columns: a full-width character is two, an
  ideographic space is two, a tab runs to the next multiple of eight.
* **Header.**  A line that splits into two or more cells at gaps of two display
  columns or more (two spaces, one ideographic space, a tab).  A single space
  stays inside a cell (``Full name``, ``1-1 2F``).
* **Rows.**  The lines after it, up to a blank line or the first line that does
  not fit.  A line fits when each piece of its text (split at the same gaps)
  starts where a header cell starts (within one full-width character) or follows
  another piece of the same column (``山田　太郎``: two pieces, one name), and
  fills two columns or more.  Rule lines (``----``, ``＝＝＝``) are skipped, and
  so is one line pushed out of line (a long name) when the next fits again.
* **Tabs.**  A header line with tabs is read as cells pasted from a spreadsheet:
  the tabs separate the cells (a run of tabs, typed to align, is one separator)
  whatever the sender's font showed.
* **Table.**  A header and at least two rows.

Prose with two spaces after a sentence does not fit: its pieces start anywhere,
not under the header's cells.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from dlp.detect import native
from dlp.detect.base import Words
from dlp.extract.tables import columns_to_chunks, rows_to_columns
from dlp.model import TextChunk

MIN_ROWS = 2
_SLACK = 2
"""Display columns a cell may start away from its header cell (one full-width
character: a header indented or centred by one)."""
_RULE = re.compile(r"^[\s\-=_~─━―‐－＝〜・.:|+]+$")
_MAX_LINE = 1000
"""Longer lines are no table row (and are not measured)."""
# Two characters apart by two blanks or more, or by a tab or an ideographic space.
# Written so that no blank can be read two ways: the first form of it
# (\S(?:\s*[\u3000\t]|\s{2,})\s*\S) tried every split of a run of tabs, 7 ms for
# a 1,000-character line of them, 14 s for 2 MB of such lines.
_GAP = re.compile(r"\S(?:\s\s++|[\u3000\t])\S")
"""A gap of two display columns or more between two pieces of text."""
_TABS = re.compile(r"\t+")
_PIECE = re.compile(r"\S+(?:[ \u00a0]\S+)*")
"""Text between such gaps: a single space or no-break space stays inside."""
_WIDE = re.compile(
    "[\u1100-\u115f\u2e80-\u303e\u3040-\ua4cf\uac00-\ud7a3\uf900-\ufaff"
    "\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\U00020000-\U0003fffd]"
)
"""Characters two display columns wide (East Asian Wide and Fullwidth, as
terminals and monospaced fonts draw them)."""


def might_hold_table(text: str) -> bool:
    """Cheap test before any measuring: a gap of two display columns somewhere.

    One pass, compiled where it is built (the four ``in`` tests walk Japanese text
    up to four times: 13 µs for 6,600 characters, against 3)."""
    if native.C is not None:
        return native.C.column_gap(text)
    return (" " in text and "  " in text) or "\u3000" in text or "\t" in text


def _width(s: str) -> int:
    return len(s) if s.isascii() else len(s) + len(_WIDE.findall(s))


def pieces(line: str) -> list[tuple[int, str]]:
    """(display column where it starts, text) of each run of text in ``line``
    between gaps of two display columns or more."""
    if "\t" in line:
        # A tab always ends a piece and runs to the next multiple of eight.
        out: list[tuple[int, str]] = []
        pos = 0
        for part in line.split("\t"):
            out.extend((pos + start, text) for start, text in pieces(part))
            pos += _width(part)
            pos += 8 - pos % 8
        return out
    out = []
    pos = done = 0
    for m in _PIECE.finditer(line):
        pos += _width(line[done : m.start()])
        out.append((pos, m.group()))
        pos += _width(m.group())
        done = m.end()
    return out


def _row(starts: Sequence[int], line: str) -> list[str] | None:
    """The cells of ``line`` under header cells starting at ``starts``, or None
    when the line does not fit."""
    cells = [""] * len(starts)
    opened = [False] * len(starts)
    for pos, text in pieces(line):
        col = bisect.bisect_right(starts, pos + _SLACK) - 1
        if col < 0:
            return None
        if abs(pos - starts[col]) <= _SLACK:
            opened[col] = True
            cells[col] = text if not cells[col] else f"{cells[col]} {text}"
        elif opened[col]:
            cells[col] = f"{cells[col]} {text}"  # the rest of this cell (山田　太郎)
        else:
            return None
    return cells if sum(1 for c in cells if c) >= 2 else None


def _tab_cells(line: str) -> list[str]:
    text = line.strip()
    parts = _TABS.split(text) if "\t\t" in text else text.split("\t")
    return [p.strip() for p in parts]


def _tab_row(width: int, line: str) -> list[str] | None:
    if "\t" not in line:
        return None
    cells = _tab_cells(line)
    if len(cells) > width or sum(1 for c in cells if c) < 2:
        return None
    return cells + [""] * (width - len(cells))


def tables(
    text: str,
    wants: Callable[[Sequence[str]], bool] = lambda labels: True,
    header_words: Words | None = None,
) -> Iterator[list[list[str]]]:
    """Each aligned table in ``text`` as rows of cells, its header row first.

    ``header_words``: only lines holding one are tried as a header, and ``wants``
    says whether a header with these labels is worth reading on (a table detector
    knows which it can use): long text then costs one search (compiled), not a
    measurement of every line."""
    if header_words is None:
        starts: Iterable[int] = _line_starts(text)
    else:
        starts = sorted({text.rfind("\n", 0, s) + 1 for s, _, _ in header_words.spans(text)})
    done = 0
    for start in starts:
        if start < done:
            continue  # inside a table already read
        line, pos = _line_at(text, start)
        if len(line) > _MAX_LINE or _GAP.search(line) is None:
            continue
        head = pieces(line)
        if len(head) < 2 or not wants([t for _, t in head]):
            continue
        tabbed = "\t" in line
        header = _tab_cells(line) if tabbed else [t for _, t in head]
        if len(header) < 2 or (tabbed and not wants(header)):
            continue
        column_starts = [s for s, _ in head]
        rows: list[list[str]] = [header]
        while pos < len(text):
            nxt, after = _line_at(text, pos)
            if not nxt.strip() or len(nxt) > _MAX_LINE:
                break
            if not _RULE.match(nxt):
                cells = _tab_row(len(header), nxt) if tabbed else _row(column_starts, nxt)
                if cells is None:
                    # One row pushed out of line (a long name) does not end the
                    # table when the next one fits again; two in a row do.
                    ahead, _ = _line_at(text, after)
                    fits = _tab_row(len(header), ahead) if tabbed else _row(column_starts, ahead)
                    if fits is None or not rows[1:]:
                        break
                else:
                    rows.append(cells)
            pos = after
        if len(rows) - 1 >= MIN_ROWS:
            done = pos
            yield rows


def _line_starts(text: str) -> Iterator[int]:
    start = 0
    while start < len(text):
        yield start
        end = text.find("\n", start)
        if end < 0:
            return
        start = end + 1


def _line_at(text: str, start: int) -> tuple[str, int]:
    """The line starting at ``start`` (without its line break), and where the next starts."""
    end = text.find("\n", start)
    if end < 0:
        end = len(text)
    return text[start:end].rstrip("\r"), end + 1


def table_chunks(
    text: str,
    location: str,
    wants: Callable[[Sequence[str]], bool] = lambda labels: True,
    header_words: Words | None = None,
) -> list[list[TextChunk]]:
    """Each aligned table in ``text`` as column chunks (``<location>!tableN!B``)
    headed by their labels, as a CSV file's are."""
    out = []
    for n, rows in enumerate(tables(text, wants, header_words), 1):
        out.append(columns_to_chunks(rows_to_columns(rows), f"{location}!table{n}"))
    return out
