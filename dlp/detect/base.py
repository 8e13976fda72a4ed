"""What a content detector is, and the pieces most detectors share.

A detector finds one kind of protected identifier (a My Number, a card number, a
licence number ...) in one ``TextChunk``.  It is a pure object built once per
setting; the scanner runs the tuple of enabled detectors over every chunk
(``dlp.detect.registry`` names them).  Adding one is one module, one registry
line, its tests and a paragraph in docs/scanning.md.

Every detector decides the same way, so administrators can read one rule:

* a **candidate pattern** finds the shapes (digits in any Unicode form, the usual
  separators);
* a **validation** (a check digit, issuer ranges, a code table) drops what cannot be
  one; without a check digit, only context can make a value count;
* **context**: the detector's keywords within ``window`` characters (or the
  column header) make it ``high``; a weaker structure makes it ``medium``; a
  validated value alone is ``low`` (only for detectors whose validation is strong);
* **negative labels** just before a value (電話, 注文番号 ...) lower it one level;
* it **masks its own spans** (``mask``) for everything that leaves the scanner.

The match type holds the value for one scan only: masked in ``repr``, refused by
pickle, so it cannot reach a log line or another process (the filter keeps no
numbers, not even in a log).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, SupportsIndex, runtime_checkable

from dlp.detect import native
from dlp.model import Confidence, Finding, Summary, TextChunk


@runtime_checkable
class Match(Protocol):
    """One value found by a detector in one chunk."""

    @property
    def detector(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def confidence(self) -> Confidence: ...
    @property
    def masked(self) -> str:
        """The value fully masked: all of it that leaves the scanner."""
        ...

    @property
    def reason(self) -> str: ...
    @property
    def value(self) -> str:
        """The normalised value, for distinct counting in memory only."""
        ...

    @property
    def gap(self) -> int:
        """Characters between the value and the nearest own keyword (large if none):
        arbitration between two detectors claiming the same digits."""
        ...

    def to_finding(self, location: str) -> Finding: ...


@runtime_checkable
class Detector(Protocol):
    """A content detector (see the module docstring for how every one decides)."""

    @property
    def name(self) -> str:
        """Stable name: ``findings[].detector``, ``summary.<name>``, policy rules."""
        ...

    def has_keyword(self, text: str) -> bool:
        """``text`` (a subject, a file name) names this kind of identifier."""
        ...

    def find(self, chunk: TextChunk, *, context_hint: bool = False) -> Sequence[Match]:
        """Validated, scored matches; ``context_hint``: a keyword in the subject,
        the body or a file name (raises a validated value to ``medium``)."""
        ...

    def mask(self, text: str) -> str:
        """``text`` with every value this detector would validate masked."""
        ...


# ---------------------------------------------------------------------------
# Keyword lists


def english(*phrases: str) -> tuple[str, ...]:
    """Case and spacing variants of English phrases, as plain literals.

    Literal alternations let ``re`` skip text with a first-character set in C;
    an inline ``(?i:...)`` would disable that and cost 5x on long texts."""
    out: set[str] = set()
    for phrase in phrases:
        words = phrase.split()
        # "_": field names of exports (my_number in JSON, CSV, YAML)
        for sep in {" ", "", "-", "_"} if len(words) > 1 else {" "}:
            out.add(sep.join(words))
            out.add(sep.join(w.capitalize() for w in words))
            out.add(sep.join(words).upper())
            out.add(sep.join([words[0].capitalize(), *words[1:]]))
            out.add(sep.join([words[0], *(w.capitalize() for w in words[1:])]))
    return tuple(sorted(out))


def literal(word: str) -> str:
    """A word as a regex; an English word must not start inside another
    ("dummy number" is not "my number", "hotel" not "tel").  The lookbehind
    sits after the first character so the alternation keeps its fast prefix."""
    first, rest = word[0], word[1:]
    if first.isascii() and first.isalpha():
        return re.escape(first) + f"(?<![A-Za-z]{re.escape(first)})" + re.escape(rest)
    return re.escape(word)


def _ordered(words: Iterable[str]) -> tuple[str, ...]:
    # Longest first so the longest variant is reported rather than its prefix.
    return tuple(sorted({w for w in words if w}, key=lambda w: (-len(literal(w)), literal(w))))


def alternation(words: Iterable[str]) -> str:
    return "|".join(literal(w) for w in _ordered(words))


class Words:
    """Literal words, found as the regex ``alternation(words)`` finds them (leftmost
    first, the longest variant at one position, non-overlapping), by the compiled
    scanner where it is built: one bit test per character instead of the regex
    engine's class test, which made keyword searches over long text the largest cost
    after the candidate scan (bench/scan_throughput.py).

    ``guard``: an English word must not start inside another (``literal``); off for
    plain substrings such as the gate's stems, which are then searched in the order
    given."""

    __slots__ = ("_c", "guard", "pattern", "words")

    def __init__(self, words: Iterable[str], *, guard: bool = True) -> None:
        self.guard = guard
        self.words = _ordered(words) if guard else tuple(dict.fromkeys(w for w in words if w))
        as_re = literal if guard else re.escape
        self.pattern: re.Pattern[str] | None = (
            re.compile("|".join(as_re(w) for w in self.words)) if self.words else None
        )
        self._c = native.C.Words(self.words, guard) if native.C is not None else None

    def spans(self, text: str, lo: int = 0, hi: int = -1) -> list[tuple[int, int, str]]:
        """(start, end, word) of every occurrence in text[lo:hi]."""
        if self._c is not None:
            return self._c.spans(text, max(lo, 0), hi)
        if self.pattern is None:
            return []
        end = len(text) if hi < 0 else hi
        return [
            (m.start(), m.end(), m.group()) for m in self.pattern.finditer(text, max(lo, 0), end)
        ]

    def present(self, text: str) -> tuple[str, ...]:
        """The words that occur anywhere in ``text``, in their order, overlapping
        occurrences included: of ``icens`` and ``ension`` in "licension" ``spans``
        reports the first only."""
        if self._c is not None:
            return self._c.present(text)
        if self.pattern is None:
            return ()
        as_re = literal if self.guard else re.escape
        return tuple(w for w in self.words if re.search(as_re(w), text))

    def last_end(self, text: str, lo: int, hi: int) -> int | None:
        """End of the last occurrence in text[lo:hi], if any."""
        if self._c is not None:
            end = self._c.last_end(text, max(lo, 0), hi)
            return None if end < 0 else end
        spans = self.spans(text, lo, hi)
        return spans[-1][1] if spans else None

    def search(self, text: str, lo: int = 0, hi: int = -1) -> bool:
        """Whether a word occurs in text[lo:hi]."""
        if self._c is not None:
            return self._c.search(text, max(lo, 0), hi)
        if self.pattern is None:
            return False
        end = len(text) if hi < 0 else hi
        return self.pattern.search(text, max(lo, 0), end) is not None


def demote(c: Confidence | None) -> Confidence | None:
    if c is Confidence.HIGH:
        return Confidence.MEDIUM
    if c is Confidence.MEDIUM:
        return Confidence.LOW
    return None


def fold_digits(s: str) -> str:
    """Any Unicode decimal digits to ASCII, everything else dropped."""
    if s.isascii():  # the usual case, without a Python call per character
        return "".join(filter(str.isdigit, s))
    return "".join(str(int(c)) for c in s if c.isdecimal())


_WIDE_DIGITS = "０１２３４５６７８９"
_WIDE_RE = re.compile("[０-９]")


def _has_wide_digit(text: str) -> bool:
    # Ten ``in`` scans beat one regex on long text; on short text the regex wins.
    if len(text) < 512:
        return _WIDE_RE.search(text) is not None
    return any(c in text for c in _WIDE_DIGITS)


DIGIT = "[0-9０-９]"
"""ASCII and full-width digits: what the card detector accepts."""
ASCII_DIGIT = "[0-9]"
ANY_DIGIT = r"\d"
"""Any Unicode decimal digit (Arabic-Indic, Devanagari, mathematical …), as My Number
reads them: a number typed or pasted in another script is the same number.  The
detectors that only count a value next to their keyword take these; ``fold_digits``
or ``fold_value`` gives the ASCII value."""


def fold_value(s: str) -> str:
    """``s`` in NFKC (full-width letters to ASCII) with every decimal digit as ASCII:
    the value of an identifier with letters (a passport or residence card number)."""
    return "".join(str(int(c)) if c.isdecimal() else c for c in unicodedata.normalize("NFKC", s))


# Separators between digit groups: every space a word processor or a PDF puts
# between them (NBSP, ideographic, en/em/thin/figure/hair, narrow NBSP,
# medium mathematical), dots and middle dots (・ ･ ·), and the hyphen and dash
# look-alikes IMEs and word processors produce (as for My Number).  Not the tab,
# comma or slash: between 4-digit columns of a table or a list they would make
# one row in ten (the check digit) a grouped candidate.
SEPARATORS = (
    " \u00a0\u3000\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u202f\u205f"
    ".\uff0e\u30fb\uff65\u00b7"
    "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff0d\u30fc\uff70"
    "\ufe63\u2043\u02d7\u208b\u2e3a\u2e3b\ufe58"
)
SEP_CLASS = "[" + re.escape(SEPARATORS) + "]"


def summarize(matches: Iterable[Match]) -> Summary:
    """Counts for a whole message: each distinct value once, at its highest confidence.
    A :class:`GroupHit` (one roster table) counts each of its members."""
    best: dict[str, Confidence] = {}
    total = 0
    for m in matches:
        values = m.members if isinstance(m, GroupHit) else (m.value,)
        total += len(values)
        for v in values:
            prev = best.get(v)
            if prev is None or m.confidence.rank > prev.rank:
                best[v] = m.confidence
    levels = list(best.values())
    return Summary(
        total=total,
        distinct=len(best),
        high=levels.count(Confidence.HIGH),
        medium=levels.count(Confidence.MEDIUM),
        low=levels.count(Confidence.LOW),
    )


# ---------------------------------------------------------------------------
# A match, and a detector built from a specification


def finding(m: Match, location: str) -> Finding:
    """What leaves the scanner of a match: its mask, confidence, place and reason."""
    return Finding(
        detector=m.detector,
        confidence=m.confidence,
        location=location,
        masked=m.masked,
        offset=m.start,
        reason=m.reason,
    )


@dataclass(frozen=True, slots=True, eq=False)
class Hit:
    """A match of a :class:`PatternDetector`.  Holds the value for this scan only."""

    detector: str
    start: int
    end: int
    confidence: Confidence
    masked: str
    reason: str
    _value: str = field(repr=False)
    gap: int = 1 << 30

    @property
    def value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return (
            f"Hit({self.detector}, {self.masked}, start={self.start}, "
            f"confidence={self.confidence.value}, reason={self.reason!r})"
        )

    __str__ = __repr__

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        raise TypeError("a detector match holds an identifier and must not leave the process")

    def to_finding(self, location: str) -> Finding:
        return finding(self, location)


@dataclass(frozen=True, slots=True, eq=False)
class GroupHit:
    """One finding that stands for many values: a table of persons (``roster``).
    ``members`` (one key a row) are counted by :func:`summarize`; only the count
    leaves the scanner."""

    detector: str
    start: int
    end: int
    confidence: Confidence
    masked: str
    reason: str
    _members: tuple[str, ...] = field(repr=False)
    gap: int = 0

    @property
    def members(self) -> tuple[str, ...]:
        return self._members

    @property
    def value(self) -> str:
        return self._members[0] if self._members else ""

    def __repr__(self) -> str:
        return f"GroupHit({self.detector}, {self.masked}, confidence={self.confidence.value})"

    __str__ = __repr__

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        raise TypeError("a detector match holds personal data and must not leave the process")

    def to_finding(self, location: str) -> Finding:
        return finding(self, location)


@runtime_checkable
class TableDetector(Protocol):
    """A detector that reads a whole table at once (its columns, each a ``TextChunk``
    with its header as ``field_label``), not one chunk at a time."""

    @property
    def name(self) -> str: ...

    def find_table(self, columns: Sequence[TextChunk]) -> Sequence[Match]: ...

    @property
    def header_words(self) -> tuple[str, ...]:
        """Words one of which any header row this detector reads holds: only lines
        with one are tried as the header of a table aligned with spaces."""
        ...

    def reads_header(self, labels: Sequence[str]) -> bool:
        """A table with these column labels may hold what this detector finds."""
        ...

    def has_keyword(self, text: str) -> bool: ...

    def find(self, chunk: TextChunk, *, context_hint: bool = False) -> Sequence[Match]: ...

    def mask(self, text: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Candidate:
    """What a specification's ``validate`` makes of one regex match."""

    value: str
    """Normalised (ASCII, no separators): what distinct counting compares."""
    masked: str
    strong: bool = False
    """Its shape alone suggests this kind (4-4-4-4 card layout): ``medium`` without a keyword."""
    note: str = ""


