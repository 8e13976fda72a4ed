"""My Number (個人番号) detector: a pure function over one ``TextChunk``.

How it decides (docs/scanning.md explains it for administrators):

* **Shape.**  12 decimal digits (any Unicode ``Nd`` digit: ASCII, full-width,
  Arabic-Indic ...), contiguous or grouped 4-4-4 by a space, ideographic space,
  NBSP, dot or a hyphen look-alike (‐ ‑ ‒ – — ― − － ー ｰ).
* **Boundaries.**  Never a window of a longer number: no digit directly on either
  side (``\\b`` is useless next to kanji, so we test digits explicitly), and
  no ``separator + digit`` continuing a grouped number (4-4-4-4 card numbers,
  ``T1-2345-6789-0123`` invoice numbers, ``03-1234-5678-9012``).
* **Check digit.**  Weights 6,5,4,3,2,7,6,5,4,3,2; r = sum mod 11;
  check = 0 if r <= 1 else 11 - r.  A random string passes one time in ten,
  so the checksum alone only ever gives ``low``.
* **Confidence.**  ``high``: a My Number keyword within ``window`` characters,
  or the column/field header (``TextChunk.field_label``) is such a keyword.
  ``medium``: a structure that suggests a My Number without a keyword: the
  card's 4-4-4 layout, personal-data words nearby (氏名, 生年月日, 扶養控除 ...),
  a keyword in the message subject or the file name, or a chunk where far more
  12-digit values pass the checksum than the 1-in-10 chance allows.
  ``low``: checksum only.
* **Negative evidence** lowers a match one level (below ``low`` it is dropped):
  a label such as 法人番号, 登録番号, 電話/TEL, 注文番号 just before it; the first
  eight digits forming a date (order numbers, timestamps); ``81`` + mobile
  prefix; digits glued to an identifier, URL or address (``ID…``, ``…@``).
  Obviously fake numbers (eleven identical digits: 000000000000) are dropped.

Speed: the shapes, the check digit and the weighing above run compiled
(``dlp.detect.candidates``; its regex ``MYNUMBER_RE`` defines the shapes, and
``MyNumberDetector._score_py`` is the weighing's Python twin).  On digit-rich text
nine shapes in ten fail the check digit and never reach Python.

The match type holds the digits only for the length of one scan and masks
them in ``repr``/``str``; it refuses to be pickled so it cannot cross a process
boundary: the gateway keeps no My Number, not in a log, a record or another
process.  Only ``Finding`` (fully masked) leaves.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, SupportsIndex

from dlp.detect import candidates as _candidates
from dlp.detect import numchars as _numchars
from dlp.detect.base import SEPARATORS as SEPARATORS
from dlp.detect.base import Labels, Words, finding
from dlp.detect.base import demote as _demote
from dlp.detect.base import english as _english
from dlp.detect.base import summarize as summarize
from dlp.detect.candidates import valid12 as _valid12
from dlp.model import Confidence, Finding, TextChunk

DETECTOR = "mynumber"

LABELS = Labels(
    ja="個人番号（マイナンバー）", en="My Number", en_found="what appear to be My Numbers"
)

WEIGHTS = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


# An 11-digit cell under a My Number column header: the leading zero was lost
# when a spreadsheet stored the number as a number.
_ELEVEN_RE = re.compile(r"(?m)^[ \t\"'=]*(\d{11}(?:\.0+)?|\d{12}\.0+)[ \t\"']*$")
"""Also a cell written as a float (``621498320257.0``: pandas' ``to_csv`` for a
numeric column holding a blank), which the candidate scan reads as 13 digits."""


def _full_width(words: tuple[str, ...]) -> tuple[str, ...]:
    """``words`` in full-width letters (ＭＹ ＮＵＭＢＥＲ), a space either kind."""
    wide = {c: chr(ord(c) + 0xFEE0) for c in map(chr, range(0x21, 0x7F))}
    out = {"".join(wide.get(c, c) for c in w) for w in words}
    return tuple(sorted(out | {w.replace(" ", "\u3000") for w in out}))


_ENGLISH = _english("my number", "individual number")

# Everything that is a My Number keyword.  Matching is on the text as is, so
# the variants that occur in practice are listed (half-width kana, middle dot,
# spacing, English case, full-width letters).  A word is found inside a longer
# one, so the stems ending in ナンバ/ﾅﾝﾊﾞ take every way of writing the long vowel
# after them: ー, ｰ, a hyphen or minus of either width, 一 (the kanji, which an
# IME or OCR puts there), or none.  All entries are plain literals.
KEYWORDS: tuple[str, ...] = (
    *(
        stem + end
        for stem in ("マイナンバ", "マイ・ナンバ", "マイ ナンバ", "マイ\u3000ナンバ", "まいなんば")
        for end in ("ー", "")  # the longest variant is the one reported
    ),
    "ﾏｲﾅﾝﾊﾞｰ",
    "ﾏｲﾅﾝﾊﾞ",
    "ﾏｲ･ﾅﾝﾊﾞ",
    "ﾏｲ ﾅﾝﾊﾞ",
    "個人番号",  # also 個人番号カード, 個人番号通知書
    "個人番號",  # the traditional form of 号
    "個\u2f08番号",  # ⼈, the Kangxi radical, where text copied from a PDF has it
    "個 人 番 号",
    "個\u3000人\u3000番\u3000号",
    "個人 番号",  # one space, as a form's two words are typed (a review of 3 Dec 2026)
    "個人\u3000番号",
    "個人No",  # 個人No. / 個人Ｎｏ． on forms
    "個人Ｎｏ",
    "個人ＮＯ",
    "マイNo",
    "マイＮｏ",
    "マイＮＯ",
    "個人識別番号",
    "個人識別ナンバー",
    "個人識別ナンバ",
    "共通番号",
    "通知カード",
    "マイナカード",
    "マイナ番号",
    *_ENGLISH,
    *_full_width(_ENGLISH),
    *(w.replace(" ", ".") for w in _ENGLISH if " " in w),  # My.Number
    *_english("my no.", "my no:", "kojin bango", "kojin bangou"),
)

# Words that make a 12-digit value look like a My Number without naming it:
# the forms that carry one, and personal-data fields that sit next to it.
CONTEXT_WORDS: tuple[str, ...] = (
    "扶養控除",
    "源泉徴収票",
    "給与支払報告書",
    "番号確認",
    "本人確認",
    "被扶養者",
    "扶養親族",
    "生年月日",
    "氏名",
    "フリガナ",
    "住所",
    "続柄",
    "従業員番号",
    "社員番号",
)

# Labels of other numbers.  Seen just before a value, they argue against it.
NEGATIVE_LABELS: tuple[str, ...] = (
    "法人番号",
    "登録番号",
    "適格請求書",
    "インボイス",
    "電話",
    "携帯",
    *_english("tel", "fax", "phone", "mobile"),
    "ＴＥＬ",
    "ＦＡＸ",
    "注文番号",
    "受注番号",
    "発注番号",
    "伝票番号",
    "請求書番号",
    "請求番号",
    "問合せ番号",
    "問い合わせ番号",
    "問合わせ番号",
    "予約番号",
    "会員番号",
    "口座",
    "管理番号",
    "契約番号",
    "取引番号",
    "追跡番号",
    "受付番号",
    "お客様番号",
    "証券番号",
    "品番",
    "商品コード",
    "JAN",
    # Numbers an office, a school or a hospital writes next to マイナンバーカード
    # notices (a review of 3 Dec 2026): shipping, applications, customers,
    # insurance, students, patients, extensions.
    "送り状",
    "荷物番号",
    "整理番号",
    "申込番号",
    "申し込み番号",
    "申請番号",
    "引受番号",
    "製造番号",
    "シリアル",
    "顧客番号",
    "顧客コード",
    "利用者番号",
    "宛名番号",
    "被保険者番号",
    "保険者番号",
    "受験番号",
    "学籍番号",
    "受講番号",
    "患者番号",
    "診察券番号",
    "カルテ番号",
    "事業所番号",
    "見積番号",
    "見積No",
    "領収書番号",
    "直通",
    "内線",
    "代表",
    # Written with "No." rather than 番号, and the labels of a tracking number, a
    # patient or a tax office's number (a second review of 3 Dec 2026).
    "伝票",
    "問合せ",
    "問い合わせ",
    "追跡",
    "配送番号",
    "発送番号",
    "送付番号",
    "お届け番号",
    "患者ID",
    "患者ＩＤ",
    "指定番号",
    *_english(
        "isbn",
        "serial",
        "order",
        "invoice",
        "tracking",
        "account",
        "customer",
        "booking",
        "reference",
        "ticket",
        "upc",
    ),
)

_NEGATIVE_REACH = 24
"""Characters before a number in which a negative label applies to it."""

_NEG_LONGEST = max(len(w) for w in NEGATIVE_LABELS)

_ADJACENT = 24
"""A keyword this close before a number overrides the date-shape demotion."""

_DIGIT_FOLD = {ord(c): None for c in SEPARATORS}

# The candidate scanner's kinds and flags (what is a window of a longer number, glued
# to an identifier, a date, a mobile number or a placeholder is decided there).
_GROUPED, _BOXES, _LOOSE = _candidates.GROUPED, _candidates.BOXES, _candidates.LOOSE
_GLUED, _DATE8, _MOBILE, _FAKE = (
    _candidates.GLUED,
    _candidates.DATE8,
    _candidates.MOBILE,
    _candidates.FAKE,
)


def check_digit(base: str) -> int:
    """Check digit for the 11 ASCII digits ``base`` (総務省令第85号 第5条)."""
    s = sum(w * (ord(c) - 48) for w, c in zip(WEIGHTS, base, strict=True))
    r = s % 11
    return 0 if r <= 1 else 11 - r


def _ascii_digits(s: str) -> str:
    """Fold any Unicode decimal digits to ASCII and drop separators."""
    s = s.translate(_DIGIT_FOLD)
    if s.isascii():
        return s
    return "".join(str(int(c)) for c in s)


def is_valid(number: str) -> bool:
    """True if ``number`` (separators allowed, any decimal digits) is 12 digits with a valid check digit."""
    try:
        d = _ascii_digits(number)
    except ValueError:
        return False
    return len(d) == 12 and d.isdigit() and _valid12(d)


@dataclass(frozen=True, slots=True, eq=False)
class MyNumberMatch:
    """One number found in one chunk.  Holds the digits for this scan only.

    ``repr``/``str`` are masked and pickling is refused, so the digits cannot
    reach a log line, an exception, or another process by accident.
    """

    start: int
    end: int
    confidence: Confidence
    grouped: bool
    reason: str
    _digits: str = field(repr=False)
    gap: int = 1 << 30
    """Characters to the nearest My Number keyword (0: column header): arbitration."""

    @property
    def digits(self) -> str:
        """The 12 ASCII digits; use only in memory (distinct counting)."""
        return self._digits

    @property
    def value(self) -> str:
        return self._digits

    @property
    def detector(self) -> str:
        return DETECTOR

    @property
    def masked(self) -> str:
        return "****-****-****" if self.grouped else "************"

    def __repr__(self) -> str:
        return (
            f"MyNumberMatch({self.masked}, start={self.start}, "
            f"confidence={self.confidence.value}, reason={self.reason!r})"
        )

    __str__ = __repr__

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        raise TypeError("MyNumberMatch holds a My Number and must not leave the process")

    def to_finding(self, location: str) -> Finding:
        return finding(self, location)


def _binomial_tail(k: int, n: int, p: float = 0.1) -> float:
    """P(X >= k) for X ~ Binomial(n, p): how likely k of n random values pass.

    Summed in log space from the k-th term; past the mean the terms shrink
    geometrically, so a few dozen terms decide it even for n in the millions."""
    if k <= 0:
        return 1.0
    if k <= n * p:
        return 1.0  # at or below what chance gives: no evidence either way
    lp, lq = math.log(p), math.log1p(-p)
    log_term = (
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq
    )
    log_total = log_term
    for i in range(k, min(n, k + 10_000)):
        log_term += math.log((n - i) / (i + 1)) + lp - lq
        if log_term < log_total - 30:
            break
        log_total = max(log_total, log_term) + math.log1p(math.exp(-abs(log_total - log_term)))
    return min(1.0, math.exp(log_total))


_MANY_PASS_P = 1e-3
"""A chunk where this few random values would pass by chance is structured data."""


def _many(k: int, n: int) -> bool:
    """``k`` of ``n`` values passing the check is more than chance gives."""
    return _binomial_tail(k, n) < _MANY_PASS_P


def _many_distinct(repeats: int) -> Callable[[int, int], bool]:
    """``_many`` counting each value once: a 12-digit office or account number
    repeated on every row of a list is one value that passed, not a hundred
    passes (it made whole lists "many valid numbers").  ``repeats`` is how many
    candidates repeat an earlier one; the scorers' ``k`` and ``n`` count them all."""
    if not repeats:
        return _many

    def many(k: int, n: int) -> bool:
        k -= repeats
        return k >= 3 and _many(k, max(n - repeats, k))

    return many


