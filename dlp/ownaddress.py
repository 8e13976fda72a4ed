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

THRESHOLD = 0.8
_SPLIT = re.compile(r"[^a-z]+")
_FOLDS = (
    ("shi", "si"),
    ("chi", "ti"),
    ("tsu", "tu"),
    ("sh", "sy"),
    ("ch", "ty"),
    ("fu", "hu"),
    ("ji", "zi"),
    ("j", "zy"),
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
    return out


def candidates(parts: Sequence[str]) -> tuple[set[str], set[str]]:
    """(single parts, combinations).  Only a combination counts when found inside
    the local part: a family name alone is shared by others (hanako.yamada is not
    taro.yamada)."""
    names = [p for p in parts if len(p) >= 2]
    initials = {p[0] for p in parts}
    single = {fold(p) for p in names if len(p) >= 3}
    out = {fold("".join(parts))}
    for a in names:
        for b in names:
            if a != b:
                out.add(fold(a + b))
        for i in initials:
            if i != a[0] or len(names) == 1:
                out.add(fold(i + a))
                out.add(fold(a + i))
    return {c for c in single if len(c) >= 3}, {c for c in out if len(c) >= 3} - single


def score(recipient_local: str, sender: str, display_name: str = "") -> float:
    """0..1: how much ``recipient_local`` looks like the sender's own name."""
    r = fold(recipient_local)
    if len(r) < 3:
        return 0.0
    single, combined = candidates(name_parts(sender, display_name))
    best = 0.0
    for c in combined:
        if len(c) >= 6 and c in r:
            best = max(best, 0.95)
        best = max(best, Levenshtein.ratio(r, c))
    for c in single:
        best = max(best, Levenshtein.ratio(r, c))
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
