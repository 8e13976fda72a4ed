"""Residence card numbers (在留カード番号) and special permanent resident
certificate numbers (特別永住者証明書番号): two Latin letters, eight digits, two
Latin letters (AB12345678CD), as printed at the card's top right (出入国在留管理庁
「在留カード等番号失効情報照会」 asks for exactly this shape).

No check digit is published, so context decides: ``high`` with a keyword
(在留カード, 特別永住者証明書, residence card ...) within 80 characters or as the
column header, ``medium`` with a keyword in the subject, body or file name, nothing
otherwise.  Masking needs no keyword: the shape is rare outside these cards.  Full-width
letters and digits count; the letters must be upper case (a lower-case run is a
token or a hash).
"""

from __future__ import annotations

import re
from functools import lru_cache

from dlp.detect.base import (
    ANY_DIGIT,
    COMMON_NEGATIVE_LABELS,
    PERSONAL_CONTEXT,
    Candidate,
    Labels,
    PatternDetector,
    compile_words,
    english,
    fold_value,
)

NAME = "residence_card"
LABELS = Labels(
    ja="在留カード番号",
    en="residence card",
    en_found="what appear to be residence card numbers",
)

KEYWORDS: tuple[str, ...] = (
    "在留カード",
    "在留ｶｰﾄﾞ",
    "特別永住者証明書",
    "在留資格",
    "外国人登録",
    *english("residence card", "residence card number", "zairyu card"),
)

GATE: tuple[str, ...] = (
    "在留",
    "特別永住者",
    "外国人登録",
    "esidence",
    "ESIDENCE",
    "airyu",
    "AIRYU",
)
"""Every keyword holds one of these (tests/unit/test_detectors.py checks it)."""

MASK = "**********"

_U = "A-ZＡ-Ｚ"
_D = ANY_DIGIT
_CANDIDATE_RE = re.compile(
    rf"(?<![{_U}{_D}a-zａ-ｚ])[{_U}]{{2}}[{_D}]{{8}}[{_U}]{{2}}(?![{_U}{_D}a-zａ-ｚ])"
)
_GLUE = frozenset("@_/=%#+&?.-")


def is_valid(value: str) -> bool:
    return _CANDIDATE_RE.fullmatch(value) is not None


def _validate(m: re.Match[str]) -> Candidate | None:
    text, s, e = m.string, m.start(), m.end()
    if (s and text[s - 1] in _GLUE) or (e < len(text) and text[e] in _GLUE):
        return None  # part of a file name, URL or address
    return Candidate(fold_value(m.group()), MASK)


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
        keyword_gated=True,
        mask_with=MASK,
    )
