"""The digit and separator tables in dlp/detect/numchars.py are stored, not computed at
import (computing them costs about 0.5 s per process); this recomputes them from
``unicodedata`` so a hand edit or a Python with another Unicode version cannot leave
them stale unnoticed."""

from __future__ import annotations

import unicodedata

import pytest

from dlp.detect import numchars


def test_stored_tables_are_what_unicodedata_gives() -> None:
    if unicodedata.unidata_version != numchars.UNICODE_VERSION:
        pytest.fail(
            f"Python's Unicode is {unicodedata.unidata_version}, the tables were made from "
            f"{numchars.UNICODE_VERSION}: regenerate with `python -m dlp.detect.numchars`"
        )
    digits, gaps = numchars.compute()
    assert digits == numchars.DIGITS
    assert gaps == numchars.GAPS


def test_tables_hold_the_characters_offices_type() -> None:
    def member(ranges: tuple[tuple[int, int], ...], ch: str) -> bool:
        return any(lo <= ord(ch) <= hi for lo, hi in ranges)

    for ch in "0９٣":  # ASCII, full-width, Arabic-Indic
        assert member(numchars.DIGITS, ch), ch
    for ch in "-－ー 　.・,、\u200b\u00ad":  # hyphens, spaces, dots, commas, ZWSP, soft hyphen
        assert member(numchars.GAPS, ch), repr(ch)
    for ch in "a@:/*":
        assert not member(numchars.DIGITS, ch) and not member(numchars.GAPS, ch), ch
