"""Candidate finding for the digit-based detectors, compiled where it can be.

On digit-rich text (CSV dumps, order lists) a detector meets a 12-digit shape every
few dozen characters and nine in ten then fail the check digit.  Doing that in
Python, one regex match object and one call per shape, was most of the scan's time
(bench/scan_throughput.py).  ``dlp.detect._candidates`` (C, built by ``pip install``
from dlp/detect/_candidates.c) finds the same shapes in one pass over the characters,
applies the check digit (My Number) or Luhn (cards), and returns only the survivors.

This module is its Python face and its twin: the regexes below define what a
candidate is, the ``_py_*`` functions apply them the slow way, and the property tests
(tests/unit/test_candidates.py) hold the compiled scanner to the same answers on
random text.  The twin also serves a checkout where the module was not built (a
source tree on ``PYTHONPATH``), at a fraction of the speed (``native.COMPILED``).
"""

from __future__ import annotations

import re

from dlp.detect import native
from dlp.detect.base import GLUE, SEP_CLASS, SEPARATORS, fold_digits, glued, joined

BOX_GAPS = " \t\u3000"
"""What stands between the boxes of a form that has one box per digit."""

INVISIBLE = (
    "\u00ad\u034f\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069"
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))
    + "\ufeff"
)
"""Characters nobody sees that a web form, a word processor or an evader leaves inside
a number: soft hyphen, combining grapheme joiner, Mongolian vowel separator, zero-width
space/non-joiner/joiner, LRM/RLM, the bidi embeddings and isolates, word joiner and
invisible operators, variation selectors, BOM.  A reader sees the digits joined, so
the detectors read them joined too."""

INVISIBLE_RE = re.compile("[" + re.escape(INVISIBLE) + "]+")

LOOSE_GAPS = "\t\r\n,/:|\u3001\uff0c" + SEPARATORS
"""What may stand, one to three characters of it, between the groups of a loose 4-4-4:
the separators of a grouped number and those of spreadsheet cells, lines and list
items (``is_loose`` in _candidates.c)."""
_LOOSE = "[" + re.escape(LOOSE_GAPS) + "]{1,3}"

MYNUMBER_RE = re.compile(
    r"\d(?<!\d\d)(?:\d{11}|\d{3}"
    + SEP_CLASS
    + r"\d{4}"
    + SEP_CLASS
    + r"\d{4}|\d{3}"
    + _LOOSE
    + r"\d{4}"
    + _LOOSE
    + r"\d{4}|(?:[ \t\u3000]\d){11}(?![ \t\u3000]\d))(?!\d)"
)
"""A My Number's shapes: 12 digits; 4-4-4 with any two separators; 4-4-4 with loose
gaps (a row of cells, a line break), taken only right next to a keyword; one digit per
box (12 digits each after one space or tab), taken only next to a keyword.  Its first
item is a bare digit class so ``re`` skips non-digits in C; the lookbehind then rejects
a digit before it, so a window of a longer number is never a candidate."""

CARD_RE = re.compile(
    r"\d(?<!\d\d)\d{3}(?:\d{10,15}"
    rf"|({SEP_CLASS})\d{{4}}\1\d{{4}}\1\d{{4}}"
    rf"|({SEP_CLASS})\d{{6}}\2\d{{4,5}})(?!\d)"
)
"""A card number's shapes: 14-19 digits, 4-4-4-4 or 4-6-5/4-6-4 with one separator."""

PLAIN, GROUPED, BOXES, LOOSE = 0, 1, 2, 3
"""Kinds of My Number candidate."""

GLUED, DATE8, MOBILE, FAKE = 1, 2, 4, 8
"""What counts against a My Number candidate, as flags: glued to an identifier, URL or
address (``ID…``, ``…@``); the first eight digits a date YYYYMMDD in 1990-2039 (order
numbers, timestamps); ``81`` + a mobile prefix (+81 70/80/90/50); eleven identical
digits (000000000000: a placeholder)."""

_MOBILE_PREFIXES = ("8170", "8180", "8190", "8150")

_C = native.C
if _C is not None:
    _C.set_separators(SEPARATORS, BOX_GAPS, INVISIBLE, GLUE)
COMPILED = native.COMPILED


