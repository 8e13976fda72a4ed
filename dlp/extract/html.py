"""HTML → text that keeps numbers whole.

Inline markup (``<span>``, ``<b>``, ``<font>``, ``<a>`` …) and invisible
characters are removed without leaving a gap, so ``1234<span>5678</span>9012``
reads as one number; block and cell boundaries (``<td>``, ``<br>``, ``<p>``,
``<div>``, ``<li>`` …) become line breaks or tabs so two adjacent table cells
never merge into one.  ``&nbsp;`` becomes a plain space.  Script and style
bodies and comments are dropped; ``alt``/``title``/``value`` attributes are
kept (a number in a form field or an image caption is still a number).

A regex pass (C speed, tolerant of broken markup) rather than a DOM parser:
mail HTML is frequently malformed and we need text, not structure.

One exception to "cells never merge": a table row whose consecutive cells hold
digit groups of twelve digits together (4 + 4 + 4, 3 + 3 + 3 + 3, 6 + 6: a My
Number typed into boxes) is read as one number, but only when a My Number label
sits in the row to the left of the boxes or in a heading cell above them (within
three rows).  Without that
label a year, a postcode half and an amount in adjacent cells stay apart.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from dlp.extract import forms
from dlp.extract.base import Budget, Extracted, lines_only_in
from dlp.extract.text import decode_text
from dlp.model import AttachmentStatus, TextChunk

__all__ = ["extract", "extract_html", "html_to_text", "sniff_charset"]

# No "<" inside a tag (quoted or not, here and in _TAG): a "<" that never finds
# its ">" must not make every later "<" scan to the end too (quadratic: 20 KB
# of "<a" took 10 s).
# Comments end where a browser ends them (the HTML standard's tokenizer): "<!-->"
# and "<!--->" are empty comments, "--!>" closes one as "-->" does.  Outside SVG
# and MathML a "<![CDATA[" is a bogus comment that ends at the first ">", not at
# "]]>" (one with a "<" before that ">" is read as text: more than a browser
# shows, never less, and each start scans no further than the next "<").
# Dropping more than a browser hides text the recipient reads (a review of
# 3 Dec 2026 put a number behind "<!-->").
_DROP = re.compile(
    r"<!---?>|<!--.*?(?:--!?>|$)|<(script|style|template)\b[^<>]*>.*?(?:</\1\s*>|$)|<!\[CDATA\[[^<>]*>",
    re.IGNORECASE | re.DOTALL,
)
# Possessive (*+): a tag's name and attributes can be read one way only, so giving
# characters back never finds another match; it only cost time - the name's
# characters are attribute characters too, and "<" + 80,000 letters took 95 s
# of backtracking before the next "<" ended it.
_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9:-]*+)((?:[^<>\"']|\"[^<\"]*\"|'[^<']*')*+)>|<![^<>]*+>|<\?[^<>]*+>"
)
_ATTR = re.compile(
    r"\b(alt|title|value|placeholder)\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)", re.IGNORECASE
)
_CELL = frozenset({"td", "th"})
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "br", "caption", "center", "dd",
        "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure",
        "footer", "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head",
        "header", "hr", "html", "iframe", "img", "input", "legend", "li", "main", "menu",
        "nav", "noscript", "ol", "option", "p", "pre", "section", "select", "summary",
        "table", "tbody", "textarea", "tfoot", "thead", "title", "tr", "ul", "button",
    }
)  # fmt: skip
# Zero-width and soft-hyphen characters hide inside a number to break naive matching.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")


def _visible(text: str) -> str:
    """``text`` without zero-width characters and soft hyphens, NBSP as a space.
    A regex and ``str.replace`` rather than ``str.translate`` with a table, which
    looks every character up in a dict (0.2 ms for 5,000 Japanese characters)."""
    return _INVISIBLE.sub("", text).replace("\xa0", " ")


_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
# Blanks around line breaks: a run of spaces and tabs ending in a line break goes,
# then every line break with the blanks after it becomes one.  The single pattern
# "[ \t]*\n[ \t\n]*" did the same but retried every start inside a long run of
# spaces (quadratic: 80,000 spaces, 3 s); these start where a run starts.
_TRAILING = re.compile(r"(?<![ \t])[ \t]++(?=\n)")
_BREAKS = re.compile(r"\n[ \t\n]*+")


def _squeeze_blanks(text: str) -> str:
    if " \n" in text or "\t\n" in text:
        text = _TRAILING.sub("", text)
    return _BREAKS.sub("\n", text)


_ROW = re.compile(r"<(tr|table)\b[^<>]*>", re.IGNORECASE)
_ROW_END = re.compile(r"</(?:tr|table|tbody|thead|tfoot)\s*>", re.IGNORECASE)
_CELL_OPEN = re.compile(r"<t[dh]\b((?:[^<>\"']|\"[^<\"]*\"|'[^<']*')*+)>", re.IGNORECASE)
_CELL_CLOSE = re.compile(r"</t[dh]\s*>", re.IGNORECASE)
_COLSPAN = re.compile(r"\bcolspan\s*=\s*[\"']?\s*(\d+)", re.IGNORECASE)
_GROUP = re.compile(r"\d{2,8}")
"""A cell holding a group of a number split over cells (4-4-4, 3-3-3-3, 6-6)."""
_LOOK_UP = 3
_MAX_CELLS = 100
"""Wider rows are data dumps, not forms: skipped, which keeps the heading look-up
(cells above times cells) bounded."""


class _Cell:
    """One table cell: first grid column, width, visible text, inner markup span."""

    __slots__ = ("col", "end", "span", "start", "text")

    def __init__(self, col: int, span: int, text: str, start: int, end: int) -> None:
        self.col, self.span, self.text, self.start, self.end = col, span, text, start, end


def _cell_text(inner: str) -> str:
    text = _TAG.sub("", inner)
    return _visible(html.unescape(text)).strip()


def _rows(markup: str) -> list[list[_Cell] | None]:
    """Rows of every table in order; ``None`` where a new table starts."""
    out: list[list[_Cell] | None] = []
    marks = list(_ROW.finditer(markup))
    for n, m in enumerate(marks):
        if m.group(1).lower() == "table":
            out.append(None)
            continue
        # Each search bounded by the next row: markup without </tr> stays linear.
        stop = marks[n + 1].start() if n + 1 < len(marks) else len(markup)
        end_m = _ROW_END.search(markup, m.end(), stop)
        if end_m is not None:
            stop = end_m.start()
        opens = list(_CELL_OPEN.finditer(markup, m.end(), stop))
        row: list[_Cell] = []
        col = 0
        for i, c in enumerate(opens):
            limit = opens[i + 1].start() if i + 1 < len(opens) else stop
            close = _CELL_CLOSE.search(markup, c.end(), limit)
            inner_end = close.start() if close is not None else limit
            span_m = _COLSPAN.search(c.group(1) or "")
            span = max(1, min(int(span_m.group(1)), 64)) if span_m else 1
            text = _cell_text(markup[c.end() : inner_end])
            row.append(_Cell(col, span, text, c.end(), inner_end))
            col += span
        out.append(row)
    return out


def _join_split_numbers(markup: str, keywords: tuple[str, ...]) -> str:
    """Join the cells of a number typed in groups (4-4-4, 3-3-3-3, 6-6) under or beside
    a My Number label (see the module docstring) by replacing the markup between them
    with a space."""
    has_keyword = forms.keyword_matcher(keywords)
    cuts: list[tuple[int, int, str]] = []
    above: list[list[_Cell]] = []
    for row in _rows(markup):
        if row is None or len(row) > _MAX_CELLS:
            above = []
            continue
        i = 0
        while i + 1 < len(row):
            run = 0
            while i + run < len(row) and _GROUP.fullmatch(row[i + run].text):
                run += 1
            for j, n in _labelled_groups(row, i, run, above, has_keyword):
                # 4-4-4 joined with spaces is a shape the candidate scan reads; other
                # groupings (6-6, 3-3-3-3) are joined into one run of digits
                sep = " " if all(len(row[k].text) == 4 for k in range(j, j + n)) else ""
                cuts += [(row[k].end, row[k + 1].start, sep) for k in range(j, j + n - 1)]
            i += max(run, 1)
        above = [*above[-(_LOOK_UP - 1) :], row] if _LOOK_UP > 1 else [row]
    if not cuts:
        return markup
    parts: list[str] = []
    pos = 0
    for a, b, sep in cuts:
        parts += [markup[pos:a], sep]
        pos = b
    parts.append(markup[pos:])
    return "".join(parts)


def _labelled_groups(
    row: list[_Cell],
    i: int,
    run: int,
    above: list[list[_Cell]],
    has_keyword: Callable[[str], bool],
) -> list[tuple[int, int]]:
    """Where, in a run of ``run`` digit-group cells from ``i``, cells form one number:
    (first cell, how many).

    The whole run, when it holds twelve digits in two to six cells: a My Number label
    to its left in the row or in the heading cell above its first cell.  Part of a
    longer run (a year column follows the boxes, or a card number): only cells of
    twelve digits that a My Number heading spans exactly."""
    if run < 2:
        return []
    sizes = [len(row[k].text) for k in range(i, i + run)]
    if run <= 6 and sum(sizes) == 12:
        for k in range(i - 1, -1, -1):
            if row[k].text:
                if has_keyword(row[k].text[:40]):
                    return [(i, run)]
                break
        head = _heading(row[i].col, above)
        return [(i, run)] if head is not None and has_keyword(head.text[:40]) else []
    for j in range(i, i + run - 1):
        total = 0
        for n in range(1, min(6, i + run - j) + 1):
            total += sizes[j - i + n - 1]
            if total >= 12:
                break
        if total != 12 or n < 2:
            continue
        head = _heading(row[j].col, above)
        last = row[j + n - 1]
        if (
            head is not None
            and head.col == row[j].col
            and head.col + head.span == last.col + last.span
            and has_keyword(head.text[:40])
        ):
            return [(j, n)]
    return []


def _heading(col: int, above: list[list[_Cell]]) -> _Cell | None:
    """The nearest non-empty cell above grid column ``col``."""
    for prev in reversed(above):
        for cell in prev:
            if cell.col <= col < cell.col + cell.span and cell.text:
                return cell
    return None


def html_to_text(markup: str, keywords: tuple[str, ...] = ()) -> str:
    """Visible text of ``markup``; never raises.  ``keywords``: ``[scan] extra_keywords``.

    Where elements are hidden by their own markup (``display:none``, the
    ``hidden`` attribute, ``font-size:0``), the lines that read differently once
    they are taken out follow the text: ``6214<span hidden>5</span>98320257`` is
    thirteen digits in the source and twelve on the recipient's screen, and both
    are read."""
    markup = _DROP.sub("", markup)
    text = _markup_text(markup, keywords)
    if _HIDDEN_HINT.search(markup) is None:
        return text
    extra = lines_only_in(_markup_text(_HIDDEN.sub("", markup), keywords), text)
    return text + "\n" + extra if extra else text


# An element hidden by its own attributes, holding text only (no nested tags:
# a regex cannot pair those, and the inline span that hides a digit has none).
_HIDDEN_HINT = re.compile(r"hidden|display\s*:\s*none|font-size\s*:\s*0", re.IGNORECASE)
_HIDDEN = re.compile(
    r"<([A-Za-z][A-Za-z0-9]*+)\b[^<>]*?(?:\bhidden\b|display\s*:\s*none"
    r"|font-size\s*:\s*0(?![.\d]*[1-9]))[^<>]*+>[^<]*+</\1\s*>",
    re.IGNORECASE,
)


def _markup_text(markup: str, keywords: tuple[str, ...]) -> str:
    """The text of markup whose comments, scripts and styles are gone."""
    # Only markup with cells and a My Number word pays for reading the table rows.
    if _CELL_OPEN.search(markup) is not None:
        if _BR.search(markup) is not None:
            # A line break inside a cell wraps its text (<th>個人<br>番号</th>): the
            # header still reads as one label, not as a row cut in two.
            markup = _CELL_WITH_BR.sub(_unbroken_cell, markup)
        if forms.keyword_matcher(keywords)(markup):
            markup = _join_split_numbers(markup, keywords)

    # A tag's replacement depends on its text alone, and mail repeats a few tags
    # (<br>, <p>, </div>) hundreds of times: each distinct one is worked out once.
    seen: dict[str, str] = {}

    def tag(m: re.Match[str]) -> str:
        got = seen.get(m.group())
        if got is None:
            got = seen[m.group()] = _tag_text(m)
        return got

    text = _TAG.sub(tag, markup)
    text = _visible(html.unescape(text))
    return _squeeze_blanks(text)


_BR = re.compile(r"<br\b", re.IGNORECASE)
_CELL_WITH_BR = re.compile(
    r"<(t[dh])\b[^<>]*+>[^<]*+(?:<(?!/?t[dhr]\b|/?table\b)[^<]*+)*?<br\b[^<]*+"
    r"(?:<(?!/?t[dhr]\b|/?table\b)[^<]*+)*+",
    re.IGNORECASE,
)


def _unbroken_cell(m: re.Match[str]) -> str:
    return _BR_TAG.sub(" ", m.group())


_BR_TAG = re.compile(r"<br\b[^>]*+>", re.IGNORECASE)


def _tag_text(m: re.Match[str]) -> str:
    """What a tag leaves in the text: a tab for a cell, a line break for a block,
    and its alt/title/value/placeholder attributes on lines of their own."""
    name = (m.group(2) or "").lower()
    attrs = m.group(3) or ""
    extra = ""
    if attrs and not m.group(1):
        found = [html.unescape(v.strip("\"'")) for _, v in _ATTR.findall(attrs)]
        if found:
            extra = "\n" + "\n".join(found) + "\n"
    if name in _CELL:
        return "\t" + extra
    if name in _BLOCK:
        return "\n" + extra
    return extra


def sniff_charset(data: bytes) -> str | None:
    """The charset a ``<meta>`` tag in the first few KiB declares, if any."""
    m = _META_CHARSET.search(data[:4096])
    return m.group(1).decode("ascii", "replace") if m else None


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    """Registry entry point for kind ``html``."""
    return extract_html(data, filename, location, budget, None)


def extract_html(
    data: bytes, filename: str, location: str, budget: Budget, charset: str | None
) -> Extracted:
    """As ``extract``, with the charset the MIME part declared (if any)."""
    del filename
    budget.check_time()
    text, used = decode_text(data, charset or sniff_charset(data))
    return Extracted(
        kind="html",
        status=AttachmentStatus.SCANNED,
        chunks=(TextChunk(text=html_to_text(text, budget.keywords), location=location),),
        detail=f"charset {used}",
    )