@dataclass(frozen=True)
class PatternDetector:
    """A detector from a specification: candidate regex, validation, keywords.

    Scoring (docs/scanning.md, "How every detector decides"):

    * own keyword within ``window`` characters, or the column header names it: ``high``;
    * else a strong shape, a personal-data context word nearby, or a keyword in the
      subject/body/file name (``context_hint``): ``medium``;
    * else ``low`` when ``alone_low`` (the validation is strong: Luhn and issuer
      ranges), otherwise dropped (no check digit: context decides);
    * a negative label within 24 characters before the value, nearer than any own
      keyword: one level lower (below ``low`` it is dropped).
    """

    name: str
    candidate_re: re.Pattern[str]
    validate: Callable[[re.Match[str]], Candidate | None]
    keyword_re: Words
    context_re: Words | None
    negative_re: Words | None
    window: int = 80
    alone_low: bool = False
    mask_with: str = "****"
    mask_needs_keyword: bool = False
    """Mask only values with an own keyword nearby (values with no check digit:
    masking every seven-digit run would blank out dates and order numbers)."""
    gate: tuple[str, ...] = ()
    """Substrings every keyword contains one of (a few stems, each case as written):
    ``in`` per stem is far cheaper than the alternation on text holding none."""
    ascii_re: re.Pattern[str] | None = None
    """``candidate_re`` for ASCII digits only, used when the text has no full-width
    digit.  A detector whose ``candidate_re`` reads digits in other scripts
    (``ANY_DIGIT``) leaves it None: that test looks for full-width digits only."""
    prefilter: Callable[[str], list[tuple[int, int]]] | None = None
    """A compiled pass giving the spans of ``candidate_re`` that pass the detector's
    check (``dlp.detect.candidates``): ``validate`` then runs on those only."""
    keyword_gated: bool = False
    """Values count only with context (a keyword near, in the column header, or in
    the subject, body or file name): a chunk without the keyword is skipped before
    the candidate scan, which keeps these detectors nearly free on ordinary mail."""

    def __post_init__(self) -> None:
        # The stems as one compiled set: one pass for all of them.
        object.__setattr__(self, "_stems", Words(self.gate, guard=False) if self.gate else None)

    def has_keyword(self, text: str) -> bool:
        # Most text holds no stem: one pass for all stems decides it, and only then
        # does the keyword set check whole words.
        stems: Words | None = self.__dict__["_stems"]
        return bool(text) and (stems is None or stems.search(text)) and self.keyword_re.search(text)

    def _candidates(self, text: str) -> list[tuple[int, int, Candidate]]:
        if self.prefilter is not None:
            # The compiled pass found the shapes and ran the check; the regex and
            # ``validate`` see only the survivors (about one in ten).
            out = []
            match = self.candidate_re.match
            for s, e in self.prefilter(text):
                m = match(text, s)
                if m is not None and m.end() == e:
                    c = self.validate(m)
                    if c is not None:
                        out.append((s, e, c))
            return out
        pattern = self.candidate_re
        if self.ascii_re is not None and not _has_wide_digit(text):
            # No full-width digit: the ASCII-only pattern finds the same values
            # twice as fast (its first item is a plain range, not Unicode \d).
            pattern = self.ascii_re
        out = []
        for m in pattern.finditer(text):
            c = self.validate(m)
            if c is not None:
                out.append((m.start(), m.end(), c))
        return out

    def find(self, chunk: TextChunk, *, context_hint: bool = False) -> list[Hit]:
        text = chunk.text
        label_kw = bool(chunk.field_label) and self.has_keyword(chunk.field_label or "")
        if self.keyword_gated and not (label_kw or context_hint or self.has_keyword(text)):
            return []
        cands = self._candidates(text)
        if not cands:
            return []
        out: list[Hit] = []
        for s, e, c in cands:
            reasons = [self.name.replace("_", " ") + " shape" + (f" ({c.note})" if c.note else "")]
            gap = 1 << 30
            near = _nearest(self.keyword_re, text, s, e, self.window)
            conf: Confidence | None
            if label_kw:
                conf, gap = Confidence.HIGH, 0
                reasons.append("column header keyword")
            elif near is not None:
                conf, gap = Confidence.HIGH, near[0]
                reasons.append(f"keyword {near[1]} within {near[0]} chars")
            elif c.strong:
                conf = Confidence.MEDIUM
                reasons.append("layout")
            elif context_hint:
                conf = Confidence.MEDIUM
                reasons.append("keyword in subject, body or file name")
            elif self.keyword_gated:
                conf = None  # context decides, and there is none near this value
            else:
                ctx = (
                    None
                    if self.context_re is None
                    else _nearest(self.context_re, text, s, e, self.window)
                )
                if ctx is not None:
                    conf = Confidence.MEDIUM
                    reasons.append(f"personal-data word {ctx[1]} within {ctx[0]} chars")
                else:
                    conf = Confidence.LOW if self.alone_low else None
            if conf is None:
                continue
            if not label_kw and self.negative_re is not None:
                neg = _last_before(self.negative_re, text, s, 24)
                kw_end = None if near is None or near[2] > s else near[2]
                if neg is not None and (kw_end is None or neg > kw_end):
                    conf = demote(conf)
                    reasons.append("other number's label before it")
            if conf is None:
                continue
            out.append(Hit(self.name, s, e, conf, c.masked, "; ".join(reasons), c.value, gap))
        return out

    def mask(self, text: str) -> str:
        if self.mask_needs_keyword and not self.has_keyword(text):
            return text
        cands = self._candidates(text)
        if not cands:
            return text
        parts: list[str] = []
        pos = 0
        for s, e, c in cands:
            if (
                self.mask_needs_keyword
                and _nearest(self.keyword_re, text, s, e, self.window) is None
            ):
                continue
            parts.append(text[pos:s])
            parts.append(c.masked)
            pos = e
        parts.append(text[pos:])
        return "".join(parts)