def _repeats(cands: list[tuple[int, int, str, int, int]]) -> int:
    values = [c[2] for c in cands if c[3] != _BOXES and c[3] != _LOOSE]
    return len(values) - len(set(values))


_MANY = "many valid numbers in one part"
_LISTED = "listed under a keyword"


def _in_identifier(text: str, word: str, before: int) -> bool:
    """The last ``word`` before ``before`` is glued into an identifier: mynumber-db01,
    mynumber-support-dev, app.mynumber.local, MYNUMBER_DB (a server, a cloud project,
    a variable; a careless-sender review of 3 Dec 2026 had AWS and GCP numbers held)."""
    start = max(0, before - 400)
    at = text[start:before].lower().rfind(word.lower())  # only this stretch: linear
    if at < 0:
        return False
    at += start
    end = at + len(word)
    # glued to an ASCII letter or digit of the same name, on either side; the number
    # itself (My Number-621498320257) is no part of the name
    glued_after = (
        end + 1 < before
        and text[end] in "-_."
        and text[end + 1].isascii()
        and text[end + 1].isalnum()
    )
    glued_before = (
        at >= 2 and text[at - 1] in "-_." and text[at - 2].isascii() and text[at - 2].isalnum()
    )
    return glued_after or glued_before


_LABEL_REACH = 24
"""How far before a number ``_second_look`` reads its label (on the number's line)."""
_ADJACENT_LABEL = 6
"""A keyword this close before the number is its label: 個人番号：, マイナンバー ("""
_OTHER_LABEL = re.compile(
    r"[^\s:：、。,，()（）「」『』【】\[\]・/]{1,16}?"
    r"(?:番号|ナンバー|No\.?|NO\.?|Ｎｏ．?|№|ID|ＩＤ|Id|コード|記号|＃|#)"
    r"[\s:：.．=＝＃#]*[(（\[]?[\s]*$"
)
"""A label of some number, ending right before it: a word, then 番号, No., ID …"""
_OTHER_LABEL_EN = re.compile(
    r"(?i)\b(?:s/n|p/?o|ref|quote|case|licen[cs]e|asset(?: tag)?|device(?: id)?|serial|"
    r"part|model|lot|item|job|ticket|request|account|order|invoice)"
    r"(?:\s*(?:no\.?|number|#|id))?[\s:：#＃.．=＝]*$"
)
_YEN_BEFORE = re.compile(r"[¥￥]\s*$")
_YEN_AFTER = re.compile(r"[ \t]*(?:万|千|億)?円(?![\u3400-\u9fff])|[ \t]*yen\b")
"""円 right after the number on its line, and not the first character of a word
(円滑, 円山町)."""
_KEYWORD_IN_REASON = re.compile(r"keyword (.+?) within \d+ chars")
_ENGLISH_GENERIC = frozenset({"my number", "individual number"})
"""English keywords that are also everyday phrases ("call my number")."""

