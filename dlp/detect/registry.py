"""The content detectors by name: ``[scan] detectors`` picks from these.

A new detector is one module exposing ``build() -> Detector`` and ``LABELS`` (what
people call it), one line in ``_ENTRIES``, its tests and a paragraph in
docs/scanning.md.  The order here is the arbitration order of last resort
(``arbitrate``) and the order of ``summary.<name>`` in reports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter

from dlp.detect import (
    bank_account,
    credit_card,
    drivers_license,
    passport,
    pension_number,
    residence_card,
    roster,
)
from dlp.detect.base import (
    ANY_DIGIT,
    ASCII_DIGIT,
    SEP_CLASS,
    Detector,
    Labels,
    Match,
    PatternDetector,
    TableDetector,
    Words,
)
from dlp.detect.mynumber import DETECTOR as MYNUMBER
from dlp.detect.mynumber import LABELS as MYNUMBER_LABELS
from dlp.detect.mynumber import build_detector


@dataclass(frozen=True, slots=True)
class Entry:
    """One known detector: how to build it, and what people call it."""

    build: Callable[[int, tuple[str, ...]], Detector]
    labels: Labels


_ENTRIES: dict[str, Entry] = {
    MYNUMBER: Entry(lambda window, extra: build_detector(window, extra), MYNUMBER_LABELS),
    credit_card.NAME: Entry(lambda window, extra: credit_card.build(), credit_card.LABELS),
    drivers_license.NAME: Entry(lambda w, x: drivers_license.build(), drivers_license.LABELS),
    residence_card.NAME: Entry(lambda w, x: residence_card.build(), residence_card.LABELS),
    passport.NAME: Entry(lambda w, x: passport.build(), passport.LABELS),
    pension_number.NAME: Entry(lambda w, x: pension_number.build(), pension_number.LABELS),
    bank_account.NAME: Entry(lambda w, x: bank_account.build(), bank_account.LABELS),
    roster.NAME: Entry(lambda w, x: roster.build(), roster.LABELS),
}

NAMES: tuple[str, ...] = tuple(_ENTRIES)
"""Every detector this version knows."""

DEFAULT_ENABLED: tuple[str, ...] = NAMES
"""On unless ``[scan] detectors`` says otherwise: those with no false positive at
``high`` over the shared corpus (bench/detectors.py, BENCHMARKS.md)."""


def labels(name: str) -> Labels:
    """What people call detector ``name``; an unknown name (an old log entry's, a
    detector since removed) is called by its identifier."""
    entry = _ENTRIES.get(name)
    return entry.labels if entry is not None else Labels(name, name, name, name)


def display_name(name: str, lang: str) -> str:
    """The short name of detector ``name`` in ``lang`` ("ja" or "en")."""
    return labels(name).name(lang)


_ORDER = {name: i for i, name in enumerate(NAMES)}


@dataclass(frozen=True)
class Gate:
    """The keyword stems of every keyword-gated detector in one pattern.

    A detector that only counts values next to its keyword (``PatternDetector.
    keyword_gated``) has nothing to find in a chunk without one; one search for
    all their stems costs a third of asking each in turn (BENCHMARKS.md)."""

    stems: Words | None
    owners: Mapping[str, frozenset[str]]
    gated: frozenset[str]

    def hits(self, text: str) -> frozenset[str]:
        """The gated detectors whose stem ``text`` holds."""
        if self.stems is None:
            return frozenset()
        # Every stem present, overlapping ones too: a stem hidden behind another
        # detector's overlapping stem would skip its detector (and fail open).
        found: set[str] = set()
        for stem in self.stems.present(text):
            found |= self.owners[stem]
        return frozenset(found)


@lru_cache(maxsize=16)
def build_gate(names: tuple[str, ...]) -> Gate:
    owners: dict[str, set[str]] = {}
    for d in build_detectors(names):
        if isinstance(d, PatternDetector) and d.keyword_gated and d.gate:
            for stem in d.gate:
                owners.setdefault(stem, set()).add(d.name)
    if not owners:
        return Gate(None, {}, frozenset())
    return Gate(
        Words(sorted(owners, key=len, reverse=True), guard=False),
        {w: frozenset(n) for w, n in owners.items()},
        frozenset(n for ns in owners.values() for n in ns),
    )


@lru_cache(maxsize=16)
def build_detectors(
    names: tuple[str, ...], window: int = 300, extra_keywords: tuple[str, ...] = ()
) -> tuple[Detector, ...]:
    """The enabled detectors, compiled once per setting.  ``extra_keywords`` and
    ``window`` are the My Number settings (``[scan] keyword_window``, ``extra_keywords``)."""
    unknown = [n for n in names if n not in _ENTRIES]
    if unknown:
        raise ValueError(f"unknown detector {unknown[0]!r}; known: {', '.join(NAMES)}")
    ordered = sorted(dict.fromkeys(names), key=_ORDER.__getitem__)
    return tuple(_ENTRIES[n].build(window, extra_keywords) for n in ordered)


@lru_cache(maxsize=1)
def _maskers() -> tuple[tuple[Callable[[str], str], ...], dict[str, Callable[[str], str]], Gate]:
    # Every known detector but My Number (``scrub`` masks it itself), enabled or not:
    # masking more than the configuration scans for is the safe side (a value the
    # scan did not look for must still not reach a log or a notice).
    # Those that mask only next to their keyword run only when the shared gate saw one.
    gate = build_gate(NAMES)
    always: list[Callable[[str], str]] = []
    gated: dict[str, Callable[[str], str]] = {}
    for d in build_detectors(NAMES):
        if d.name == MYNUMBER or isinstance(d, TableDetector):
            continue
        if isinstance(d, PatternDetector) and d.mask_needs_keyword and d.name in gate.gated:
            gated[d.name] = d.mask
        else:
            always.append(d.mask)
    return tuple(always), gated, gate


_SEVEN_DIGITS_RE = re.compile(f"{ASCII_DIGIT}{{4}}(?:{SEP_CLASS}?{ASCII_DIGIT}){{3}}")
"""Seven digits, single separators allowed: the least any of them holds (a passport's
or bank account's seven digits, the first two groups of a card or licence number)."""
_SEVEN_ANY_DIGITS_RE = re.compile(f"{ANY_DIGIT}{{4}}(?:{SEP_CLASS}?{ANY_DIGIT}){{3}}")
"""The same in any script (full-width, Arabic-Indic …): the keyword-gated detectors
read those digits, so their values must be masked in them too."""


def mask_others(text: str) -> str:
    """``text`` with the values of every detector other than My Number masked."""
    seven = _SEVEN_DIGITS_RE if text.isascii() else _SEVEN_ANY_DIGITS_RE
    if len(text) < 7 or seven.search(text) is None:
        return text  # most strings: a subject, an address, a date
    always, gated, gate = _maskers()
    for mask in always:
        text = mask(text)
    for name in gate.hits(text):
        if name in gated:
            text = gated[name](text)
    return text


def arbitrate(matches: Sequence[Match]) -> list[Match]:
    """One claim per span of text: of two matches from different detectors that
    overlap, the higher confidence wins, then the nearer own keyword, then the
    registry order (My Number first).  docs/scanning.md states the rule."""
    if not matches:
        return []
    first = matches[0].detector
    if all(m.detector == first for m in matches):
        return list(matches)

    def rank(m: Match) -> tuple[int, int, int]:
        return (-m.confidence.rank, m.gap, _ORDER.get(m.detector, len(_ORDER)))

    # Sweep in text order; only a cluster of overlapping spans from two or more
    # detectors needs ranking.  Most matches overlap nothing and cost one
    # comparison (a dump of numbers gives thousands per chunk).
    ordered = sorted(matches, key=_SPAN)
    out: list[Match] = []
    n = len(ordered)
    i = 0
    while i < n:
        m = ordered[i]
        reach = m.end
        j = i + 1
        while j < n and ordered[j].start < reach:
            reach = max(reach, ordered[j].end)
            j += 1
        if j == i + 1:
            out.append(m)
            i = j
            continue
        cluster = ordered[i:j]
        i = j
        if len({c.detector for c in cluster}) < 2:
            out.extend(cluster)
            continue
        kept: list[Match] = []
        for c in sorted(cluster, key=rank):
            if all(k.detector == c.detector or c.end <= k.start or k.end <= c.start for k in kept):
                kept.append(c)
        out.extend(sorted(kept, key=_SPAN))
    return out


_SPAN = attrgetter("start", "end")
