"""Bank account numbers (口座番号): seven digits, with the account type 普通/当座 and the
bank and branch around them, as in a payroll transfer list or an invoice's 振込先.

A Japanese bank account number is seven digits within a branch (全国銀行協会's
zengin format carries 口座番号 as seven digits, 預金種目 as 1 普通 / 2 当座 / 4 貯蓄); ゆうちょ
銀行 accounts are written 記号 (five digits) and 番号 (up to eight).  There is no check
digit, and seven-digit values are everywhere (order numbers, postal parts, amounts), so
context decides: ``high`` with an account keyword (口座番号, 普通, 当座, 預金種目, 記号番号,
account number ...) within 30 characters or as the column header, ``medium`` with a
keyword in the subject, body or file name, nothing otherwise.  Masking follows the same
rule.
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

NAME = "bank_account"
LABELS = Labels(
    ja="銀行口座番号",
    en="bank account",
    en_found="what appear to be bank account numbers",
)

KEYWORDS: tuple[str, ...] = (
    "口座番号",
    "口座No",
    "口座ＮＯ",
    "口座",
    "普通預金",
    "当座預金",
    "普通",
    "当座",
    "預金種目",
    "貯蓄預金",
    "振込先",
    "記号番号",
    "ゆうちょ",
    *english("account number", "account no", "bank account"),
)

GATE: tuple[str, ...] = (
    "口座",
    "普通",
    "当座",
    "預金",
    "振込先",
    "記号番号",
    "ゆうちょ",
    "ccount",
    "CCOUNT",
)
"""Every keyword holds one of these (tests/unit/test_detectors.py checks it)."""

MASK = "*******"

# Labels of other seven-digit values; 口座 itself is the keyword here.
NEGATIVE_LABELS: tuple[str, ...] = (*COMMON_NEGATIVE_LABELS, "〒", "郵便番号", "金額", "円")


def _pattern(d: str) -> re.Pattern[str]:
    # Seven digits (a bank account), or ゆうちょ's 記号-番号 (5 + 8 digits).
    return re.compile(rf"{d}(?<!{d}{d})(?:{d}{{6}}|{d}{{4}}({SEP_CLASS}){d}{{8}})(?!{d})")


_CANDIDATE_RE = _pattern(ANY_DIGIT)


def _validate(m: re.Match[str]) -> Candidate | None:
    text, s, e = m.string, m.start(), m.end()
    if not standalone(m, m.group(1) is not None):
        return None
    # Not a part of an amount (1,234,567 / ¥1234567 / 1234567円), a time or a decimal;
    # a comma between CSV cells is no digit group.
    before = text[s - 1] if s else ""
    after = text[e] if e < len(text) else ""
    if (before and before in "¥￥") or (after and after in "円万千"):
        return None
    if before and before in ",.:" and s >= 2 and text[s - 2].isdecimal():
        return None
    if after and after in ",.:" and e + 1 < len(text) and text[e + 1].isdecimal():
        return None
    d = fold_digits(m.group())
    if len(set(d)) == 1:
        return None
    if _CORPORATE_HOLDER.match(text, e, min(len(text), e + 40)):
        # 振込先 … 普通 1234567 カ）マルマルシステム: a company's account, on every
        # invoice; no person's data (a careless-sender review of 3 Dec 2026).
        return None
    return Candidate(d, MASK if len(d) == 7 else "*****-********")


_CORPORATE_HOLDER = re.compile(
    r"[ \t\u3000]*(?:名義[:：\s]*)?[（(]?"
    r"(?:(?:カ|ユ|ザイ|シャ|ガク|イ|ド|ゴ|ノウ|ショウ|トクヒ)[）)][ \t\u3000]*[ァ-ヶ]"
    r"|[（(](?:カ|ユ|ド|ゴ)[ \t\u3000]*[ァ-ヶ]"
    r"|株式会社|有限会社|合同会社|㈱|㈲|(?:一般|公益)(?:社団|財団)法人"
    r"|医療法人|学校法人|社会福祉法人|ＮＰＯ法人|NPO法人)"
)
"""An account holder that is no person, right after the number (the holder field's
start): 全銀's abbreviations before the katakana name (カ）for 株式会社, ユ）有限会社, ザイ）財団法人,
シャ）社団法人, ガク）学校法人, イ）医療法人 ...) or the corporate form written out.  Not a
person's name that ends in such a syllable (ヤマダ ユイ）) nor a company named later on
the line (勤務先 株式会社…)."""


@lru_cache(maxsize=8)
def build(window: int = 30) -> PatternDetector:
    return PatternDetector(
        name=NAME,
        candidate_re=_CANDIDATE_RE,
        gate=GATE,
        validate=_validate,
        keyword_re=compile_words(KEYWORDS),
        context_re=None,
        negative_re=compile_words(NEGATIVE_LABELS),
        window=window,
        mask_with=MASK,
        mask_needs_keyword=True,
        keyword_gated=True,
    )
