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

from dlp.detect.mynumber import SCRUB_MASK, is_valid, scrub

MASK = SCRUB_MASK


def check_digit_ok(digits: str) -> bool:
    """The 総務省令第85号 第5条 check digit (weights 6,5,4,3,2,7,6,5,4,3,2)."""
    return len(digits) == 12 and digits.isascii() and is_valid(digits)


__all__ = ["MASK", "check_digit_ok", "scrub"]