_Scored = tuple[int, int, str, int, bool, str, int]
"""start, end, digits, confidence rank, grouped, reason, keyword gap."""

_BY_RANK = {c.rank: c for c in Confidence}


class _Positions:
    """Occurrences of one word family, found once over a range, queried by bisect.

    Dense chunks (many candidates) are searched once end to end; sparse ones
    only around each candidate, so a long digit-poor text is not rescanned."""

    __slots__ = ("ends", "spans", "starts")

    def __init__(self, words: Words | None, text: str, lo: int = 0, hi: int = -1) -> None:
        self._set([] if words is None else words.spans(text, lo, hi))

    @classmethod
    def of(cls, spans: list[tuple[int, int, str]]) -> _Positions:
        p = cls(None, "")
        p._set(spans)
        return p

    def _set(self, spans: list[tuple[int, int, str]]) -> None:
        self.spans = spans
        self.starts = [s for s, _, _ in spans]
        self.ends = [e for _, e, _ in spans]

    def nearest(self, lo: int, hi: int, window: int) -> tuple[int, str] | None:
        """Nearest occurrence within ``window`` characters of [lo, hi): (gap, word)."""
        if not self.spans:
            return None
        spans = self.spans
        i = bisect_left(self.starts, lo - window - _MAX_WORD)
        best: tuple[int, str] | None = None
        # Index, not spans[i:]: a slice would copy the rest of the list per call.
        for j in range(i, len(spans)):
            s, e, w = spans[j]
            if s > hi + window:
                break
            gap = lo - e if e <= lo else (s - hi if s >= hi else 0)
            if gap <= window and (best is None or gap < best[0]):
                best = (gap, w)
        return best

    def last_before(self, lo: int, reach: int) -> int | None:
        """End offset of the last occurrence ending within ``reach`` chars before ``lo``."""
        i = bisect_left(self.ends, lo + 1) - 1
        if i >= 0 and lo - self.ends[i] <= reach:
            return self.ends[i]
        return None


_MAX_WORD = 64
"""Longest keyword considered when widening a search range."""


class _Lazy:
    """Positions of a pattern for the whole chunk or just around one candidate."""

    __slots__ = ("dense", "pattern", "text", "whole", "window")

    def __init__(self, pattern: Words, text: str, window: int, dense: bool) -> None:
        self.pattern, self.text, self.window, self.dense = pattern, text, window, dense
        self.whole: _Positions | None = None

    def around(self, s: int, e: int) -> _Positions:
        if self.dense:
            if self.whole is None:
                self.whole = _Positions(self.pattern, self.text)
            return self.whole
        reach = self.window + _MAX_WORD
        return _Positions(self.pattern, self.text, s - reach, e + reach)