def _nearest(words: Words, text: str, s: int, e: int, window: int) -> tuple[int, str, int] | None:
    """Nearest occurrence of ``words`` within ``window`` characters of text[s:e]:
    (gap, word, end of the word)."""
    best: tuple[int, str, int] | None = None
    for ms, me, w in words.spans(text, s - window - 64, min(len(text), e + window + 64)):
        gap = s - me if me <= s else (ms - e if ms >= e else 0)
        if 0 <= gap <= window and (best is None or gap < best[0]):
            best = (gap, w, me)
    return best


def _last_before(words: Words, text: str, s: int, reach: int) -> int | None:
    """End of the last occurrence of ``words`` ending within ``reach`` characters before ``s``."""
    end = words.last_end(text, s - reach - 32, s)
    return end if end is not None and s - end <= reach else None


JOINERS = frozenset(SEPARATORS) - {" ", "\u00a0", "\u3000"}
"""Hyphen-like or dot separators: a digit joined by one of these to a run makes it part
of a longer number.  A lone space does not (row numbers, "No. 1 123456789018"),
except inside a grouped form."""

GLUE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz@_/=%#+&?"
"""Characters that glue a digit run to an identifier, URL or mail address."""


def joined(text: str, s: int, e: int, grouped: bool) -> bool:
    """A separator joins text[s:e] to a digit before or after it: a window of a longer
    number (``T1-2345-…``, a longer grouped run).  Digits directly on either side are
    excluded by the candidate regexes' own lookarounds."""
    if s >= 2:
        c = text[s - 1]
        if (c in JOINERS or (grouped and c in SEPARATORS)) and text[s - 2].isdecimal():
            return True
    if e + 1 < len(text):
        c = text[e]
        if (c in JOINERS or (grouped and c in SEPARATORS)) and text[e + 1].isdecimal():
            return True
    return False