def valid12(d: str) -> bool:
    """The check digit (総務省令第85号 第5条) of 12 ASCII digits.  Unrolled over the
    bytes (no ord() calls): the twins run it once per candidate."""
    b = d.encode()
    r = (
        6 * b[0] + 5 * b[1] + 4 * b[2] + 3 * b[3] + 2 * b[4] + 7 * b[5]
        + 6 * b[6] + 5 * b[7] + 4 * b[8] + 3 * b[9] + 2 * b[10] - 47 * 48
    ) % 11  # fmt: skip
    return b[11] - 48 == (0 if r <= 1 else 11 - r)


def luhn_ok(d: str) -> bool:
    """The Luhn (mod 10) check over ASCII digits ``d``, check digit last."""
    total = 0
    for i, ch in enumerate(reversed(d)):
        n = ord(ch) - 48
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _is_date8(d: str) -> bool:
    year, month, day = int(d[0:4]), int(d[4:6]), int(d[6:8])
    return 1990 <= year <= 2039 and 1 <= month <= 12 and 1 <= day <= 31


def number_flags(text: str, s: int, e: int, d: str) -> int:
    """The flags (``GLUED`` …) of the 12 ASCII digits ``d`` found at text[s:e]."""
    flags = 0
    if glued(text, s, e):
        flags |= GLUED
    if _is_date8(d):
        flags |= DATE8
    if d.startswith(_MOBILE_PREFIXES):
        flags |= MOBILE
    if d[:11] == d[0] * 11:
        flags |= FAKE
    return flags


def _kind(raw: str) -> int:
    """The kind of a MYNUMBER_RE match, in the order its alternatives are tried."""
    if len(raw) == 12 and raw.isdecimal():
        return PLAIN
    if not raw[1].isdecimal():
        return BOXES
    if len(raw) == 14 and raw[4] in SEPARATORS and raw[9] in SEPARATORS:
        return GROUPED
    return LOOSE


def _loose_row(text: str, s: int, e: int) -> bool:
    """A loose gap and a digit before s or after e: cells of a longer row."""
    k = 0
    while k < 3 and s - 1 - k >= 0 and text[s - 1 - k] in LOOSE_GAPS:
        k += 1
    if k and s - 1 - k >= 0 and text[s - 1 - k].isdecimal():
        return True
    k = 0
    while k < 3 and e + k < len(text) and text[e + k] in LOOSE_GAPS:
        k += 1
    return bool(k) and e + k < len(text) and text[e + k].isdecimal()


def _py_mynumber(text: str) -> tuple[list[tuple[int, int, str, int, int]], int, bool]:
    if INVISIBLE_RE.search(text) is not None:
        return [], 0, True
    out: list[tuple[int, int, str, int, int]] = []
    shaped = 0
    for m in MYNUMBER_RE.finditer(text):
        raw = m.group()
        s, e = m.span()
        kind = _kind(raw)
        if kind not in (BOXES, LOOSE):
            shaped += 1
        d = fold_digits(raw)
        if not valid12(d):
            continue
        if kind == BOXES:
            # Not the tail of a longer row of boxes.
            if s >= 2 and text[s - 1] in BOX_GAPS and text[s - 2].isdecimal():
                continue
        elif kind == LOOSE:
            if _loose_row(text, s, e):
                continue
        elif joined(text, s, e, kind == GROUPED):
            continue
        out.append((s, e, d, kind, number_flags(text, s, e, d)))
    return out, shaped, False


def _py_cards(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in CARD_RE.finditer(text) if luhn_ok(fold_digits(m.group()))]


def mynumber(text: str) -> tuple[list[tuple[int, int, str, int, int]], int, bool]:
    """My Number candidates with a valid check digit that are not a window of a longer
    number: ``(start, end, twelve ASCII digits, kind, flags)``; how many plain or
    grouped candidates there were, valid or not; whether ``text`` holds an invisible
    character (then nothing else is returned: read the text again without them)."""
    if _C is not None:
        return _C.mynumber(text)
    return _py_mynumber(text)


def cards(text: str) -> list[tuple[int, int]]:
    """Spans of the card candidates whose digits pass Luhn."""
    if _C is not None:
        return _C.cards(text)
    return _py_cards(text)


score = _C.score if _C is not None else None
"""The My Number detector's weighing in C (``MyNumberDetector._score_py`` is its twin)."""