@dataclass(frozen=True)
class MyNumberDetector:
    """Compiled detector for one set of settings; build with :func:`build_detector`."""

    window: int
    keyword_re: Words
    context_re: Words
    negative_re: Words
    words_re: Words
    """Keywords or context words, for one pass over dense chunks.  Plain literals
    only (no groups), so ``re`` keeps its fast first-character scan."""
    context_words: frozenset[str]
    is_context: bytes = b""
    """One byte per word of ``words_re`` (in its order): 1 for a context word."""
    compiled: tuple[Any, Any, Any, Any] | None = None
    """The compiled (keyword, context, words, negative) sets when the compiled
    scanner is built: ``find`` then weighs candidates with ``_score_c``."""

    @property
    def name(self) -> str:
        return DETECTOR

    def mask(self, text: str) -> str:
        return _mask(text, 0)

    def has_keyword(self, text: str) -> bool:
        """True if ``text`` (a subject, a file name, a header cell) names My Number."""
        return bool(text) and self.keyword_re.search(text)

    def find(self, chunk: TextChunk, *, context_hint: bool = False) -> list[MyNumberMatch]:
        """All plausible My Numbers in ``chunk``.

        ``context_hint``: the message subject or the enclosing file's name
        carries a keyword; it raises checksum-only matches to ``medium``.
        """
        text = chunk.text
        label_kw = chunk.field_label is not None and self.has_keyword(chunk.field_label)
        # The shapes only a keyword makes a number (kanji numerals, 3-3-3-3) count only
        # where one is: without it they would be ``low`` at most.
        keyword = label_kw or self.has_keyword(text)  # one pass, often stopped early
        if (keyword or context_hint) and not text.isascii():
            read = digit_reading(text)
            if read is not text:
                return self._find_in_reading(chunk, read, context_hint)
        # One pass (compiled) finds the shapes and applies the check digit; nine in
        # ten shapes on digit-rich text fail it and never reach Python.
        survivors, shaped, invisible = _candidates.mynumber(text)
        if invisible:
            return self._find_visible(chunk, context_hint)
        cands = survivors
        if label_kw:
            cands.extend(_eleven_digit_cells(text))
        if keyword:
            cands.extend(self._other_groupings(text, cands, label_kw))
        if not cands:
            return []
        if self.compiled is not None:
            rows = self._score_c(text, cands, label_kw, context_hint, shaped)
        else:
            rows = self._score_py(text, cands, label_kw, context_hint, shaped)
        if not label_kw:
            rows = self._listed_under_keyword([self._second_look(text, row) for row in rows])
        return [
            MyNumberMatch(s, e, _BY_RANK[c], grouped, reason, d, gap)
            for s, e, d, c, grouped, reason, gap in rows
        ]

    def _listed_under_keyword(self, rows: list[_Scored]) -> list[_Scored]:
        """A list of numbers that pass the check digit (``many valid numbers in one
        part``) that goes on from a number its keyword made ``high``, each within the
        keyword window of the one before: the rows of one table under one heading.
        A PDF table has no columns to carry its header down (a content review of 3 Dec
        2026: rows 7 to 40 of a 40-person list were ``medium``)."""
        if len(rows) < 3:
            return rows
        out: list[_Scored] = []
        last_end: int | None = None
        for row in sorted(rows):
            s, e, d, rank, grouped, reason, gap = row
            near = last_end is not None and s - last_end <= self.window
            if rank == Confidence.HIGH.rank and "keyword" in reason:
                last_end = e
            elif near and rank == Confidence.MEDIUM.rank and reason.endswith(_MANY):
                row = (s, e, d, Confidence.HIGH.rank, grouped, f"{reason}; {_LISTED}", gap)
                last_end = e
            elif not near:
                last_end = None
            out.append(row)
        return out

    def _second_look(self, text: str, row: _Scored) -> _Scored:
        """What the weighing does not see, for a number it made ``high`` by a keyword:

        * a label right before the number that names another number (資産番号, 端末番号,
          申請書ID, Asset tag, S/N …): a マイナンバー word further away (a section's
          name, a notice about the card) does not make it a My Number.  The enumerated
          ``NEGATIVE_LABELS`` cannot list every office's numbers; this reads the shape
          of a label (a word ending in 番号, No., ID, コード, 記号, #);
        * a yen amount (¥ before, 円 after);
        * an English "my number" / "individual number" before a +81 mobile number:
          an English speaker's phone, not 個人番号.

        A keyword right before the number (個人番号：…) keeps it ``high``."""
        s, e, d, rank, grouped, reason, gap = row
        if rank != Confidence.HIGH.rank:
            return row
        before = text[max(0, s - _LABEL_REACH) : s]
        line = before[max(before.rfind("\n"), before.rfind("\r")) + 1 :]
        kw = _KEYWORD_IN_REASON.search(reason)
        english = kw is not None and kw.group(1).lower() in _ENGLISH_GENERIC
        why = ""
        if english and d[:2] == "81" and d[2:4] in ("70", "80", "90") and "+" in line[-3:]:
            return (
                s,
                e,
                d,
                Confidence.LOW.rank,
                grouped,
                reason + "; a +81 mobile number after English 'my number'",
                gap,
            )
        if gap <= _ADJACENT_LABEL:
            return row  # its keyword is its label: 個人番号 621498320257, my_number: ...
        if _YEN_BEFORE.search(line) or _YEN_AFTER.match(text, e):
            why = "a yen amount"
        elif kw is not None and kw.group(1).isascii() and _in_identifier(text, kw.group(1), s):
            why = f"the word {kw.group(1)} is part of a name (a host, a project, a file)"
        else:
            label = _OTHER_LABEL.search(line) or _OTHER_LABEL_EN.search(line)
            if label is not None and not self.has_keyword(label.group(0)):
                why = f"the label {label.group(0).strip()} right before it names another number"
        if not why:
            return row
        return (s, e, d, Confidence.MEDIUM.rank, grouped, f"{reason}; {why}", gap)

    def _score_c(
        self,
        text: str,
        cands: list[tuple[int, int, str, int, int]],
        label_kw: bool,
        context_hint: bool,
        shaped: int,
    ) -> list[_Scored]:
        """``_score_py`` compiled (``candidates.score``)."""
        assert self.compiled is not None and _candidates.score is not None
        kw, ctx, words, neg = self.compiled
        return _candidates.score(
            text,
            cands,
            kw,
            ctx,
            words,
            self.is_context,
            neg,
            self.window,
            label_kw,
            context_hint,
            shaped,
            _many_distinct(_repeats(cands)),
            (_MAX_WORD, _ADJACENT, _NEGATIVE_REACH, _NEG_LONGEST),
        )

    def _score_py(
        self,
        text: str,
        cands: list[tuple[int, int, str, int, int]],
        label_kw: bool,
        context_hint: bool,
        shaped: int,
    ) -> list[_Scored]:
        """How each candidate weighs (the compiled ``score`` does the same, faster)."""
        # One pass over the chunk when candidates are dense, else windows around each.
        dense = len(cands) * (2 * self.window + 2 * _MAX_WORD) > len(text)
        kw_index = _Lazy(self.keyword_re, text, self.window, dense)
        ctx_index = _Lazy(self.context_re, text, self.window, dense)
        whole_kws = None
        if dense:
            # Keywords and context words in one pass over the chunk.
            kw_spans: list[tuple[int, int, str]] = []
            ctx_spans: list[tuple[int, int, str]] = []
            ctx_words = self.context_words
            for span in self.words_re.spans(text):
                (ctx_spans if span[2] in ctx_words else kw_spans).append(span)
            whole_kws = kw_index.whole = _Positions.of(kw_spans)
            ctx_index.whole = _Positions.of(ctx_spans)

        window = self.window
        nears: list[tuple[_Positions, tuple[int, str] | None]] = []
        explained = k = 0
        for s, e, _d, kind, _f in cands:
            kws = whole_kws or kw_index.around(s, e)
            near = kws.nearest(s, e, window)
            nears.append((kws, near))
            if near is not None:
                explained += 1
            elif kind != _BOXES and kind != _LOOSE:
                k += 1
        # Pass ratio among the values no keyword explains: real numbers next to
        # 個人番号 must not make the random IDs around them look structured.
        many = k >= 3 and _many_distinct(_repeats(cands))(k, max(shaped - explained, k))
        out: list[_Scored] = []
        last_label = self.negative_re.last_end
        for (s, e, d, kind, flags), (kws, near) in zip(cands, nears, strict=True):
            if flags & _FAKE:
                continue
            spaced = kind == _BOXES
            grouped = kind == _GROUPED
            reasons: list[str] = ["checksum"]
            conf: Confidence | None = Confidence.LOW
            if spaced and near is None and not label_kw:
                continue  # digits in boxes are only a number next to its label
            if kind == _LOOSE and not label_kw:
                # Loose groups only right behind their label, on its line: a keyword
                # in the row above is a table's header, over whichever column it heads.
                kb = kws.last_before(s, _ADJACENT)
                if kb is None or "\n" in text[kb:s] or "\r" in text[kb:s]:
                    continue
            if label_kw:
                conf = Confidence.HIGH
                reasons.append("column header keyword")
            elif near is not None:
                conf = Confidence.HIGH
                reasons.append(f"keyword {near[1]} within {near[0]} chars")
            else:
                structure: str | None = None
                if grouped:
                    structure = "4-4-4 layout"
                elif many:
                    structure = "many valid numbers in one part"
                elif context_hint:
                    structure = "keyword in subject or file name"
                else:
                    c = ctx_index.around(s, e).nearest(s, e, self.window)
                    if c is not None:
                        structure = f"personal-data word {c[1]} within {c[0]} chars"
                if structure:
                    conf = Confidence.MEDIUM
                    reasons.append(structure)
            # Negative evidence.  A header keyword is explicit: trust it.
            if not label_kw:
                kw_before = kws.last_before(s, _ADJACENT)
                neg_end = last_label(text, s - _NEGATIVE_REACH - _NEG_LONGEST, s)
                if neg_end is not None and s - neg_end > _NEGATIVE_REACH:
                    neg_end = None
                if neg_end is not None and (kw_before is None or neg_end > kw_before):
                    conf = _demote(conf)
                    reasons.append("other number's label before it")
                if kw_before is None:
                    if flags & _DATE8:
                        conf = _demote(conf)
                        reasons.append("starts with a date")
                    elif flags & _MOBILE:
                        conf = _demote(conf)
                        reasons.append("looks like +81 mobile")
                if flags & _GLUED:
                    conf = _demote(conf)
                    reasons.append("part of an identifier or address")
            if conf is None:
                continue
            if spaced:
                reasons.append("one digit per box")
            gap = 0 if label_kw else (near[0] if near is not None else 1 << 30)
            out.append((s, e, d, conf.rank, grouped, "; ".join(reasons), gap))
        return out

    def _other_groupings(
        self, text: str, found: list[tuple[int, int, str, int, int]], label_kw: bool
    ) -> list[tuple[int, int, str, int, int]]:
        """The shapes the candidate scan does not take (``_other_groups``: digit groups
        joined by anything but a letter, 3-3-3-3, 6-6), as loose groups: they count only
        right behind a keyword on its line, or under a header keyword (``_score_py``),
        since a keyword somewhere in a long text says nothing about how a row of codes
        falls.  Keywords with a candidate right behind them already are passed over."""
        taken = sorted(c[:2] for c in found)
        starts = [t[0] for t in taken]
        ends = []
        if not label_kw:
            for _, e, _ in self.keyword_re.spans(text):
                i = bisect_left(starts, e)
                if i == len(starts) or starts[i] > e + _ADJACENT:
                    ends.append(e)  # no number found right behind this keyword yet
        return [
            (s, e, d, _LOOSE, 0)
            for s, e, d in _other_groups(text, label_kw, ends)
            if not any(s < te and ts < e for ts, te in taken)
        ]

    def _find_in_reading(
        self, chunk: TextChunk, read: str, context_hint: bool
    ) -> list[MyNumberMatch]:
        """``find`` over ``digit_reading``'s text (same length, so the offsets hold),
        each match saying which of its digits were not decimal digits."""
        out: list[MyNumberMatch] = []
        for m in self.find(replace(chunk, text=read), context_hint=context_hint):
            if read[m.start : m.end] != chunk.text[m.start : m.end]:
                m = replace(m, reason=m.reason + "; written in kanji numerals or circled digits")
            out.append(m)
        return out

    def _find_visible(self, chunk: TextChunk, context_hint: bool) -> list[MyNumberMatch]:
        """``find`` over the text as a reader sees it, offsets mapped back to the
        original so masking covers the invisible characters inside the number too."""
        text, new_starts, old_starts = _visible(chunk.text)

        def orig(x: int) -> int:
            i = bisect_right(new_starts, x) - 1
            return old_starts[i] + x - new_starts[i]

        out: list[MyNumberMatch] = []
        for m in self.find(replace(chunk, text=text), context_hint=context_hint):
            start, end = orig(m.start), orig(m.end - 1) + 1
            reason = m.reason
            if end - start != m.end - m.start:
                reason += "; invisible characters inside"
            out.append(replace(m, start=start, end=end, reason=reason))
        return out