def glued(text: str, s: int, e: int) -> bool:
    """text[s:e] touches an identifier, URL or address (``ID…``, ``…@``)."""
    return (s > 0 and text[s - 1] in GLUE) or (e < len(text) and text[e] in GLUE)


def standalone(m: re.Match[str], grouped: bool) -> bool:
    """The match is neither a window of a longer number nor glued to an identifier."""
    text, s, e = m.string, m.start(), m.end()
    return not glued(text, s, e) and not joined(text, s, e, grouped)


def compile_words(words: Iterable[str]) -> Words:
    return Words(words)


COMMON_NEGATIVE_LABELS: tuple[str, ...] = (
    "電話",
    "携帯",
    *english("tel", "fax", "phone", "mobile"),
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
    "お問い合わせ番号",
    "予約番号",
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
    "法人番号",
    "登録番号",
    # The numbers of schools, hospitals and offices (a careless-sender review of 3 Dec
    # 2026: "普通科2年 学籍番号 2312045" was tagged as a bank account).
    "学籍番号",
    "受験番号",
    "出席番号",
    "生徒番号",
    "社員番号",
    "職員番号",
    "会員番号",
    "患者番号",
    "患者ID",
    "診察券番号",
    "カルテ番号",
    "整理番号",
    "申込番号",
    "水栓番号",
    "お客さま番号",
    "お届け番号",
    "送り状",
    # A resident-tax notice (普通徴収 is a way of paying, not an account), an
    # insurance card's 記号番号 (a second careless-sender review of 3 Dec 2026).
    "宛名番号",
    "普通徴収",
    "特別徴収",
    "保険証",
    "被保険者証",
    "資格確認書",
    "保険者番号",
    # Codes next to the words of another identifier: a licence key beside 有効期限, a
    # tour code beside パスポート, an application number beside 年金手帳.
    "ライセンス",
    "プロダクトキー",
    "シリアル",
    "ツアーコード",
    "予約コード",
    "確認コード",
    "受付No",
    "受付ＮＯ",
    *english("license", "licence", "product key", "activation"),
    *english("isbn", "serial", "order", "invoice", "tracking"),
)
"""Labels of other numbers: seen just before a value, they argue against it."""

PERSONAL_CONTEXT: tuple[str, ...] = (
    "氏名",
    "フリガナ",
    "生年月日",
    "住所",
    "本人確認",
    "身分証",
    *english("date of birth", "full name"),
)
"""Personal-data words: next to a value they make it ``medium`` without a keyword."""


# ---------------------------------------------------------------------------
# What a detector is called


@dataclass(frozen=True, slots=True)
class Labels:
    """How people are told what a detector found: sender notices, reviewer reasons,
    the console and the leak-report draft all read these (``registry.labels``), so a
    new detector names itself in its own module."""

    ja: str
    """What it finds, in Japanese: 運転免許証番号 (a notice says 「…と思われる情報」)."""
    en: str
    """A short English name for reviewers and the console: "driving licence"."""
    en_found: str
    """The English notice phrase: "what appear to be driving licence numbers"."""
    ja_item: str = ""
    """The item of personal data in a leak report (item ②), when it is not ``ja``."""

    @property
    def ja_found(self) -> str:
        return f"{self.ja}と思われる情報"

    @property
    def item(self) -> str:
        return self.ja_item or self.ja

    def name(self, lang: str) -> str:
        """The short name in ``lang`` ("ja" or "en")."""
        return self.en if lang == "en" else self.ja
