"""Homoglyph skeletons for domain labels (Unicode UTS #39, the part domains need).

A *skeleton* replaces every character by the ASCII letter or digit it is
visually confusable with, so ``gmаil`` (Cyrillic а), ``grnail`` and ``gmail``
all have the skeleton ``gmail``.  Two different labels with equal skeletons are
homoglyphs of each other.

The table lives in ``dlp/data/confusables.txt``.  It was generated from the
Unicode confusables data that the PyPI package ``confusable-homoglyphs`` ships
(``python -m dlp.detect.confusables > dlp/data/confusables.txt``), keeping only
characters that can survive IDNA/UTS-46 mapping and whose prototype is a
domain character (a-z, 0-9 or ``rn``).  It is read once at import; nothing is
ever downloaded.  ``tests/unit/test_lookalike_confusables.py`` regenerates it
and fails if the committed file is stale.
"""

from __future__ import annotations

import re
import unicodedata
from importlib import resources

# UTS #39's own ASCII-to-ASCII confusables (0~O, 1~l~I, m~rn), written in the
# direction that keeps a skeleton short, plus typographic pairs that
# confusables.txt does not list but typosquatters use (vv~w, cl~d, lc~k, and
# i~l, which is I~l once a domain is lower-cased).  Applied after lower-casing.
ASCII_FOLDS: tuple[tuple[str, str], ...] = (
    # single characters first, so that a fold never hides the pair after it
    # (icioud -> lcloud -> ldoud, like icloud)
    ("0", "o"),
    ("1", "l"),
    ("i", "l"),
    ("rn", "m"),
    ("vv", "w"),
    # lc before cl: "lcl" is k + l far more often than l + d (lcikaku ~ kikaku)
    ("lc", "k"),
    ("cl", "d"),
)
_SINGLE = str.maketrans({src: dst for src, dst in ASCII_FOLDS if len(src) == 1})
_PAIRS = tuple((src, dst) for src, dst in ASCII_FOLDS if len(src) > 1)

# Beyond UTS #39: Cyrillic small letters whose UTS #39 prototype is a small
# capital (ԍ ~ ɢ, м ~ ʍ, к ~ ĸ, т ~ ᴛ, ь ~ ƅ) but which a mail client's font
# shows as the lower-case Latin letter; homograph attacks use them.
SUPPLEMENT: dict[str, str] = {
    "ԍ": "g", "м": "m", "к": "k", "т": "t", "ь": "b",
    "ƅ": "b",  # LATIN SMALL LETTER TONE SIX: a b in every mail client's font
}  # fmt: skip

_DATA_FILE = "data/confusables.txt"


def _fold_ascii(text: str) -> str:
    text = text.translate(_SINGLE)
    for src, dst in _PAIRS:
        text = text.replace(src, dst)
    return text


def _load_table() -> dict[int, str]:
    table: dict[int, str] = {}
    text = resources.files("dlp").joinpath(_DATA_FILE).read_text(encoding="utf-8")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        code, target = line.split()
        table[int(code.removeprefix("U+"), 16)] = target
    for char, target in SUPPLEMENT.items():
        table.setdefault(ord(char), target)
    return table


_TABLE: dict[int, str] = _load_table()


def skeleton(text: str) -> str:
    """The confusable skeleton of an already normalised (lower-case) label or domain."""
    if text.isascii():
        return _fold_ascii(text)
    out: list[str] = []
    for ch in text.translate(_TABLE):
        if out and out[-1].isascii() and unicodedata.category(ch) == "Mn":
            continue  # exp̣, e̷xp: a combining mark with no precomposed form, on a Latin letter
        out.append(_strip_marks(ch))
    return _fold_ascii("".join(out))


# Beyond the skeleton: pairs a reader confuses at mail-client font sizes but
# UTS #39 keeps apart (nn~m as in "nnhlw", u~v, q~g).  Used by ``loose`` only,
# which is compared for whole-name equality, never with an edit budget on top
# for ASCII names: folded that far, one more edit would make too much alike.
LOOSE_FOLDS: tuple[tuple[str, str], ...] = (("nn", "m"), ("u", "v"), ("q", "g"))
_LATIN_NAME = re.compile(
    r"LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL )?([A-Z])(?: WITH .*)?"
)
_BASE_CACHE: dict[str, str] = {}


def _latin_base(ch: str) -> str:
    """ø, ŧ, ɏ, ⱪ, ʏ read as o, t, y, k, y: Latin letters with a stroke, hook or
    bar, and small capitals, have no decomposition but name their base letter."""
    base = _BASE_CACHE.get(ch)
    if base is None:
        m = _LATIN_NAME.fullmatch(unicodedata.name(ch, ""))
        base = m.group(1).lower() if m else ch
        _BASE_CACHE[ch] = base
    return base


def loose(text: str) -> str:
    """A coarser skeleton for several homoglyphs at once (``nnh1vv`` ~ ``mhlw``,
    ``v-t0kyo`` ~ ``u-tokyo``, ``u-tokɏø`` ~ ``u-tokyo``)."""
    return loose_of_skeleton(skeleton(text))


def loose_of_skeleton(s: str) -> str:
    """``loose`` of a text whose skeleton is ``s`` (saves folding twice)."""
    if not s.isascii():
        s = _fold_ascii("".join(ch if ch.isascii() else _latin_base(ch) for ch in s))
    for src, dst in LOOSE_FOLDS:
        s = s.replace(src, dst)
    return s


def _strip_marks(ch: str) -> str:
    # à, ǵ, ạ read as a, g, a: drop combining marks, but only from a Latin
    # base letter (が and か differ to a Japanese reader).
    if ch.isascii():
        return ch
    decomposed = unicodedata.normalize("NFD", ch)
    if len(decomposed) > 1 and decomposed[0].isascii():
        return decomposed[0]
    return ch


def table_size() -> int:
    return len(_TABLE)


# ---------------------------------------------------------------------------
# Generator (build time only; needs the test extra `confusable-homoglyphs`)

_PROTOTYPE = re.compile(r"[a-z0-9]{1,2}")


def generate() -> str:
    """Render the data file from the confusables data shipped in ``confusable-homoglyphs``."""
    import json
    from importlib.metadata import version

    import confusable_homoglyphs

    pkg = resources.files(confusable_homoglyphs)
    data = json.loads(pkg.joinpath("confusables.json").read_text(encoding="utf-8"))
    chosen: dict[str, tuple[str, str]] = {}
    for key, entries in data.items():
        proto = key.lower()
        if not _PROTOTYPE.fullmatch(proto):
            continue
        target = _fold_ascii(proto)
        if len(target) != 1:
            continue
        for entry in entries:
            char = entry["c"].replace("\u200e", "")
            if len(char) != 1 or char.isascii():
                continue
            # Only characters that can still be there after UTS-46 mapping
            # (NFKC + lower-case) matter; the rest never reach the comparison.
            if unicodedata.normalize("NFKC", char).lower() != char:
                continue
            previous = chosen.get(char)
            if previous is None or target < previous[0]:
                chosen[char] = (target, entry.get("n", ""))
    lines = [
        "# Homoglyph table for domain labels: code point, ASCII prototype, name.",
        "# Generated by `python -m dlp.detect.confusables` from the Unicode",
        f"# confusables data in confusable-homoglyphs {version('confusable-homoglyphs')}.",
        "# Do not edit by hand.",
    ]
    for char in sorted(chosen):
        target, name = chosen[char]
        lines.append(f"U+{ord(char):04X}\t{target}\t# {name}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - build-time tool
    import sys

    sys.stdout.write(generate())