def _visible(text: str) -> tuple[str, list[int], list[int]]:
    """``text`` without invisible characters, and where each kept stretch starts
    in the result and in ``text`` (to map offsets back)."""
    parts: list[str] = []
    new_starts: list[int] = []
    old_starts: list[int] = []
    pos = n = 0
    for m in _candidates.INVISIBLE_RE.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
            new_starts.append(n)
            old_starts.append(pos)
            n += m.start() - pos
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
        new_starts.append(n)
        old_starts.append(pos)
    return "".join(parts), new_starts, old_starts


def _numerals() -> tuple[dict[int, str], frozenset[str]]:
    """The characters that write one digit but are no decimal digits, so the candidate
    scan does not read them (kanji numerals; circled, superscript and subscript digits),
    with their digit; and the characters that write several (⑫, ⒈, ⑴)."""
    one = {ord(c): str(i) for i, c in enumerate("〇一二三四五六七八九")} | {
        ord(c): str(i)
        for i, c in enumerate("零壱弐参肆伍陸漆捌玖")  # daiji, as on forms
    }
    one |= {ord("○"): "0", ord("◯"): "0"}  # circles typed for 〇 (the IME offers them)
    several = []
    for lo, hi in _numchars.DIGITS:
        for cp in range(lo, hi + 1):
            c = chr(cp)
            if c.isdecimal():
                continue
            n = unicodedata.normalize("NFKC", c)
            if len(n) == 1 and "0" <= n <= "9":
                one[cp] = n
            else:
                several.append(c)
    return one, frozenset(several)


_NUMERALS, _SEVERAL = _numerals()
_RUN = frozenset(chr(c) for lo, hi in _numchars.DIGITS for c in range(lo, hi + 1)) | frozenset(
    map(chr, _NUMERALS)
)
"""What a digit run is made of: every character whose NFKC form holds a digit (as
``scrub`` reads runs), and the kanji numerals."""
_NUMERAL_PAIRS = Words(
    [
        a + b
        for a in "〇一二三四五六七八九零壱弐参肆伍陸漆捌玖○◯⓪①②③④⑤⑥⑦⑧⑨"
        for b in {*map(chr, _NUMERALS), *"0123456789０１２３４５６７８９"}
    ],
    guard=False,
)
"""A kanji numeral or circled digit followed by a numeral or a digit: in every run of
four of them or more (all but the last are followed by one).  One compiled pass finds
whether ``text`` has any, 1.5 ns a character on Japanese text; a regular expression
class of these characters costs 17."""
_MIN_NUMERALS = 4
"""A run is read as digits only when it holds this many of them: a lone 一 in a word
(一人, 統一) or the 一 typed for the long vowel of マイナンバ一 stays a character."""


