"""Basic pension numbers (基礎年金番号): ten digits, a four-digit office code and a
six-digit serial, printed 1234-567890 in 年金手帳 and on the 基礎年金番号通知書
(日本年金機構).  No check digit is published, and ten digits are also phone
numbers and order numbers, so context decides: ``high`` with a keyword
(基礎年金番号, 年金手帳, pension number ...) within 40 characters or as the column
header, ``medium`` with a keyword in the subject, body or file name, nothing
otherwise.  Masking follows the same rule (only next to a keyword).
"""

from __future__ import annotations

import re
from functools import lru_cache

from dlp.detect.base import (
    ANY_DIGIT,
    COMMON_NEGATIVE_LABELS,
    SEP_CLASS,
    Candidate,
    Labels,
    PatternDetector,
    compile_words,
    english,
    fold_digits,
    standalone,
)

NAME = "pension_number"
LABELS = Labels(
    ja="基礎年金番号",
    en="pension number",
    en_found="what appear to be pension numbers",
)

KEYWORDS: tuple[str, ...] = (
    "基礎年金番号",
    "年金番号",
    "年金手帳",
    "基礎年金",
    *english("pension number", "basic pension number", "pension no"),
)

GATE: tuple[str, ...] = ("年金", "ension", "ENSION")
"""Every keyword holds one of these (tests/unit/test_detectors.py checks it)."""

MASK = "****-******"


def _pattern(d: str) -> re.Pattern[str]:
    return re.compile(rf"{d}(?<!{d}{d}){d}{{3}}({SEP_CLASS})?{d}{{6}}(?!{d})")


_CANDIDATE_RE = _pattern(ANY_DIGIT)


def _validate(m: re.Match[str]) -> Candidate | None:
    if not standalone(m, m.group(1) is not None):
        return None
    d = fold_digits(m.group())
    if len(set(d)) == 1:
        return None
    return Candidate(d, MASK)


@lru_cache(maxsize=8)
def build(window: int = 40) -> PatternDetector:
    return PatternDetector(
        name=NAME,
        candidate_re=_CANDIDATE_RE,
        gate=GATE,
        validate=_validate,
        keyword_re=compile_words(KEYWORDS),
        context_re=None,
        negative_re=compile_words(COMMON_NEGATIVE_LABELS),
        window=window,
        mask_with=MASK,
        mask_needs_keyword=True,
        keyword_gated=True,
    )
