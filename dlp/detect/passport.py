"""Japanese passport numbers (旅券番号): two Latin letters and seven digits
(TK1234567), as on the data page and in field 1 of the machine-readable zone
(ICAO Doc 9303 part 4: document number of up to nine characters).

The printed number has no check digit (the MRZ carries one, but a number in mail
is copied from the page), and two letters plus seven digits are also product
codes and ticket numbers, so context decides: ``high`` with a keyword (旅券,
パスポート, passport ...) within 80 characters or as the column header, ``medium``
with a keyword in the subject, body or file name, nothing otherwise.  Masking follows the same rule (only next to a keyword).
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

NAME = "passport"
LABELS = Labels(
    ja="旅券番号",
    en="passport",
    en_found="what appear to be passport numbers",
)

KEYWORDS: tuple[str, ...] = (
    "旅券",
    "パスポート",
    "ﾊﾟｽﾎﾟｰﾄ",
    *english("passport", "passport number", "passport no"),
    "PASSPORT",
)

GATE: tuple[str, ...] = ("旅券", "パスポート", "ﾊﾟｽﾎﾟｰﾄ", "assport", "ASSPORT")
"""Every keyword holds one of these (tests/unit/test_detectors.py checks it)."""

MASK = "*********"

_U = "A-ZＡ-Ｚ"
_D = ANY_DIGIT
_CANDIDATE_RE = re.compile(rf"(?<![{_U}{_D}a-zａ-ｚ])[{_U}]{{2}}[{_D}]{{7}}(?![{_U}{_D}a-zａ-ｚ])")
_GLUE = frozenset("@_/=%#+&?.-")


def _validate(m: re.Match[str]) -> Candidate | None:
    text, s, e = m.string, m.start(), m.end()
    if (s and text[s - 1] in _GLUE) or (e < len(text) and text[e] in _GLUE):
        return None
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
        mask_with=MASK,
        mask_needs_keyword=True,
        keyword_gated=True,
    )