def digit_reading(text: str) -> str:
    """``text`` with the kanji numerals and circled digits of every digit run read as
    ASCII digits (``六二一四九八三二〇二五七``, ``六二一四九八320257``, ``⑥②①④…``),
    character for character, so offsets are those of ``text``; ``text`` itself (the
    same object) when there is no such run.

    A run is a stretch of digit characters of any kind holding at least four of
    these; the separators between groups end a run, so each group of ``六二一四
    九八三二 〇二五七`` is a run of its own."""
    if text.isascii() or not _NUMERAL_PAIRS.search(text):
        return text
    runs: list[tuple[int, int]] = []
    for s, e, _ in _NUMERAL_PAIRS.spans(text):
        if runs and s < runs[-1][1]:
            continue  # inside the run found last
        while s > 0 and text[s - 1] in _RUN:
            s -= 1
        while e < len(text) and text[e] in _RUN:
            e += 1
        runs.append((s, e))
    parts: list[str] = []
    pos = 0
    for s, e in runs:
        run = text[s:e]
        read = run.translate(_NUMERALS)
        if sum(a != b for a, b in zip(run, read, strict=True)) < _MIN_NUMERALS or any(
            c in _SEVERAL for c in run
        ):
            # ⑫ is two digits: one for one, the run would read one digit short of
            # what NFKC (and ``scrub``) reads; such a run is left as written.
            continue
        parts += (text[pos:s], read)
        pos = e
    if not parts:
        return text
    parts.append(text[pos:])
    return "".join(parts)


_GROUP_SEP = (
    "["
    + re.escape(
        " ,\uff0c\u3000\u00a0-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff0d\u30fc.\uff0e\u30fb"
    )
    + "]"
)
_GROUPS = (
    rf"(?P<number>\d{{3}}(?P<sep>{_GROUP_SEP})\d{{3}}(?P=sep)\d{{3}}(?P=sep)\d{{3}}"
    rf"|\d{{6}}{_GROUP_SEP}\d{{6}})"
)
_OTHER_GROUPS_CELL = re.compile(rf"(?m)^[ \t]*{_GROUPS}[ \t]*$")
"""Twelve digits grouped 3-3-3-3 (one separator, the same each time: the comma is
Excel's thousands separator) or 6-6, as a whole cell of a column (one cell a line):
not the card's layout, but how some people copy the number down.  Right behind a
keyword, ``_BEHIND`` takes these shapes and more."""
_GAP = r"(?:[^\w\r\n]|_)"
_BEHIND = re.compile(rf"\d+(?:({_GAP}{{1,3}})\d+(?:\1\d+)*)?")
"""Digits in groups of any size joined by the same one to three characters that are no
letter or digit, each time (``6214_9832_0257``, ``【6214】【9832】【0257】``,
``6-2-1-4-9-8-3-2-0-2-5-7``, ``62149832-0257``): right behind its keyword, what a
person reads as the number.  The same joiner each time: a date and a time
(``2026/12/03 10:30``) mix them."""
_BEHIND_SPACED = re.compile(r"\d+(?:[ \t\u3000\u00a0]{1,3}\d+)+")
"""Groups or single digits spaced unevenly (``6 2 1 4  9 8 3 2  0 2 5 7``)."""
_ROW_EDGE = re.compile(rf"{_GAP}{{0,3}}\d")
_OTHER_GROUPS_REACH = _ADJACENT + 12 + 11 * 3 + 4
"""How far after a keyword such a number can end and still count (``_score_py``:
its start within ``_ADJACENT``), the look-ahead past its end included."""


def _other_groups(text: str, label_kw: bool, keyword_ends: list[int]) -> list[tuple[int, int, str]]:
    """(start, end, digits) of every number with a valid check digit the candidate scan
    does not take: 3-3-3-3 or 6-6 in the cells of a column under a keyword header, and
    digit groups joined by anything but a letter right after a keyword (``_BEHIND``)."""
    if label_kw:
        found = [m.span("number") for m in _OTHER_GROUPS_CELL.finditer(text)]
    else:
        found = []
        for end in keyword_ends:
            reach = min(len(text), end + _OTHER_GROUPS_REACH)
            m = _BEHIND.search(text, end, reach)
            if m is None or m.start() - end > _ADJACENT or (found and m.start() < found[-1][1]):
                continue  # none, or too far behind the keyword to count (_score_py)
            s, e = m.span()
            spaced = _BEHIND_SPACED.match(text, s, reach)
            if spaced is not None and spaced.end() > e:
                e = spaced.end()
            wrapped = _BEHIND_WRAPPED.match(text, s, reach)
            if wrapped is not None and wrapped.end() > e:
                e = wrapped.end()
            found.append((s, e))
    out = []
    for s, e in found:
        float_zero = _FLOAT_ZERO.match(text, s, e)
        if float_zero is not None:
            e = float_zero.end(1)  # 621498320257.0: a number written as a float
        digits = _NOT_DIGIT.sub("", text[s:e])
        if len(digits) != 12:
            continue
        if not label_kw and (
            (float_zero is None and _ROW_EDGE.match(text, e))
            or _ROW_BEFORE.search(text, max(0, s - 4), s)
        ):
            continue  # part of a longer row of digit groups
        d = _ascii_digits(digits)
        if _valid12(d):
            out.append((s, e, d))
    return out


_NOT_DIGIT = re.compile(r"\D")
_FLOAT_ZERO = re.compile(r"(\d{12})\.0+(?!\d)")
_BEHIND_WRAPPED = re.compile(r"\d+[-‐－ー]?[ \t]*\r?\n(?:[ \t]*>)*[ \t]*\d+")
"""A number the mail program wrapped at the end of the keyword's line (Japanese text
wraps at any character: ``621498⏎320257``, ``621498-⏎320257``, quoted ``>> 320257``)."""
_ROW_BEFORE = re.compile(rf"\d{_GAP}{{1,3}}\Z")


def _eleven_digit_cells(text: str) -> list[tuple[int, int, str, int, int]]:
    out = []
    for m in _ELEVEN_RE.finditer(text):
        whole = m.group(1).split(".", 1)[0]
        try:
            d = _ascii_digits(whole).rjust(12, "0")
        except ValueError:  # pragma: no cover
            continue
        if _valid12(d):
            s = m.start(1)
            e = s + len(whole)
            out.append((s, e, d, _candidates.PLAIN, _candidates.number_flags(text, s, e, d)))
    return out


@lru_cache(maxsize=16)
def build_detector(window: int = 300, extra_keywords: tuple[str, ...] = ()) -> MyNumberDetector:
    """Compile the detector once per (window, extra keywords)."""
    keyword_re = Words((*KEYWORDS, *extra_keywords))
    context_re = Words(CONTEXT_WORDS)
    negative_re = Words(NEGATIVE_LABELS)
    words_re = Words((*KEYWORDS, *extra_keywords, *CONTEXT_WORDS))
    context_words = frozenset(CONTEXT_WORDS) - frozenset((*KEYWORDS, *extra_keywords))
    sets = (keyword_re._c, context_re._c, words_re._c, negative_re._c)
    return MyNumberDetector(
        window=window,
        keyword_re=keyword_re,
        context_re=context_re,
        negative_re=negative_re,
        words_re=words_re,
        context_words=context_words,
        is_context=bytes(w in context_words for w in words_re.words),
        compiled=sets if _candidates.score is not None and None not in sets else None,
    )


