"""Keep My Numbers out of the free-text fields of a send-log entry.

The scanner never hands us a number, but a subject line, a file name, a
comment or the next hop's reply is text written by people, and people do
write ``個人番号 1234-5678-9012 の件`` in a subject.  DESIGN.md rule 2 says no
number reaches the log, so every free-text field passes through ``scrub``
before it is recorded (and so before it is hashed into the chain).

Only twelve-digit groups whose check digit is valid are masked: an invalid
one is not a My Number, and masking every twelve-digit run would blank out
order numbers and timestamps a reviewer needs.  The mask is the same for
every number, so it is not a per-number token.
"""

from __future__ import annotations

import re

MASK = "****-****-****"

# Twelve digits (ASCII or full-width), optionally grouped 4-4-4 with one
# separator between groups, not glued to further digits on either side.
_DIGIT = "[0-9０-９]"
_SEP = "[ \u3000.\\-‐－―ー・]?"
_GROUPED = re.compile(
    rf"(?<![0-9０-９])({_DIGIT}{{4}}){_SEP}({_DIGIT}{{4}}){_SEP}({_DIGIT}{{4}})(?![0-9０-９])"
)
_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
_WEIGHTS = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def check_digit_ok(digits: str) -> bool:
    """The 総務省令第85号 第5条 check digit (weights 6,5,4,3,2,7,6,5,4,3,2)."""
    if len(digits) != 12 or not digits.isdigit():
        return False
    r = sum(int(d) * w for d, w in zip(digits[:11], _WEIGHTS, strict=True)) % 11
    return int(digits[11]) == (0 if r <= 1 else 11 - r)


def _mask(m: re.Match[str]) -> str:
    digits = "".join(m.groups()).translate(_FULLWIDTH)
    return MASK if check_digit_ok(digits) else m.group(0)


def scrub(text: str) -> str:
    """``text`` with every possible My Number replaced by a fixed mask."""
    if not text or sum(c.isdigit() for c in text) < 12:
        return text
    return _GROUPED.sub(_mask, text)
