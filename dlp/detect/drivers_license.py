"""Driving licence numbers (運転免許証番号): twelve digits with their own check digit.

* **Structure.**  Digits 1-2: the public safety commission that first issued the
  licence (10 北海道 … 30 東京 … 97 沖縄; 00 for a licence converted from
  abroad in some years); 3-4: the year of first issue (last two digits); 5-10: a
  number the commission assigns; 11: a check digit; 12: how many times the card
  was reissued (沖縄県警察「運転免許事務取扱要領」: 公安委員会コード、年号記号、
  交付番号及び再交付記号並びにチェックデジット, 12 digits).
* **Check digit.**  d1..d10 weighted 5,4,3,2,7,6,5,4,3,2; r = sum mod 11; the
  11th digit is the last digit of 11 - r (so r = 0 gives 1 and r = 1 gives 0).
* **Shape.**  12 digits plain or 4-4-4 with the usual separators, never a
  window of a longer number.
* **Confidence.**  Twelve digits are also a My Number's shape, and about one
  random value in twenty passes both the code table and the check, so the value
  alone counts for nothing: ``high`` with a keyword (免許証, 運転免許, driver's
  license ...) within 80 characters or as the column header, ``medium`` with a
  keyword in the subject, body or file name.
"""

from __future__ import annotations

import re
from functools import lru_cache

from dlp.detect.base import (
    ANY_DIGIT,
    COMMON_NEGATIVE_LABELS,
    PERSONAL_CONTEXT,
    SEP_CLASS,
    Candidate,
    Labels,
    PatternDetector,
    compile_words,
    english,
    fold_digits,
    standalone,
)

NAME = "drivers_license"
LABELS = Labels(
    ja="運転免許証番号",
    en="driving licence",
    en_found="what appear to be driving licence numbers",
)

# 公安委員会コード: 北海道の方面本部 (10-14), then the prefectures; 00: converted from abroad.
AUTHORITY_CODES = frozenset(
    {0, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24, 25, 30, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49,
     50, 51, 52, 53, 54, 55, 60, 61, 62, 63, 64, 65, 70, 71, 72, 73, 74, 80, 81, 82, 83,
     90, 91, 92, 93, 94, 95, 96, 97}
)  # fmt: skip

WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)

KEYWORDS: tuple[str, ...] = (
    "免許証",
    "運転免許",
    "免許番号",
    "免許の番号",
    *english("driver's license", "driver license", "drivers license", "driving licence"),
    *english("driving license", "license number", "licence number", "license no"),
)

GATE: tuple[str, ...] = ("免許", "icens", "icenc", "ICENS", "ICENC")
"""Every keyword holds one of these (tests/unit/test_detectors.py checks it)."""

MASK = "************"


def _pattern(d: str) -> re.Pattern[str]:
    return re.compile(
        rf"{d}(?<!{d}{d})(?:{d}{{11}}|{d}{{3}}({SEP_CLASS}){d}{{4}}\1{d}{{4}})(?!{d})"
    )


_CANDIDATE_RE = _pattern(ANY_DIGIT)


def check_digit(first10: str) -> int:
    """The 11th digit for the first ten ASCII digits."""
    r = sum(w * (ord(c) - 48) for w, c in zip(WEIGHTS, first10, strict=True)) % 11
    return (11 - r) % 10


def is_valid(number: str) -> bool:
    """12 digits (separators allowed) with a known authority code and a valid check digit."""
    d = fold_digits(number)
    return len(d) == 12 and _valid(d)


def _valid(d: str) -> bool:
    return int(d[:2]) in AUTHORITY_CODES and check_digit(d[:10]) == ord(d[10]) - 48


def _validate(m: re.Match[str]) -> Candidate | None:
    grouped = m.group(1) is not None
    if not standalone(m, grouped):
        return None
    d = fold_digits(m.group())
    if not _valid(d) or len(set(d[2:10])) == 1:
        return None
    return Candidate(d, MASK)


@lru_cache(maxsize=8)
def build(window: int = 80) -> PatternDetector:
    return PatternDetector(
        name=NAME,
        candidate_re=_CANDIDATE_RE,
        gate=GATE,
        validate=_validate,
        keyword_re=compile_words(KEYWORDS),
        context_re=compile_words(PERSONAL_CONTEXT),
        negative_re=compile_words(COMMON_NEGATIVE_LABELS),
        window=window,
        mask_with=MASK,
        mask_needs_keyword=True,
        keyword_gated=True,
    )
