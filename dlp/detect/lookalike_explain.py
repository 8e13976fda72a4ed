"""Say in words what differs between a lookalike domain and the one it imitates.

A sender told "looks like gmail.com (transposition, distance 2)" still has to
find the difference; "two letters swapped: gmial ↔ gmail" shows it.  The
alignment comes from ``Levenshtein.opcodes`` (python-Levenshtein); adjacent
swaps, which Levenshtein reports as two replacements, and look-alike characters
(``rn`` for ``m``, Cyrillic ``а`` for ``a``) are recognised on top of it.

``explain`` returns a (ja, en) pair: the bounce shows both, the CLI and the
console the one their reader asked for.  Pure and cheap (a few µs); it runs
only for a domain already found to be a lookalike.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import Levenshtein

from dlp.detect.confusables import loose


@dataclass(frozen=True, slots=True)
class Explanation:
    ja: str
    en: str


def _char(ch: str) -> str:
    """A character as a reader can identify it: 'a', or 'а (CYRILLIC SMALL LETTER A)'."""
    if ch.isascii():
        return repr(ch) if ch in ".-" else ch
    return f"{ch} ({unicodedata.name(ch, f'U+{ord(ch):04X}')})"


def _chars(s: str) -> str:
    return "".join(s) if s.isascii() else " ".join(_char(c) for c in s)


def _split_suffix(text: str, suffix: str) -> str:
    return text[: -len(suffix) - 1] if suffix and text.endswith("." + suffix) else text


def explain(
    candidate: str, protected: str, cand_suffix: str = "", prot_suffix: str = ""
) -> Explanation:
    """What turns ``protected`` into ``candidate`` (both U-label text).

    ``cand_suffix``/``prot_suffix`` are the public suffixes (A-label is fine
    for ASCII): when the part before them is the same, the difference is named
    as a suffix change.
    """
    if not candidate or not protected:
        return Explanation("", "")
    head_c = _split_suffix(candidate, cand_suffix)
    head_p = _split_suffix(protected, prot_suffix)
    if cand_suffix and prot_suffix and cand_suffix != prot_suffix and head_c == head_p:
        return Explanation(
            f"末尾が .{prot_suffix} ではなく .{cand_suffix} です（{candidate} ↔ {protected}）",
            f"the suffix .{prot_suffix} became .{cand_suffix} ({candidate} ↔ {protected})",
        )
    if candidate.startswith(protected + ".") or candidate.startswith(protected + "-"):
        tail = candidate[len(protected) :]
        return Explanation(
            f"{protected} の後ろに {tail} が付いています（別のドメインです）",
            f"{protected} followed by {tail}: a different domain",
        )
    if loose(candidate) == loose(protected) and candidate != protected:
        ja, en = _glyphs(candidate, protected)
        return Explanation(
            f"見た目の似た文字: {ja}（{candidate} ↔ {protected}）",
            f"look-alike characters: {en} ({candidate} ↔ {protected})",
        )
    flat_c = _flat(candidate.rsplit(".", 1)[0])
    flat_p = _flat(protected)
    if (
        "." in candidate
        and flat_c.startswith(flat_p[: max(3, len(flat_p) - 4)])
        and (Levenshtein.distance(flat_c, flat_p) <= 2 and "." not in candidate.rsplit(".", 1)[0])
        # the suffix really is in the name (expcojp.com), not a letter changed
        # under the same suffix (mufj.jp for mufg.jp: one letter, no dots lost)
        and (
            flat_c == _flat(head_p)
            or Levenshtein.distance(flat_c, flat_p) < Levenshtein.distance(flat_c, _flat(head_p))
        )
        and candidate.replace("-", ".") != protected
    ):
        tld = candidate.rsplit(".", 1)[1]
        return Explanation(
            f"{protected} のドットが抜けて一つの名前になり、.{tld} が付いています（{candidate}）",
            f"{protected} run together without its dots, under .{tld} ({candidate})",
        )
    parts_ja, parts_en = _diff_parts(protected, candidate)
    if (
        cand_suffix
        and prot_suffix
        and cand_suffix != prot_suffix
        and head_c != head_p
        and len(_diff_parts(head_p, head_c)[1]) <= 2
    ):
        # a slip in the name *and* another suffix: say both (ctiy.yokohama.lg.com)
        parts_ja, parts_en = _diff_parts(head_p, head_c)
        parts_ja.append(f"末尾が .{prot_suffix} ではなく .{cand_suffix}")
        parts_en.append(f"the suffix .{prot_suffix} became .{cand_suffix}")
    if len(parts_en) > 3:  # beyond three changes a list helps nobody
        n = len(parts_en)
        return Explanation(
            f"{n} か所が異なります（{candidate} ↔ {protected}）",
            f"{n} changes ({candidate} ↔ {protected})",
        )
    return Explanation(
        "、".join(parts_ja) + f"（{candidate} ↔ {protected}）",
        "; ".join(parts_en) + f" ({candidate} ↔ {protected})",
    )


def _flat(text: str) -> str:
    return text.replace(".", "").replace("-", "")


def _find_swap(base: str, candidate: str) -> tuple[int, str] | None:
    """(position, base with two neighbours swapped) when the swap brings it
    two edits closer to ``candidate`` (gmail -> gmial)."""
    d = Levenshtein.distance(base, candidate)
    if d < 2:
        return None
    for i in range(len(base) - 1):
        if base[i] == base[i + 1]:
            continue
        swapped = base[:i] + base[i + 1] + base[i] + base[i + 2 :]
        if Levenshtein.distance(swapped, candidate) <= d - 2:
            return i, swapped
    return None


def _glyphs(candidate: str, protected: str) -> tuple[str, str]:
    """Name the look-alike characters (rn for m, 1 for l, а for a)."""
    ja: list[str] = []
    en: list[str] = []
    for tag, i1, i2, j1, j2 in Levenshtein.opcodes(protected, candidate):
        if tag == "equal":
            continue
        old, new = protected[i1:i2], candidate[j1:j2]
        if not old or not new:
            continue
        ja.append(f"{_chars(old)} の代わりに {_chars(new)}")
        en.append(f"{_chars(new)} for {_chars(old)}")
    return ("、".join(ja) or "文字の置き換え"), ("; ".join(en) or "characters replaced")


def _diff_parts(protected: str, candidate: str) -> tuple[list[str], list[str]]:
    """The changes that turn ``protected`` into ``candidate``, in words (ja, en)."""
    parts_ja: list[str] = []
    parts_en: list[str] = []
    base = protected
    for _ in range(2):  # adjacent swaps, which Levenshtein counts as two edits
        swap = _find_swap(base, candidate)
        if swap is None:
            break
        i, base = swap
        parts_ja.append(f"{base[i : i + 2][::-1]} と {base[i : i + 2]} の入れ替わり")
        parts_en.append(f"two letters swapped ({base[i : i + 2]} for {base[i : i + 2][::-1]})")
    ops = [op for op in Levenshtein.opcodes(base, candidate) if op[0] != "equal"]
    for tag, i1, i2, j1, j2 in ops:
        old, new = base[i1:i2], candidate[j1:j2]
        if tag == "replace" and len(old) == len(new) == 2 and old == new[::-1]:
            parts_ja.append(f"{old} と {new} の入れ替わり")
            parts_en.append(f"two letters swapped ({new} for {old})")
        elif tag == "replace" and old.replace(".", "") == new.replace("-", "") and "." in old:
            parts_ja.append("ドット(.)がハイフン(-)に")
            parts_en.append("a dot written as a hyphen")
        elif tag == "replace":
            parts_ja.append(f"{_chars(old)} が {_chars(new)} に")
            parts_en.append(f"{_chars(old)} changed to {_chars(new)}")
        elif tag == "delete":
            what = "ドット(.)" if old == "." else _chars(old)
            parts_ja.append(f"{what} が抜けている")
            parts_en.append(f"{'a dot' if old == '.' else _chars(old)} left out")
        else:  # insert
            what = "ドット(.)" if new == "." else _chars(new)
            parts_ja.append(f"{what} が余分")
            parts_en.append(f"{'a dot' if new == '.' else _chars(new)} added")
    return parts_ja, parts_en
