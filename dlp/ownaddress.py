"""Is a free-mail recipient probably the sender's own private address? (issue 14)

The incident behind it: an employee mailed residents' My Numbers to a home
mailbox.  Such an address usually spells the sender's name the way their work
address does — ``taro.yamada@city.example.lg.jp`` to ``yamada.taro1985@gmail.com``,
``t-yamada@`` to ``taroyamada@``, ``ysato@`` to ``satou.y@`` — so the recipient's
local part is compared with strings built from the sender's name parts:

* the parts come from the sender's local part (split at ``. _ - +`` and digits)
  and from the From display name when it is written in Latin letters;
* candidates are the parts alone (three letters or more), each ordered pair
  joined, and initial + part / part + initial;
* both sides are folded the ways Japanese names are romanised differently
  (Hepburn/Kunrei ``shi/si``, ``tsu/tu``, ``fu/hu``, ``ji/zi``; long vowels
  ``ou/oh/oo/uu``), digits and separators are dropped;
* the score is the best ``Levenshtein.ratio`` (python-Levenshtein), and a
  combination of six letters or more found whole inside the local part scores 0.95.

``THRESHOLD`` was set on ``tests/data/own_address_pairs.tsv`` (precision and
recall in docs/sendlog.md).  A display name in kanji only is not romanised here
(no reading dictionary ships with the gateway): the sender's local part carries
the comparison then.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from email.utils import parseaddr

import Levenshtein

from dlp.model import Recipient, RecipientClass

THRESHOLD = 0.85
_SPLIT = re.compile(r"[^a-z]+")
_FOLDS = (
    ("shi", "si"),
    ("chi", "ti"),
    ("tsu", "tu"),
    ("sh", "sy"),
    ("ch", "ty"),
    ("fu", "hu"),
    ("ji", "zi"),
    ("ou", "o"),
    ("oh", "o"),
    ("oo", "o"),
    ("uu", "u"),
    ("mb", "nb"),
    ("mp", "np"),
)


def fold(text: str) -> str:
    """Letters only, lower case, romanisation variants made one."""
    s = "".join(ch for ch in text.lower() if "a" <= ch <= "z")
    for a, b in _FOLDS:
        s = s.replace(a, b)
    return s


def name_parts(sender: str, display_name: str = "") -> list[str]:
    """The sender's name parts: local-part pieces, then Latin display-name words."""
    local = sender.strip("<>").rpartition("@")[0].lower() or sender.lower()
    parts = [p for p in _SPLIT.split(local) if p]
    parts += [p for p in _SPLIT.split(display_name.lower()) if p]
    out: list[str] = []
    for p in parts:
        if p not in out:
            out.append(p)
    # An initial the display name spells out (s.kato, "Kato Satoshi") says nothing more.
    return [p for p in out if len(p) > 1 or not any(q[0] == p and len(q) > 1 for q in out)]


def candidates(parts: Sequence[str]) -> tuple[set[str], set[str], set[str]]:
    """(single names, name + name, name + initial), folded.  A family name alone is
    shared by others (hanako.yamada is not taro.yamada), so single names count only
    when nearly the whole local part is the name (``yamada1985``)."""
    names = [p for p in parts if len(p) >= 2]
    initials = {p[0] for p in parts}
    single = {fold(p) for p in names if len(p) >= 3}
    pairs = {fold("".join(parts))}
    with_initial: set[str] = set()
    for a in names:
        for b in names:
            if a != b:
                pairs.add(fold(a) + fold(b))
        for i in initials:
            if i != a[0] or len(names) == 1:
                with_initial.add(i + fold(a))
                with_initial.add(fold(a) + i)
    keep = {c for c in pairs if len(c) >= 3} - single
    return single, keep, {c for c in with_initial if len(c) >= 3} - single - keep


def _token_rule(recipient_local: str, parts: Sequence[str]) -> bool:
    """One word of the local part is a name of the sender, and another word stands
    for another part of the name: its initial alone (goto.h.private for goto.h), or,
    when the sender's part is itself only an initial, any word starting with it
    (kenichi.tanaka for k.tanaka), or a close spelling of it.  A word that merely
    starts with the same letter as a known full name is someone else (ayumi.mori is
    not Mori Ayako)."""
    words = [fold(w) for w in _SPLIT.split(recipient_local.lower()) if w]
    for part in parts:
        if len(part) < 3:
            continue
        f = fold(part)
        others = [p for p in parts if fold(p) != f]
        for k, w in enumerate(words):
            if len(w) < 3 or Levenshtein.ratio(w, f) < 0.85:
                continue
            rest = [x for x in words[:k] + words[k + 1 :] if x]
            for o in others:
                fo = fold(o)
                for x in rest:
                    if (
                        x == fo[:1]
                        or (len(o) == 1 and x[0] == o)
                        or (len(o) > 1 and Levenshtein.ratio(x, fo) >= 0.85)
                    ):
                        return True
    return False


def score(recipient_local: str, sender: str, display_name: str = "") -> float:
    """0..1: how much ``recipient_local`` looks like the sender's own name."""
    r = fold(recipient_local)
    if len(r) < 3:
        return 0.0
    parts = name_parts(sender, display_name)
    single, pairs, with_initial = candidates(parts)
    best = 0.9 if _token_rule(recipient_local, parts) else 0.0
    for c in pairs:
        if len(c) >= 6 and c in r:
            best = max(best, 0.95)
        best = max(best, Levenshtein.ratio(r, c))
    for c in with_initial:
        best = max(best, Levenshtein.ratio(r, c))
    for c in single:
        ratio = Levenshtein.ratio(r, c)
        if ratio >= 0.9:
            best = max(best, ratio)
    return best


def own_address_likely(recipient_address: str, sender: str, header_from: str = "") -> bool:
    """The judgement for one recipient address (class not considered)."""
    display, from_addr = parseaddr(header_from)
    local = recipient_address.rpartition("@")[0]
    if not local or not sender.strip("<>"):
        return False
    s = score(local, sender, display)
    if from_addr and from_addr.lower() != sender.strip("<>").lower():
        s = max(s, score(local, from_addr, display))
    return s >= THRESHOLD


def mark(recipients: Sequence[Recipient], sender: str, header_from: str) -> list[Recipient]:
    """``recipients`` with ``own_address_likely`` set on the free-mail ones."""
    out = []
    for r in recipients:
        if r.klass is RecipientClass.FREEMAIL:
            likely = own_address_likely(r.address, sender, header_from)
            out.append(replace(r, own_address_likely=likely))
        else:
            out.append(r)
    return out
