"""Payment card numbers (クレジットカード番号): ISO/IEC 7812 numbers with a Luhn check
digit in a known issuer range.

* **Shape.**  14 to 19 digits (any decimal digits: ASCII, full-width, other
  scripts), plain, or grouped 4-4-4-4
  (16 digits), 4-6-5 (American Express, 15) or 4-6-4 (Diners, 14) by a space,
  ideographic space, dot or a hyphen look-alike; never a window of a longer
  number or glued to an identifier.
* **Validation.**  The Luhn check digit (ISO/IEC 7812-1, annex B), a length the
  issuer uses, and an issuer range: Visa 4; Mastercard 51-55 and 2221-2720;
  American Express 34, 37; JCB 3528-3589; Diners Club 300-305, 3095, 36, 38-39;
  Discover 6011, 644-649, 65; UnionPay 62.  Eleven or more identical digits
  are dropped (placeholders such as 4444 4444 4444 4444 ... pass Luhn).
* **Confidence.**  ``high`` with a keyword (カード番号, クレジット, 有効期限, card
  number, VISA ...) within 80 characters or as the column header; ``medium`` in
  the 4-4-4-4 layout, next to a personal-data word, or with a keyword in the
  subject, body or file name; ``low`` on the check alone (one random 16-digit
  value in ten passes Luhn, fewer fall in an issuer range).
"""

from __future__ import annotations

import re
from functools import lru_cache

from dlp.detect import candidates
from dlp.detect.base import (
    COMMON_NEGATIVE_LABELS,
    PERSONAL_CONTEXT,
    Candidate,
    Labels,
    PatternDetector,
    compile_words,
    english,
    fold_digits,
    standalone,
)

NAME = "credit_card"

LABELS = Labels(
    ja="クレジットカード番号", en="card number", en_found="what appear to be card numbers"
)

KEYWORDS: tuple[str, ...] = (
    "カード番号",
    "ｶｰﾄﾞ番号",
    "クレジット",
    "ｸﾚｼﾞｯﾄ",
    "クレカ",
    "有効期限",
    "セキュリティコード",
    "デビットカード",
    "カード名義",
    *english("card number", "credit card", "debit card", "card no", "expiry date"),
    *english("expiration date", "security code"),
    "CVV",
    "CVC",
    "VISA",
    "Visa",
    "MasterCard",
    "Mastercard",
    "JCB",
    "AMEX",
    "American Express",
    "Diners",
    "銀聯",
    "UnionPay",
)

NEGATIVE_LABELS: tuple[str, ...] = (*COMMON_NEGATIVE_LABELS, "口座", *english("account"))

GATE: tuple[str, ...] = (
    "カード",
    "ｶｰﾄﾞ",
    "クレ",
    "ｸﾚｼﾞｯﾄ",
    "有効期限",
    "セキュリティ",
    "銀聯",
    "ard",
    "ARD",
    "redit",
    "REDIT",
    "ebit",
    "xpir",
    "XPIR",
    "ecurity",
    "ECURITY",
    "CV",
    "VISA",
    "Visa",
    "aster",
    "JCB",
    "AMEX",
    "American",
    "Diners",
    "UnionPay",
)
"""Every keyword holds one of these (tests/unit/test_detectors.py checks it)."""

MASK = "****-****-****-****"

luhn_ok = candidates.luhn_ok


def issuer(d: str) -> str | None:
    """The card network of ASCII digits ``d`` by its prefix and length, or None."""
    n = len(d)
    two, four = int(d[:2]), int(d[:4])
    if d[0] == "4" and n in (13, 16, 19):
        return "Visa"
    if (51 <= two <= 55 or 2221 <= four <= 2720) and n == 16:
        return "Mastercard"
    if two in (34, 37) and n == 15:
        return "American Express"
    if 3528 <= four <= 3589 and 16 <= n <= 19:
        return "JCB"
    if (300 <= int(d[:3]) <= 305 or four == 3095 or two in (36, 38, 39)) and 14 <= n <= 19:
        return "Diners Club"
    if (four == 6011 or 644 <= int(d[:3]) <= 649 or two == 65) and 16 <= n <= 19:
        return "Discover"
    if two == 62 and 16 <= n <= 19:
        return "UnionPay"
    return None


def is_valid(number: str) -> bool:
    """True for a card number (separators allowed) in an issuer range with a valid Luhn digit."""
    d = fold_digits(number)
    return 14 <= len(d) <= 19 and issuer(d) is not None and luhn_ok(d) and not _fake(d)


def _fake(d: str) -> bool:
    return max(d.count(c) for c in set(d)) >= 11 and len(set(d)) <= 2


def _validate(m: re.Match[str]) -> Candidate | None:
    grouped = m.group(1) is not None or m.group(2) is not None
    if not standalone(m, grouped):
        return None
    d = fold_digits(m.group())
    brand = issuer(d)
    if brand is None or not luhn_ok(d) or _fake(d):
        return None
    four = m.group(1) is not None
    return Candidate(d, MASK, strong=four, note=brand + (", 4-4-4-4" if four else ""))


@lru_cache(maxsize=8)
def build(window: int = 80) -> PatternDetector:
    return PatternDetector(
        name=NAME,
        candidate_re=candidates.CARD_RE,
        prefilter=candidates.cards,
        gate=GATE,
        validate=_validate,
        keyword_re=compile_words(KEYWORDS),
        context_re=compile_words(PERSONAL_CONTEXT),
        negative_re=compile_words(NEGATIVE_LABELS),
        window=window,
        alone_low=True,
        mask_with=MASK,
    )