# ---------------------------------------------------------------------------
# Masking: the one guard for every string that leaves the scanner
#
# A number can reach a subject, a file name, an address or a reply in more shapes than
# the detector scores: one digit per spreadsheet cell copied with tabs, full-width or
# circled digits, any hyphen look-alike, a zero-width space or a bidi mark typed or
# pasted inside it.  The masking functions therefore look at *digit runs*: digit
# characters (numchars.DIGITS, anything whose NFKC form is a digit) joined by any number
# of gap characters (numchars.GAPS: spaces, tabs, line breaks, invisible characters,
# dashes, dots, commas, quotes, cell separators).  A run is made of *groups* (digits
# with nothing between them).  Any normalisation a reader or a tool applies - NFKC,
# dropping invisible characters, dropping separators, joining the cells of a row -
# turns a run into numbers made of consecutive groups, so:
#
# * ``scrub`` masks every sequence of consecutive groups holding exactly twelve digits
#   whose check digit is valid.  Other digits stay readable: the Message-ID and queue
#   ids a reviewer matches against the MTA's log, dates, order numbers, longer runs.
# * ``redact`` (subject, sender, file names, locations in a ScanReport) also stars every
#   run of eight or more digits, so not even part of a number is reported.
#
# docs/sendlog.md ("What is masked") states the rule for administrators.

SCRUB_MASK = "****-****-****"
"""The one mask for a number: the same for every number, so it is no per-number token."""


def _run_patterns(limit: int) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(one digit character, one digit run) over code points below ``limit``.

    Three sizes, because ``re`` tests a class holding astral code points range by range
    for every character (a bitmap covers only the BMP): the ASCII pair is 5x faster
    than the full one on a 50-character subject, and the BMP pair serves Japanese text."""

    def cut(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        return tuple((lo, min(hi, limit - 1)) for lo, hi in ranges if lo < limit)

    d = _numchars.char_class(cut(_numchars.DIGITS))
    g = _numchars.char_class(cut(_numchars.GAPS))
    return re.compile(d), re.compile(f"{d}(?:{g}*{d})*")


_ASCII_RE = _run_patterns(0x80)
_BMP_RE = _run_patterns(0x10000)
_ALL_RE = _run_patterns(0x110000)
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")
_ASCII_GROUP_RE = re.compile(r"[0-9]+")


def _ascii_long(need: int) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """For ASCII text: (``need`` digits anywhere, a digit run ``need`` characters or longer).

    ``_mask`` skips an ASCII run shorter than ``need`` characters; the lookahead lets
    ``re`` pass over those itself, so a reply with a date, a status code and a queue id
    in it costs one scan instead of a Python step per short run.  A run found from inside
    a longer one cannot hide it: the longer run's first digit is where the lookahead
    holds, and ``re`` tries that position before any inside it."""

    def cut(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        return tuple((lo, min(hi, 0x7F)) for lo, hi in ranges if lo < 0x80)

    member = _numchars.char_class(cut(_numchars.DIGITS) + cut(_numchars.GAPS))
    return (
        # Matched at the start only, possessively: one pass, no retry per digit.
        re.compile(f"(?:[^0-9]*+[0-9]){{{need}}}"),
        re.compile(f"(?={member}{{{need}}}){_ASCII_RE[1].pattern}"),
    )


_ASCII_LONG = {12: _ascii_long(12), 8: _ascii_long(8)}
_EXPANSIONS = _numchars.expansions()
"""Non-ASCII digit character -> its digits, " " for a gap, "#" for a run's end."""

_Group = tuple[int, int, str]
"""start, end (offsets in the text) and the ASCII digits of one group."""


def _segments(text: str, start: int, end: int) -> list[list[_Group]]:
    """The groups of the run text[start:end], split where a character's NFKC form ends
    the run (``⑴`` is "(1)", ``½`` is "1⁄2").

    A group also ends where ``Nd`` digits meet other digit characters: ``①123456789018``
    is thirteen digits after NFKC but twelve to the detector's ``\\d``."""
    run = text[start:end]
    if run.isascii():
        return [
            [(start + m.start(), start + m.end(), m.group()) for m in _ASCII_GROUP_RE.finditer(run)]
        ]
    segments: list[list[_Group]] = []
    groups: list[_Group] = []
    digits = ""
    first = 0
    decimal = True
    for i in range(start, end):
        c = text[i]
        if "0" <= c <= "9":
            exp, nd = c, True
        else:
            found = _EXPANSIONS.get(c)
            if found is None:  # a gap character
                if digits:
                    groups.append((first, i, digits))
                    digits = ""
                continue
            exp, nd = found, c.isdecimal()
        if digits and nd is not decimal:
            groups.append((first, i, digits))
            digits = ""
        decimal = nd
        for ch in exp:
            if ch == " " or ch == "#":
                if digits:
                    groups.append((first, i + 1, digits))
                    digits = ""
                if ch == "#" and groups:
                    segments.append(groups)
                    groups = []
            else:
                if not digits:
                    first = i
                digits += ch
    if digits:
        groups.append((first, end, digits))
    if groups:
        segments.append(groups)
    return segments


def _number_spans(groups: list[_Group]) -> list[tuple[int, int]]:
    """Spans of consecutive groups that hold exactly twelve digits with a valid check digit.

    A sliding window (every group holds at least one digit, so the shortest window
    reaching twelve digits only moves right): linear in the number of groups."""
    spans = []
    n = len(groups)
    j = -1
    total = 0
    for i in range(n):
        while total < 12 and j + 1 < n:
            j += 1
            total += len(groups[j][2])
        if total < 12:
            break
        if total == 12:
            d = groups[i][2] if i == j else "".join([g[2] for g in groups[i : j + 1]])
            if _valid12(d):
                spans.append((groups[i][0], groups[j][1]))
        total -= len(groups[i][2])
    return spans


def _mask(text: str, runs_from: int) -> str:
    """``scrub`` (``runs_from`` 0) and ``redact`` (8): see the comment above, then
    the shapes no digit run covers (``_SPLIT_SHAPES``, ``_JOINED``)."""
    masked = _mask_runs(text, runs_from)
    for shape in _SPLIT_SHAPES:
        masked = shape.sub(_mask_if_valid, masked)
    return _mask_joined(masked)


# Twelve digits a person still reads as one number although no gap character joins
# them, so ``_mask_runs`` sees three runs or none: 4-4-4 split by the same
# punctuation mark (6214/9832/0257, 6214:9832:0257 - no date or clock time has that
# shape), and numbers written in kanji numerals (六二一四九八三二〇二五七), spaced 4-4-4
# or not, alone or mixed with digits (六二一四九八320257).  Masked when the check digit holds, as every number is.
_K = "[〇一二三四五六七八九零0-9\uff10-\uff19]"  # kanji numerals, or mixed with digits
_D = "[0-9\uff10-\uff19]"
_SPLIT_SHAPES = (
    re.compile(rf"(?<!{_D}){_D}{{4}}([^\w\s])({_D}{{4}})\1{_D}{{4}}(?!{_D})"),
    re.compile(rf"(?<!{_K}){_K}{{4}}[ \u3000\-・]?{_K}{{4}}[ \u3000\-・]?{_K}{{4}}(?!{_K})"),
)


_WRAPPED = re.compile(rf"(?<!\d){_BEHIND_WRAPPED.pattern}(?!\d)")
_JOINED = re.compile(rf"(?<!\d)\d+(?:({_GAP}{{1,3}})\d+)(?:\1\d+)*(?!\d)")
"""Digit groups of any size joined by the same one to three characters that are no
letter or digit (``2071 / 8728 / 3349``, ``[5406][2767][8422]``, ``「6604」「8764」「7594」``,
``6214_9832_0257``): the shapes the detector takes right behind a keyword
(``_BEHIND``).  Masking has no keyword to go by, so it takes them anywhere."""


def _mask_joined(text: str) -> str:
    """``text`` with every ``_JOINED`` number masked, digits written as kanji numerals
    or circled digits included (read as ``digit_reading`` reads them)."""
    read = text if text.isascii() else digit_reading(text)
    cuts: list[tuple[int, int]] = []
    for m in _JOINED.finditer(read):
        at = m.start()
        cuts += [(at + s, at + e) for s, e in _joined_cuts(m.group(), m.group(1))]
    for m in _WRAPPED.finditer(read):  # wrapped at a line end (``_BEHIND_WRAPPED``)
        if _is_number(m.group()):
            cuts.append(m.span())
    return _masked(text, [(s, e, False) for s, e in cuts])


def _joined_cuts(found: str, joiner: str) -> list[tuple[int, int]]:
    """Every run of whole groups in ``found`` that holds twelve digits passing the
    check digit: a longer row (``No. 12 / 6214 / 9832 / 0257``) may hold one."""
    groups = found.split(joiner)
    if sum(map(len, groups)) < 12:
        return []
    starts = []
    at = 0
    for g in groups:
        starts.append(at)
        at += len(g) + len(joiner)
    cuts: list[tuple[int, int]] = []
    for i in range(len(groups)):
        digits = ""
        for j in range(i, len(groups)):
            digits += groups[j]
            if len(digits) >= 12:
                break
        if len(digits) == 12 and _valid12(_ascii_digits(digits)):
            end = starts[j] + len(groups[j])
            if cuts and starts[i] < cuts[-1][1]:
                cuts[-1] = (cuts[-1][0], end)
            else:
                cuts.append((starts[i], end))
    return cuts


def _mask_if_valid(m: re.Match[str]) -> str:
    return SCRUB_MASK if _is_number(m.group()) else m.group()


def _is_number(found: str) -> bool:
    """``found`` holds twelve digits (any script, kanji numerals too) passing the check."""
    digits = _ascii_digits(_NOT_DIGIT.sub("", found.translate(_NUMERALS)))
    return len(digits) == 12 and _valid12(digits)


def _mask_runs(text: str, runs_from: int) -> str:
    if not text:
        return text
    need = runs_from or 12
    read = text  # where the runs are found; the same length, so its cuts are text's
    if text.isascii():
        enough, run_re = _ASCII_LONG[need]
        if enough.match(text) is None:
            return text  # most strings: too few digits to matter
    else:
        read = digit_reading(text)  # kanji numerals in a run of digits are digits
        digit_re, run_re = _ALL_RE if _ASTRAL_RE.search(read) else _BMP_RE
        if len(digit_re.findall(read)) < need // 2:  # ⑫ holds two digits
            return text
    cuts: list[tuple[int, int, bool]] = []  # start, end, starred (else SCRUB_MASK)
    for m in run_re.finditer(read):
        s, e = m.span()
        if e - s < need and m.group().isascii():
            continue  # too few digits (a non-ASCII character can hold two: ⑫)
        for groups in _segments(read, s, e):
            if runs_from and sum(len(g[2]) for g in groups) >= runs_from:
                cuts.extend((g[0], g[1], True) for g in groups)
            else:
                cuts.extend((s, e, False) for s, e in _number_spans(groups))
    return _masked(text, cuts)


def _masked(text: str, cuts: list[tuple[int, int, bool]]) -> str:
    """``text`` with each cut (start, end, starred) masked, overlapping cuts as one."""
    if not cuts:
        return text
    out: list[str] = []
    pos = 0
    for s, e, starred in _merge(cuts):
        out.append(text[pos:s])
        out.append("*" * (e - s) if starred else SCRUB_MASK)
        pos = e
    out.append(text[pos:])
    return "".join(out)


def _merge(cuts: list[tuple[int, int, bool]]) -> list[tuple[int, int, bool]]:
    """Overlapping cuts become one (two numbers of one run share digits; ``½`` ends
    one segment and starts the next); a mask wins over stars."""
    merged: list[tuple[int, int, bool]] = []
    for s, e, starred in sorted(cuts):
        if merged and s < merged[-1][1]:
            ps, pe, pstar = merged[-1]
            merged[-1] = (ps, max(e, pe), pstar and starred)
        else:
            merged.append((s, e, starred))
    return merged


def scrub(text: str) -> str:
    """``text`` with every My Number, in any shape and any normalisation, replaced by
    ``SCRUB_MASK``; every other character, digits included, unchanged.

    For free text a reviewer must still read and match: a Message-ID, a subject, an
    address, the next hop's reply, a comment, a log line: none of them may carry a
    number the gateway would then keep.
    Every other known detector's values (card numbers ...) are masked too: see
    ``dlp.detect.registry.mask_others``.
    Idempotent: ``scrub(scrub(t)) == scrub(t)``."""
    if text.isascii() and _SEVEN_ASCII_DIGITS.match(text) is None:
        # Nearly every string logged or recorded (field names, verbs, addresses, an
        # IP): My Number needs twelve digits and every other detector seven.
        return text
    return _others(_mask(text, 0))


_SEVEN_ASCII_DIGITS = re.compile(r"(?:[^0-9]*+[0-9]){7}")  # matched at the start: one pass


def redact(text: str) -> str:
    """``text`` with every digit run of eight or more digits starred out (one ``*`` a
    character), and so every number ``scrub`` masks.

    For metadata that leaves the scanner (subject, sender, file names, locations): it
    may quote a number, and neither it nor a recognisable part of it may reach a
    report or log."""
    if text.isascii() and _SEVEN_ASCII_DIGITS.match(text) is None:
        return text  # as in scrub: runs of eight need eight digits, the others seven
    return _others(_mask(text, 8))


_MASK_OTHERS: list[Callable[[str], str]] = []


def _others(text: str) -> str:
    if not _MASK_OTHERS:
        # Imported on first use: the registry imports this module.
        from dlp.detect.registry import mask_others

        _MASK_OTHERS.append(mask_others)
    return _MASK_OTHERS[0](text)
