"""Doppelgänger recipient domains: is this domain one of ours, or made to look like it?

Pure: no I/O at call time.  The Public Suffix List is the snapshot bundled in
``tldextract`` (loaded once, never fetched, never cached to disk), the
homoglyph table comes from ``dlp.detect.confusables``.

``ProtectedSet`` holds the domains worth protecting (own, partners, the built-in
list of mail providers people mistype most in Japan) together with the indexes
that make a query cost a few dictionary look-ups instead of a loop over every
protected domain: exact label, confusable skeleton, "one dot removed" variants
and a deletion neighbourhood (SymSpell-style) of each brand label (of each
half of a long label, for a budget of two edits).  ``check``
then answers ``trusted`` / ``external`` / ``lookalike``.

The comparison happens on the *registrable label* (``exp`` in ``exp.co.jp``):
plain edit distance over the whole domain misses ``exp.com`` for ``exp.co.jp``
(three edits) and flags unrelated short domains, so every technique looks at
the part of the name it is about.  Techniques, in the order they are tried:

``hyphen_for_dot``  ``exp-co.jp``            a dot written as a hyphen
``dot_extra``       ``gm.ail.com``           one dot too many
``dot_missing``     ``expco.jp``             one dot left out
``prefix``          ``exp.co.jp.com``        the whole protected domain, then more
``homoglyph``       ``gmаil.com``, ``grnail.com``  same confusable skeleton (UTS #39)
``suffix_typo``     ``gmail.cm``, ``exp.co.jq``    same label, suffix one edit away
``suffix_swap``     ``exp.com``, ``exp.ne.jp``     same label, another public suffix
``transposition``   ``gmial.com``            two neighbouring letters swapped
``bitflip``         ``gmaml.com``            one character one bit away
``edit_distance``   ``gmai.com``             Damerau–Levenshtein within budget
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import idna
import Levenshtein
import tldextract
from rapidfuzz.distance import OSA

from dlp.detect.confusables import loose, loose_of_skeleton, skeleton
from dlp.detect.lookalike_explain import Explanation, explain
from dlp.model import DomainVerdict

TRUSTED = "trusted"
EXTERNAL = "external"
LOOKALIKE = "lookalike"

OWN = "own"
PARTNER = "partner"
BUILTIN = "builtin"

# The mail domains people in Japan mistype most: big free-mail services and the
# carriers' mobile mail.  Protected against lookalikes when
# [domains] builtin_protected is on; they are never *trusted*.
BUILTIN_PROTECTED: tuple[str, ...] = (
    "gmail.com",
    "googlemail.com",
    "yahoo.co.jp",
    "ymail.ne.jp",
    "icloud.com",
    "outlook.com",
    "outlook.jp",
    "hotmail.com",
    "hotmail.co.jp",
    "docomo.ne.jp",
    "ezweb.ne.jp",
    "au.com",
    "auone.jp",
    "softbank.ne.jp",
    "i.softbank.jp",
    "ymobile.ne.jp",
    "uqmobile.jp",
    "nifty.com",
    "biglobe.ne.jp",
    "so-net.ne.jp",
    "plala.or.jp",
    "ocn.ne.jp",
)

# Real mail services whose names sit next to a built-in protected one (yahoo.com
# is one "suffix swap" away from yahoo.co.jp, mail.com one letter from
# gmail.com).  Mail to them is ordinary external mail: they are exempt from the
# *built-in* protection only, never from the organisation's own and partner
# domains.  See docs/domains.md, "Collisions".
BUILTIN_KNOWN: tuple[str, ...] = (
    "yahoo.com",
    "ymail.com",
    "mail.com",
    "live.com",
    "live.jp",
    "msn.com",
    "me.com",
    "mac.com",
    "aol.com",
    "gmx.com",
    "hotmail.co.uk",
    # The providers' own corporate domains (a review of 3 Dec 2026).  Not
    # cloud.com, ai.com or kcn.ne.jp: real, but what a slip on icloud.com, au.com
    # or ocn.ne.jp gives; an organisation that writes to one lists it under
    # [freemail] or [external].
    "nifty.co.jp",
    "biglobe.co.jp",
    "softbank.co.jp",
    # The same providers' national services: the brand under another country's
    # suffix is the provider itself, not a suffix swap of yahoo.co.jp/outlook.jp.
    # Those of the countries most foreign residents of Japan, and the parents city
    # halls and schools write to, come from (Brazil, Vietnam, the Philippines,
    # Thailand, Indonesia, Peru ...: a review of 3 Dec 2026 found them refused).
    *(f"yahoo.{cc}" for cc in ("co.uk", "fr", "de", "it", "es", "ca", "com.au", "co.in",
                               "com.tw", "com.hk", "com.sg", "com.br", "com.mx", "co.nz",
                               "com.vn", "com.ph", "co.th", "co.id", "com.my", "com.ar",
                               "com.pe", "cl", "com.co", "co.kr", "com.cn")),
    *(f"hotmail.{cc}" for cc in ("fr", "de", "it", "es", "be", "nl", "ca", "com.br",
                                 "co.th", "com.ar", "cl", "com.tw", "co.kr", "com.au")),
    *(f"outlook.{cc}" for cc in ("fr", "de", "it", "es", "kr", "com.au", "co.uk", "com.br",
                                 "com.vn", "com.ar", "cl", "co.th", "co.id", "ph", "my",
                                 "sg", "in", "com.tw")),
    *(f"live.{cc}" for cc in ("co.uk", "fr", "de", "it", "nl", "ca", "com.mx", "com.ar",
                              "cl", "com.pe", "com.au")),
    "email.com",  # mail.com's service, one letter from gmail.com
    "yahoo-corp.jp",  # Yahoo Japan's corporate domain
)  # fmt: skip

# Mail and hosting services where anyone can sign up for a name of their own under
# the service's domain: a Microsoft 365 trial tenant (mizuhobank.onmicrosoft.com) or a
# rental server's account (mhlw.sakura.ne.jp) is a working mail domain in minutes.
# A protected name as such a tenant is a lookalike (technique ``hosted``).
HOSTED_TENANT_DOMAINS: frozenset[str] = frozenset(
    {
        "onmicrosoft.com",  # Microsoft 365 / Exchange Online tenants
        "sakura.ne.jp",  # さくらのレンタルサーバ
        "xsrv.jp",  # エックスサーバー
        "lolipop.jp",  # ロリポップ！
        "heteml.net",  # ヘテムル
        "coreserver.jp",  # コアサーバー
    }
)

# Second-level and municipal labels of the Japanese namespace, and generic
# words of other registries: as a registrable label they name a kind of
# organisation, not an organisation, so they are never fuzzy-matched as brands
# (``pref.osaka.jp`` must not look like ``pref.kyoto.jp``).
GENERIC_LABELS: frozenset[str] = frozenset(
    {
        "ac", "ad", "co", "ed", "go", "gr", "lg", "ne", "or",
        "pref", "city", "town", "vill", "metro",
        "com", "net", "org", "edu", "gov", "mil", "int", "info", "biz",
    }
)  # fmt: skip

# Labels that make up public suffixes people type (second-level Japanese
# labels, generic top levels): a registrable label followed only by these is
# a suffix game (exp.co.com, exp.jp.net, exp.com.jp), and fused together
# (cojp, gojp, comjp) they are a suffix merged into a label.
SUFFIX_TOKENS: frozenset[str] = frozenset(
    {
        "ac", "ad", "co", "ed", "go", "gr", "lg", "ne", "or",
        "jp", "com", "net", "org", "info", "biz", "edu", "gov", "int",
    }
)  # fmt: skip
_FUSE_TOKENS = ("ac", "ad", "co", "ed", "go", "gr", "lg", "ne", "or", "jp", "com", "net", "org")
FUSED_TOKENS: frozenset[str] = frozenset(
    a + b + c for a in _FUSE_TOKENS for b in ("", *_FUSE_TOKENS) for c in ("", *_FUSE_TOKENS)
)
# The first label of a Japanese geographic/government name (pref.kanagawa.jp,
# city.yokohama.lg.jp): generic on its own, but part of what a person types.
GEO_PREFIXES: frozenset[str] = frozenset({"pref", "city", "town", "vill", "metro"})
# Suffixes whose registrations are restricted to Japanese public bodies (JPRS
# rules for LG.JP and the geographic type JP domains): the same name under
# another of them is the same local government, not an attacker.
RESTRICTED_GEO_SUFFIXES: frozenset[str] = frozenset({"jp", "lg.jp"})

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"), None)
_DOTS = str.maketrans({"。": ".", "．": ".", "｡": "."})
_ASCII_HOST_RE = re.compile(r"[a-z0-9.-]+")

# Bundled PSL snapshot only: no URLs to fetch, no disk cache.  ICANN section
# only (include_psl_private_domains=False): mail domains are registered under
# ICANN suffixes, and with private suffixes "exp.co.jp.com" would become its
# own registrable domain under CentralNic's "jp.com" instead of a prefix trick.
_PSL = tldextract.TLDExtract(
    suffix_list_urls=(),
    cache_dir=None,
    fallback_to_snapshot=True,
    include_psl_private_domains=False,
)


def budget(label: str) -> int:
    """Edits allowed between a protected brand label and a candidate.

    Three letters or fewer: none (``au``, ``ocn`` would otherwise match half
    the internet); 4–8: one; 9 or more: two.
    """
    n = len(label)
    if n <= 3:
        return 0
    if n <= 8:
        return 1
    return 2


# ---------------------------------------------------------------------------
# Normalisation


@dataclass(frozen=True, slots=True)
class Name:
    """A domain after normalisation."""

    ascii: str
    """A-label form, e.g. ``xn--gmil-63d.com``: what is shown and looked up."""
    text: str
    """U-label form, e.g. ``gmаil.com``: what is compared."""
    label: str
    """Registrable label (U-label), ``exp`` in ``mail.exp.co.jp``; "" if none."""
    suffix: str
    """Public suffix (A-label), ``co.jp``; "" when the top-level label is unknown."""
    valid: bool = True
    problem: str = ""

    @property
    def registrable(self) -> str:
        """Registrable domain (A-label) or "" when there is none."""
        if not self.label or not self.suffix:
            return ""
        return f"{_to_ascii_label(self.label)}.{self.suffix}"

    @property
    def registrable_text(self) -> str:
        if not self.label or not self.suffix:
            return ""
        return f"{self.label}.{_to_text(self.suffix)}"

    @property
    def generic(self) -> bool:
        return self.label in GENERIC_LABELS


def domain_of(address: str) -> str:
    """The domain part of an address (``<a@b>`` and bare domains accepted)."""
    s = address.strip().strip("<>").strip()
    return s.rpartition("@")[2]


def _to_ascii_label(label: str) -> str:
    if label.isascii():
        return label
    try:
        return idna.encode(label, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return "xn--" + label.encode("punycode").decode("ascii")


def _to_text(domain: str) -> str:
    if "xn--" not in domain:
        return domain
    out = []
    for label in domain.split("."):
        if label.startswith("xn--"):
            try:
                label = idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                with contextlib.suppress(UnicodeError):
                    label = label[4:].encode("ascii").decode("punycode")
        out.append(label)
    return ".".join(out)


def normalise(raw: str) -> Name:
    """Lower-case, UTS-46 map (full width, ``。``), drop zero-width characters,
    decode punycode; never raises (an unusable name comes back ``valid=False``)."""
    s = domain_of(raw).translate(_ZERO_WIDTH).translate(_DOTS).strip().rstrip(".")
    if not s:
        return Name("", "", "", "", valid=False, problem="empty domain")
    if len(s) > 1024:  # no mail domain is this long; IDNA work would grow with it
        cut = s[:253].lower()
        return Name(cut, cut, "", "", valid=False, problem="not a valid domain name (too long)")
    lowered = s.lower()
    valid, problem = True, ""
    if _ASCII_HOST_RE.fullmatch(lowered) and "xn--" not in lowered and ".." not in lowered:
        ascii_form = lowered  # fast path: the common case needs no IDNA work
    else:
        try:
            ascii_form = idna.encode(s, uts46=True, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            # Still compare what we can (an underscore or a bad label should
            # not hide a lookalike), but say the name is not a valid host name.
            valid, problem = False, f"not a valid domain name ({exc})"
            mapped = unicodedata.normalize("NFKC", s).lower()
            ascii_form = ".".join(_to_ascii_label(lab) for lab in mapped.split("."))
    ascii_labels = ascii_form.split(".")
    if "" in ascii_labels:
        return Name(ascii_form, ascii_form, "", "", valid=False, problem="empty label")
    if "xn--" in ascii_form:
        text = _to_text(ascii_form)
        text_labels = text.split(".")
    else:
        text, text_labels = ascii_form, ascii_labels
    k = _suffix_labels(text_labels) if len(text_labels) == len(ascii_labels) else 0
    suffix = ".".join(ascii_labels[-k:]) if k else ""
    label = text_labels[-k - 1] if k and k < len(text_labels) else ""
    if not suffix and valid:
        valid, problem = False, "no known public suffix"
    return Name(ascii_form, text, label, suffix, valid, problem)


# The bundled snapshot's ICANN rules as sets: a look-up per label instead of
# tldextract's general-purpose parse (this runs for every recipient).
_PSL_EXACT: frozenset[str] = frozenset(r for r in _PSL.tlds if r[0] not in "*!")
_PSL_WILD: frozenset[str] = frozenset(r[2:] for r in _PSL.tlds if r.startswith("*."))
_PSL_EXCEPT: frozenset[str] = frozenset(r[1:] for r in _PSL.tlds if r.startswith("!"))


def _suffix_labels(labels: list[str]) -> int:
    """How many labels on the right are the public suffix (0: unknown top
    level), by the PSL algorithm: the longest matching rule, ``*`` matching one
    label, an exception rule ``!`` giving back its leftmost label."""
    best = 0
    for k in range(1, min(len(labels), 5) + 1):  # no ICANN rule has more than 4 labels
        name = ".".join(labels[-k:])
        if name in _PSL_EXCEPT:
            return k - 1
        if name in _PSL_EXACT or (k > 1 and ".".join(labels[-k + 1 :]) in _PSL_WILD):
            best = k
    return best


def _split_generic(text: str) -> tuple[str, str]:
    """(stem, generic suffix): ``city.yokohama`` + ``lg.jp``, ``pref.kanagawa`` + ``jp``,
    ``exp`` + ``co.jp``.  The generic suffix is the longest tail made of
    SUFFIX_TOKENS (and the top-level label); the stem is what a person types
    before it, generic first label included."""
    labels = text.split(".")
    i = len(labels) - 1
    while i > 1 and labels[i - 1] in SUFFIX_TOKENS:
        i -= 1
    return ".".join(labels[:i]), ".".join(labels[i:])


def _flat(text: str) -> str:
    return text.replace(".", "").replace("-", "")


def _geo_names() -> frozenset[str]:
    """Place names of the Japanese geographic namespace, from the bundled PSL
    (kanagawa.jp, atsugi.kanagawa.jp): a name under another real place is
    another local government, not a typo."""
    out: set[str] = set()
    for suffix in _PSL.tlds:
        labels = suffix.split(".")
        if labels[-1] == "jp" and len(labels) >= 2:
            out.update(lab for lab in labels[:-1] if lab != "*" and lab not in SUFFIX_TOKENS)
    return frozenset(out)


GEO_NAMES: frozenset[str] = _geo_names()
# Prefectures and designated cities: the X of a two-level X.jp geographic suffix.
GEO_PREFECTURES: frozenset[str] = frozenset(
    s[:-3] for s in _PSL.tlds if s.endswith(".jp") and s.count(".") == 1 and s.isascii()
)


def _parents(domain: str) -> Iterator[str]:
    """``a.b.c.jp``, ``b.c.jp``, ``c.jp``, ``jp``."""
    labels = domain.split(".")
    for i in range(len(labels)):
        yield ".".join(labels[i:])


# ---------------------------------------------------------------------------
# The protected set and its indexes


@dataclass(frozen=True, slots=True)
class Entry:
    domain: str  # A-label form as listed
    text: str  # U-label form
    kind: str  # own | partner | builtin
    label: str  # registrable label (U-label)
    suffix: str  # public suffix (A-label)
    registrable: str
    stem: str = ""  # what is typed before the generic suffix: exp, city.yokohama
    gsuffix: str = ""  # the generic suffix: co.jp, lg.jp, jp

    @property
    def rank(self) -> int:
        return _KIND_RANK[self.kind]


_KIND_RANK = {OWN: 0, PARTNER: 1, BUILTIN: 2}


def _without_prefecture(entry: Entry) -> Entry | None:
    """``city.kawagoe.saitama.jp`` as people also type it, ``city.kawagoe`` + ``jp``:
    the municipal names of the geographic type (a city, town or village under its
    prefecture, ``*.saitama.jp``) are long, and the prefecture is what a sender
    leaves out.  The entry stays the listed domain; only its stem is the short one."""
    parts = entry.stem.split(".")
    if len(parts) != 3 or parts[0] not in GEO_PREFIXES or parts[2] not in GEO_PREFECTURES:
        return None
    return replace(entry, stem=".".join(parts[:2]), gsuffix=f"{parts[2]}.{entry.gsuffix}")


def _deletes(word: str) -> list[str]:
    """The word and every string one deletion away (duplicates are harmless)."""
    return [word, *(word[:i] + word[i + 1 :] for i in range(len(word)))]


@dataclass(slots=True)
class ProtectedSet:
    """Own, partner and built-in protected domains, indexed for fast queries.

    Build it once per allowlist (``ProtectedSet.build``); it is then only read.
    """

    trusted: dict[str, Entry] = field(default_factory=dict)
    """own + partner domains by A-label (a subdomain of one is trusted too)."""
    builtin: dict[str, Entry] = field(default_factory=dict)
    known: frozenset[str] = frozenset()
    """Registrable domains exempt from built-in protection (BUILTIN_KNOWN)."""
    external: frozenset[str] = frozenset()
    """Domains the administrator declared external: never a lookalike."""
    entries: list[Entry] = field(default_factory=list)
    by_domain: dict[str, list[Entry]] = field(default_factory=dict)
    by_registrable: dict[str, list[Entry]] = field(default_factory=dict)
    by_label: dict[str, list[Entry]] = field(default_factory=dict)
    by_skeleton: dict[str, list[Entry]] = field(default_factory=dict)
    by_loose: dict[str, list[Entry]] = field(default_factory=dict)
    """Coarser skeleton (``confusables.loose``): several homoglyphs at once."""
    by_dot_missing: dict[str, list[Entry]] = field(default_factory=dict)
    by_flat: dict[str, list[Entry]] = field(default_factory=dict)
    """Listed name with every hyphen read as a dot (so-net.ne.jp -> so.net.ne.jp)."""
    near1: dict[str, list[str]] = field(default_factory=dict)
    """Deletion neighbourhood (<= 1) of brand labels with an edit budget of 1."""
    near2: dict[tuple[int, int], dict[str, list[str]]] = field(default_factory=dict)
    """Labels with a budget of 2 by (length, part number), then by the text of
    that part: see ``_parts``."""
    lengths1: set[int] = field(default_factory=set)
    near1_lengths: set[int] = field(default_factory=set)
    """Query lengths that can be one edit from a budget-1 label."""
    near2_parts: dict[
        int, tuple[int, int, dict[str, list[str]], dict[str, list[str]], dict[str, list[str]]]
    ] = field(default_factory=dict)
    """Per length of budget-2 labels: the two cuts and the three part indexes."""
    lengths2: set[int] = field(default_factory=set)
    skeletons: dict[str, str] = field(default_factory=dict)
    by_stem: dict[str, list[Entry]] = field(default_factory=dict)
    """Stem (city.yokohama, exp, so-net) -> entries: suffix games keep it."""
    by_stem_flat: dict[str, list[Entry]] = field(default_factory=dict)
    """Stem without dots and hyphens (cityyokohama): merged names start with it."""
    by_stem_skeleton: dict[str, list[Entry]] = field(default_factory=dict)
    """Skeleton of the stem (ехр, rnhlw -> exp, mhlw): a look-alike letter *and*
    another suffix (ехр.com)."""
    stem_flat_lengths: set[int] = field(default_factory=set)
    stem_prefixes: set[str] = field(default_factory=set)
    """The first 2-5 letters of every flat stem: most names leave _merged early."""
    near_shift: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    """5-8 letter labels by (i, the label without its letters i and i+1)."""
    near_short: dict[str, list[str]] = field(default_factory=dict)
    """Deletion neighbourhood of 2-3 letter brand labels (stricter rule)."""
    near_pair: dict[str, list[str]] = field(default_factory=dict)
    """Sorted letters (one left out) of 5-8 letter labels: two neighbour typos."""
    geo: dict[str, list[Entry]] = field(default_factory=dict)
    """Flat stems of geographic entries (prefkanagawa) indexed like labels."""
    fused_halves: dict[int, dict[str, list[tuple[str, Entry]]]] = field(default_factory=dict)
    """Fused names (expcojp, cityyokohamalg) by (length, first or last half):
    one edit leaves one half intact (pigeonhole), so merge-plus-one-letter is
    two look-ups, not a neighbourhood of every fused form."""
    """Flat stems of geographic entries (prefkanagawa) indexed like labels."""

    @classmethod
    def build(
        cls,
        own: Iterable[str] = (),
        partners: Iterable[str] = (),
        builtin: bool | Iterable[str] = True,
        external: Iterable[str] = (),
        known: Iterable[str] = (),
    ) -> ProtectedSet:
        """``known``: more real mail services (the free-mail list) exempt, like
        BUILTIN_KNOWN, from the built-in protection: odn.ne.jp is a real ISP one
        letter from ocn.ne.jp, y-mobile.ne.jp the carrier's other domain."""
        ps = cls()
        if builtin is True:
            builtin_list: Iterable[str] = BUILTIN_PROTECTED
        elif builtin is False:
            builtin_list = ()
        else:
            builtin_list = builtin
        if builtin is not False:
            registrable = (normalise(d).registrable for d in (*BUILTIN_KNOWN, *known))
            ps.known = frozenset(r for r in registrable if r)
        ps.external = frozenset(normalise(d).ascii for d in external)
        for kind, domains in ((OWN, own), (PARTNER, partners), (BUILTIN, builtin_list)):
            for raw in domains:
                ps._add(kind, raw)
        return ps

    def __len__(self) -> int:
        return len(self.entries)

    def _add(self, kind: str, raw: str) -> None:
        name = normalise(raw)
        if not name.ascii:
            return
        entry = Entry(
            domain=name.ascii,
            text=name.text,
            kind=kind,
            label=name.label,
            suffix=name.suffix,
            registrable=name.registrable,
            stem=_split_generic(name.text)[0],
            gsuffix=_split_generic(name.text)[1],
        )
        if kind == BUILTIN:
            if entry.domain in self.trusted:
                return
            self.builtin.setdefault(entry.domain, entry)
        else:
            self.trusted.setdefault(entry.domain, entry)
        self.entries.append(entry)
        self.by_domain.setdefault(entry.domain, []).append(entry)
        if entry.registrable:
            self.by_registrable.setdefault(entry.registrable, []).append(entry)
        self.by_skeleton.setdefault(skeleton(entry.text), []).append(entry)
        self.by_loose.setdefault(loose(entry.text), []).append(entry)
        self.by_flat.setdefault(entry.text.replace("-", "."), []).append(entry)
        # "One dot left out" variants of the listed name and of its
        # registrable part (exp.co.jp -> expco.jp, exp.cojp; i.softbank.jp ->
        # isoftbank.jp, softbankjp).
        for whole in {name.registrable_text or entry.text, entry.text}:
            for i, ch in enumerate(whole):
                if ch == ".":
                    variant = whole[:i] + whole[i + 1 :]
                    self.by_dot_missing.setdefault(variant, []).append(entry)
        if entry.stem:
            self._index_stem(entry)
            short = _without_prefecture(entry)
            if short is not None:
                self._index_stem(short)
        label = entry.label
        if not label or label in GENERIC_LABELS:
            return
        bucket = self.by_label.setdefault(label, [])
        bucket.append(entry)
        if len(bucket) > 1:
            return  # label already in the deletion index
        if 2 <= len(label) <= 3:
            for variant in _deletes(label):
                self.near_short.setdefault(variant, []).append(label)
        self._index_fuzzy(label)

    def _index_stem(self, entry: Entry) -> None:
        """What a person types before the suffix, for the suffix games, merged
        names and the geographic slips."""
        self.by_stem.setdefault(entry.stem, []).append(entry)
        self.by_stem_skeleton.setdefault(skeleton(entry.stem), []).append(entry)
        flat = _flat(entry.stem)
        if len(flat) >= 2:
            self.by_stem_flat.setdefault(flat, []).append(entry)
            self.stem_flat_lengths.add(len(flat))
            self.stem_prefixes.update(flat[:k] for k in range(2, _PREFIX_MAX + 1))
        tokens = entry.gsuffix.split(".")
        forms = {flat + "".join(tokens[:k]) for k in range(1, len(tokens) + 1)}
        if flat != entry.stem:
            forms.add(flat)
        for form in forms:
            if len(form) >= 6:
                h = len(form) // 2
                halves = self.fused_halves.setdefault(len(form), {})
                for half in ("<" + form[:h], ">" + form[h:]):
                    halves.setdefault(half, []).append((form, entry))
        first = entry.stem.split(".", 1)[0]
        if "." in entry.stem and first in GEO_PREFIXES and len(flat) >= 6:
            if flat not in self.geo:
                self._index_fuzzy(flat)
            self.geo.setdefault(flat, []).append(entry)

    def _index_fuzzy(self, label: str) -> None:
        b = budget(label)
        if b == 0:
            return
        skel = loose(label)
        self.skeletons[label] = skel
        if 5 <= len(label) <= 8 and label.isascii():
            # A swap keeps the letters, a neighbour typo changes or adds one:
            # index the sorted letters with one left out (and all of them).
            for key in _letter_keys(label, with_whole=True):
                self.near_pair.setdefault(key, []).append(label)
        if 5 <= len(label) <= 8 and label.isascii():
            # A hand shifted for two strokes (jptmail for hotmail, gmaji for
            # gmail): two neighbouring letters changed, the rest in place.
            for i in range(len(label) - 1):
                self.near_shift.setdefault((i, label[:i] + label[i + 2 :]), []).append(label)
        # The label and its skeleton both go in, so "one edit away after
        # homoglyph folding" (øutlook, gnnail) is found by the same look-up.
        for form in {label, skel}:
            if b == 1:
                self.lengths1.add(len(form))
                self.near1_lengths.update((len(form) - 1, len(form), len(form) + 1))
                for variant in _deletes(form):
                    self.near1.setdefault(variant, []).append(label)
                continue
            # Budget 2: a full two-deletion neighbourhood costs ~n²/2 keys per
            # label (gigabytes at 100,000 labels).  Pigeonhole instead: cut the
            # label in three parts; two edits leave one part as it was, at most
            # two places off (see _parts for the transpositions).
            n = len(form)
            self.lengths2.add(n)
            for part, text in enumerate(_parts(form)):
                self.near2.setdefault((n, part), {}).setdefault(text, []).append(label)
            if n not in self.near2_parts:
                i, j = _cuts(n)
                self.near2_parts[n] = (
                    i,
                    j,
                    self.near2[n, 0],
                    self.near2[n, 1],
                    self.near2[n, 2],
                )


def _cuts(n: int) -> tuple[int, int]:
    a = n // 3
    return a, a + (n - a) // 2


def _parts(form: str) -> tuple[str, str, str]:
    """The three parts of a 9+ letter label.  Two edits touch at most two of
    them, so one is found as it is, at most two places off (from the start
    for the first, from the end for the last), unless an edit is a swap
    across a cut: ``_near_candidates`` also undoes a swap at each cut."""
    i, j = _cuts(len(form))
    return form[:i], form[i:j], form[j:]


def _near_candidates(form: str, ps: ProtectedSet) -> set[str]:
    """Protected labels that may be within their edit budget of ``form`` (a
    superset: the caller verifies with OSA)."""
    out: set[str] = set()
    n = len(form)
    if n in ps.near1_lengths:
        near1 = ps.near1
        for v in _deletes(form):
            found = near1.get(v)
            if found:
                out.update(found)
    for size in (n - 2, n - 1, n, n + 1, n + 2):
        part = ps.near2_parts.get(size)
        if part is None:
            continue
        i, j, first, middle, last = part
        tail = n - (size - j)  # where the last part starts in form
        keys = (
            (first, form[:i]),
            (last, form[tail:]),
            # the middle part alone intact: one edit on each side of it, so it
            # moved by at most one place
            (middle, form[i - 1 : j - 1]),
            (middle, form[i:j]),
            (middle, form[i + 1 : j + 1]),
        )
        for index, key in keys:
            found = index.get(key)
            if found:
                out.update(found)
        if i < n and tail >= 1:
            # a swap across the first cut (then only the first part less its
            # last letter is intact), or across the second cut (the last part
            # less its first letter): undo it and look the whole part up
            found = first.get(form[: i - 1] + form[i])
            if found:
                out.update(found)
            found = last.get(form[tail - 1] + form[tail + 1 :])
            if found:
                out.update(found)
    return out


# ---------------------------------------------------------------------------
# The check


@dataclass(frozen=True, slots=True)
class _Hit:
    entry: Entry
    technique: str
    compared: str  # the candidate text that was compared with entry.text


def _best(hits: Iterable[_Hit]) -> _Hit | None:
    best: _Hit | None = None
    best_key: tuple[int, int, str] | None = None
    for hit in hits:
        key = (hit.entry.rank, OSA.distance(hit.compared, hit.entry.text), hit.entry.domain)
        if best_key is None or key < best_key:
            best, best_key = hit, key
    return best


def _allowed(entry: Entry, name: Name, ps: ProtectedSet) -> bool:
    """Whether ``entry`` may be the thing ``name`` imitates."""
    if entry.registrable and entry.registrable == name.registrable:
        # same registrant: a different host of the same organisation, unless
        # the public body's type word is mistyped (ctiy.yokohama.lg.jp)
        return _geo_type_slip(entry, name)
    return not (entry.kind == BUILTIN and name.registrable in ps.known)


def _geo_type_slip(entry: Entry, name: Name) -> bool:
    """``ctiy.yokohama.lg.jp`` for ``city.yokohama.lg.jp``: the Public Suffix
    List makes both one registrable domain (yokohama.lg.jp), but LG.JP names
    are registered with their type word (city, pref, town, vill), so a name
    whose type word is not one is a mistyped address, not the same body's host."""
    wanted = entry.text.split(".")
    got = name.text.split(".")
    k = len(wanted)
    return (
        wanted[0] in GEO_PREFIXES
        and len(got) == k
        and got[1:] == wanted[1:]
        and got[0] not in GEO_PREFIXES
    )


def _structural(name: Name, ps: ProtectedSet) -> _Hit | None:
    text = name.text
    hits: list[_Hit] = []
    # hyphen_for_dot: exp-co.jp, mail.exp-co.jp (hyphens read as dots give a listed name)
    if "-" in text:
        for parent in _parents(text):
            if "-" not in parent:
                break
            for e in ps.by_flat.get(parent.replace("-", "."), ()):
                if e.text != parent and _allowed(e, name, ps):
                    hits.append(_Hit(e, "hyphen_for_dot", parent))
            if hits:
                return _best(hits)
    # dot_extra: gm.ail.com (remove one dot and it is protected)
    dots = [i for i, ch in enumerate(text) if ch == "."]
    if len(dots) >= 2:
        for i in dots[:-1]:
            variant = text[:i] + text[i + 1 :]
            for parent in _parents(variant):
                if parent.count(".") < 1:
                    break
                for e in ps.by_domain.get(_ascii_of(parent), ()):
                    if _allowed(e, name, ps) and not _is_sub(text, e.text):
                        hits.append(_Hit(e, "dot_extra", text))
    if hits:
        return _best(hits)
    # dot_missing: expco.jp (protected with one dot left out)
    for parent in _parents(text):
        if "." not in parent:
            break
        for e in ps.by_dot_missing.get(parent, ()):
            if _allowed(e, name, ps):
                hits.append(_Hit(e, "dot_missing", parent))
        if hits:
            return _best(hits)
    # prefix: exp.co.jp.com, gmail.com.evil.example, exp-co-jp.com, exp.co.jp-mail.net
    flat = text.replace("-", ".")
    for i, ch in enumerate(flat):
        if ch == "." and "." in flat[:i]:
            for e in ps.by_flat.get(flat[:i], ()):
                if _allowed(e, name, ps):
                    hits.append(_Hit(e, "prefix", text))
    return _best(hits)


def _is_sub(domain: str, parent: str) -> bool:
    return domain == parent or domain.endswith("." + parent)


def _ascii_of(text: str) -> str:
    if text.isascii():
        return text
    return ".".join(_to_ascii_label(lab) for lab in text.split("."))


def _homoglyph(name: Name, ps: ProtectedSet) -> _Hit | None:
    # Folds never cross a dot, so each label is folded once and the parents
    # are joined from the folded labels.
    labels = name.text.split(".")
    hits: list[_Hit] = []
    # one fold pass (skeleton), then several look-alikes at once (nnh1vv.go.jp,
    # v-t0kyo.ac.jp, u-tokɏø.ac.jp): the coarser fold, still for the whole name
    skeletons = [skeleton(label) for label in labels]
    for index, folded in (
        (ps.by_skeleton, skeletons),
        (ps.by_loose, [loose_of_skeleton(sk) for sk in skeletons]),
    ):
        for i in range(len(labels) - 1):
            for e in index.get(".".join(folded[i:]), ()):
                parent = ".".join(labels[i:])
                if e.text != parent and _allowed(e, name, ps):
                    hits.append(_Hit(e, "homoglyph", parent))
            if hits:
                return _best(hits)
    return None


def _suffix_variants(name: Name, ps: ProtectedSet) -> _Hit | None:
    hits: list[_Hit] = []
    if name.suffix and name.label and name.label not in GENERIC_LABELS:
        typed = name.text[: -len(_to_text(name.suffix)) - 1]
        for e in ps.by_label.get(name.label, ()):
            if e.suffix == name.suffix or not _allowed(e, name, ps):
                continue
            technique = "suffix_typo" if OSA.distance(name.suffix, e.suffix) <= 1 else "suffix_swap"
            hits.append(_Hit(e, technique, name.registrable_text))
        if hits:
            return _place_or_body(hits, typed, name, ps)
    # A protected brand label followed by something one edit from its suffix,
    # wherever it sits: exp.co.jq (unknown top level), example.lgq.jp and
    # example.l.jp (the typo made the suffix look like a registrable label).
    labels = name.text.split(".")
    for i in range(len(labels) - 1):
        rest = ".".join(labels[i + 1 :])
        for e in ps.by_label.get(labels[i], ()):
            if e.suffix == rest:
                continue
            if (
                OSA.distance(_ascii_of(rest), e.suffix, score_cutoff=1) <= 1
                or OSA.distance(skeleton(rest), skeleton(e.suffix), score_cutoff=1) <= 1
            ) and _allowed(e, name, ps):
                hits.append(_Hit(e, "suffix_typo", ".".join(labels[i:])))
        if hits:
            return _place_or_body(hits, ".".join(labels[: i + 1]), name, ps)
    return None


def _place_or_body(hits: list[_Hit], typed: str, name: Name, ps: ProtectedSet) -> _Hit | None:
    """The best of ``hits``, where the registrable label of a public body is only a
    place name: saitama in pref.saitama.lg.jp.  city.kawagoe.saitama.com holds it, but
    is the own city's address under another suffix (``_suffix_game``), not the
    prefecture's; a name that keeps the body's type word (pref.saitama.com) or
    nothing else (saitama.com) stays the prefecture's."""
    kept = [h for h in hits if _keeps_stem(typed, h.entry)]
    if len(kept) < len(hits) and not kept:
        game = _suffix_game(name, ps)
        if game is not None:
            return game
    return _best(kept or hits)


def _keeps_stem(typed: str, e: Entry) -> bool:
    """``typed`` (what comes before the suffix) keeps what a person types of ``e``:
    its registrable label for a brand, its type word and place for a public body
    (pref.saitama), or holds nothing before the label (saitama.com)."""
    if e.stem.split(".", 1)[0] not in GEO_PREFIXES or "." not in typed:
        return True
    return typed == e.stem or typed.endswith("." + e.stem)


def _edit_kind(a: str, b: str) -> str:
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        ):
            return "transposition"
        if len(diff) == 1 and (ord(a[diff[0]]) ^ ord(b[diff[0]])).bit_count() == 1:
            return "bitflip"
    return "edit_distance"


def _fuzzy_label(name: Name, ps: ProtectedSet) -> _Hit | None:
    label = name.label
    if not label or not name.suffix or label in GENERIC_LABELS or len(label) < 3:
        return None
    # Homoglyph-plus-an-edit is looked for only in non-ASCII labels (øutlook,
    # ԍmaıl): for ASCII the folds make too much alike (tmall would be one edit
    # from gmail's skeleton gmall).  ASCII homoglyphs need an exact skeleton.
    skel = loose(label) if not label.isascii() else label
    candidates: set[str] = set()
    for form in {label, skel}:
        candidates |= _near_candidates(form, ps)
    if ps.near_pair and 5 <= len(label) <= 9 and label.isascii():
        candidates.update(_pair_candidates(label, ps))
    n = len(label)
    if ps.near_shift and 5 <= n <= 8 and label.isascii():
        for i in range(n - 1):
            found = ps.near_shift.get((i, label[:i] + label[i + 2 :]))
            if found:
                candidates.update(found)
    candidates.discard(label)
    hits: list[_Hit] = []
    for cand in candidates:
        # only a protected label under the same suffix counts: look first, so
        # that candidates listed under other suffixes cost one look-up
        entries = [e for e in ps.by_label.get(cand, ()) if e.suffix == name.suffix]
        if not entries:
            continue
        b = budget(cand)
        if OSA.distance(label, cand, score_cutoff=b) <= b:
            if not _short_part_slip(label, cand):
                continue
            technique = _edit_kind(label, cand)
        elif skel != label and OSA.distance(skel, ps.skeletons[cand], score_cutoff=b) <= b:
            technique = "homoglyph"
        elif (
            b == 1
            and 5 <= len(cand) <= 8
            and OSA.distance(label, cand, score_cutoff=2) == 2
            and (
                _two_neighbour_typos(label, cand)
                or _two_neighbour_keys(label, cand)
                or _vowel_slips(label, cand)
            )
        ):
            technique = "double_typo"
        else:
            continue
        for e in entries:
            if _allowed(e, name, ps):
                hits.append(_Hit(e, technique, name.registrable_text))
    return _best(hits)


# ---------------------------------------------------------------------------
# Suffix games, merged names, short labels, two neighbour typos, geographic


def _rest_is_suffixish(rest: list[str]) -> bool:
    """Every label is a suffix token or fused tokens (co, jp, cojp, gojp); the
    last may be any top-level label (exp.co.uk)."""
    return bool(rest) and all(lab in FUSED_TOKENS or lab in SUFFIX_TOKENS for lab in rest[:-1])


def _restricted_twin(e: Entry, stem: str, rest: str) -> bool:
    """pref.kyoto.jp and pref.kyoto.lg.jp: the same public body under two
    namespaces only public bodies can register in."""
    return (stem.split(".", 1)[0] in GEO_PREFIXES or e.gsuffix == "lg.jp") and {
        rest,
        e.gsuffix,
    } <= RESTRICTED_GEO_SUFFIXES


def _suffix_game(name: Name, ps: ProtectedSet) -> _Hit | None:
    """The typed name kept, the suffix changed, doubled or nested: exp.co.com,
    exp.jp.net, exp.com.jp, city.yokohama.lg.com, mhlw.gojp.net — any label length."""
    labels = name.text.split(".")
    n = len(labels)
    hits: list[_Hit] = []
    for j in range(n - 1):
        for i in range(j, min(n - 1, j + 3)):
            rest = labels[i + 1 :]
            if not _rest_is_suffixish(rest):
                continue
            rest_s = ".".join(rest)
            typed = ".".join(labels[j : i + 1])
            for e, technique in _stems(typed, ps):
                if technique == "suffix_swap" and (
                    rest_s == e.gsuffix or _restricted_twin(e, e.stem, rest_s)
                ):
                    continue
                if _allowed(e, name, ps):
                    hits.append(_Hit(e, technique, ".".join(labels[j:])))
        if hits:
            return _best(hits)
    return None


def _stems(typed: str, ps: ProtectedSet) -> Iterator[tuple[Entry, str]]:
    """Protected entries whose stem ``typed`` is, with the technique that makes it so:
    the stem itself (``suffix_swap``), with hyphens for its dots
    (city.kawagoe-saitama.com), or a look-alike letter in it (ехр.com for exp.co.jp,
    rnhlw.com for mhlw.go.jp: ``homoglyph``, whatever the suffix)."""
    found = ps.by_stem.get(typed)
    if found:
        for e in found:
            yield e, "suffix_swap"
        return
    dotted = typed.replace("-", ".")
    if dotted != typed and dotted in ps.by_stem:
        for e in ps.by_stem[dotted]:
            yield e, "hyphen_for_dot"
        return
    for e in ps.by_stem_skeleton.get(skeleton(typed), ()):
        if e.stem != typed:
            yield e, "homoglyph"


def _own_fused(e: Entry) -> set[str]:
    tokens = e.gsuffix.split(".")
    return {"".join(tokens[a:b]) for a in range(len(tokens)) for b in range(a + 1, len(tokens) + 1)}


_PREFIX_MAX = 5
_FUSED_ENDS = frozenset(t[-2:] for t in FUSED_TOKENS)


def _merge_cuts(flat: str, ps: ProtectedSet) -> list[int]:
    """Where ``flat`` may split into a listed stem and a fused suffix, longest
    stem first: a stem must start with a listed prefix (checked up to five
    letters, which ends the search for most names after two or three
    look-ups), or the tail must be fused suffix tokens (merge plus one letter)."""
    n = len(flat)
    prefixes, lengths = ps.stem_prefixes, ps.stem_flat_lengths
    cuts: list[int] = []
    k = 2
    while k <= n and k <= _PREFIX_MAX and flat[:k] in prefixes:
        if k in lengths:
            cuts.append(k)
        k += 1
    if k > _PREFIX_MAX:  # a long listed prefix: any listed stem length may fit
        cuts.extend(j for j in range(k, n + 1) if j in lengths)
    if flat[-2:] in _FUSED_ENDS:
        cuts.extend(
            j for j in range(max(4, n - 9), n - 2) if flat[j:] in FUSED_TOKENS and j not in cuts
        )
    cuts.sort(reverse=True)
    return cuts


def _merged(name: Name, ps: ProtectedSet) -> _Hit | None:
    """The suffix (or the dots) fused into a label: expcojp.com, mhlwgo.com,
    cityyokohamalgjp.net, expco.net, plus one letter (expcojpp.com, gmajlcom.jp)."""
    labels = name.text.split(".")
    hits: list[_Hit] = []
    for idx in range(len(labels) - 1):
        flat = labels[idx].replace("-", "")
        if len(flat) > 63:
            continue
        n = len(flat)
        for k in _merge_cuts(flat, ps):
            head, tail = flat[:k], flat[k:]
            for e in ps.by_stem_flat.get(head, ()):
                stem_flat = _flat(e.stem)
                if not tail:
                    # cityyokohama.com: only a stem that had dots or hyphens is "merged"
                    ok = stem_flat != e.stem
                elif len(stem_flat) <= 3:
                    ok = tail in _own_fused(e) or (
                        len(tail) >= 3 and OSA.distance(tail, e.gsuffix.replace(".", "")) <= 1
                    )
                else:
                    ok = tail in FUSED_TOKENS or OSA.distance(tail, e.gsuffix.replace(".", "")) <= 1
                if ok and _allowed(e, name, ps) and ".".join(labels[idx:]) != e.text:
                    hits.append(_Hit(e, "merged", ".".join(labels[idx:])))
            if len(tail) >= 3 and tail in FUSED_TOKENS and len(head) >= 4:
                # merge plus one letter in the name: exbcojp.com is not listed, exp is short;
                # gmaii-com.jp, gmal.co.jp fused: one edit from a brand label
                found: set[str] = set()
                for v in _deletes(head):
                    found.update(ps.near1.get(v, ()))
                for cand in found:
                    if cand != head and OSA.distance(head, cand, score_cutoff=1) <= 1:
                        for e in ps.by_label.get(cand, ()):
                            if (
                                tail in _own_fused(e) or e.gsuffix.replace(".", "") == tail
                            ) and _allowed(e, name, ps):
                                hits.append(_Hit(e, "merged", ".".join(labels[idx:])))
        if hits:
            return _best(hits)
    # one edit anywhere in a fused name: cityyokohamag.com, zity.yokohama.lg.com
    for form in {_flat(".".join(labels[:-1])), labels[0].replace("-", "")}:
        n = len(form)
        if n < 5 or n > 63:
            continue
        for size in (n - 1, n, n + 1):
            halves = ps.fused_halves.get(size)
            if halves is None:
                continue
            h = size // 2
            for key in ("<" + form[:h], ">" + form[n - (size - h) :]):
                for fused, e in halves.get(key, ()):
                    if (
                        fused != form
                        and OSA.distance(form, fused, score_cutoff=1) <= 1
                        # dots and hyphens all kept: a plain edit of the name
                        # (the label rules judge it), not a merged one
                        and not (
                            name.text.endswith("." + e.gsuffix)
                            and name.text.count(".") == e.text.count(".")
                            and OSA.distance(
                                _flat(name.text[: -len(e.gsuffix) - 1]),
                                _flat(e.stem),
                                score_cutoff=1,
                            )
                            <= 1
                        )
                        and _allowed(e, name, ps)
                    ):
                        hits.append(_Hit(e, "merged", name.text))
    return _best(hits)


# QWERTY rows: a finger slips to a key next to the intended one.
_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard() -> dict[str, frozenset[str]]:
    pos = {ch: (r, c) for r, row in enumerate(_ROWS) for c, ch in enumerate(row)}
    out: dict[str, frozenset[str]] = {}
    for ch, (r, c) in pos.items():
        near = {
            o for o, (r2, c2) in pos.items() if o != ch and abs(r2 - r) <= 1 and -1 <= c2 - c <= 1
        }
        out[ch] = frozenset(near)
    return out


_KEYBOARD = _keyboard()
# Letters that look alike in a mail client's font (beyond the skeleton folds).
_VISUAL_PAIRS = ("o0", "l1", "il", "i1", "mn", "nh", "uv", "vy", "ce", "ao", "gq", "bd", "pq")
_VISUAL: dict[str, frozenset[str]] = {}
for _pair in _VISUAL_PAIRS:
    _VISUAL[_pair[0]] = _VISUAL.get(_pair[0], frozenset()) | {_pair[1]}
    _VISUAL[_pair[1]] = _VISUAL.get(_pair[1], frozenset()) | {_pair[0]}


def _near_chars(a: str, b: str) -> bool:
    return b in _KEYBOARD.get(a, ()) or b in _VISUAL.get(a, ())


def _two_neighbour_typos(candidate: str, brand: str) -> bool:
    """A swap plus one neighbour typo (gmial -> gmiak).  Two substitutions alone
    are not enough: tmall.com is two neighbour keys from gmail.com and real."""
    for a, b in ((brand, candidate), (candidate, brand)):
        for i in range(len(a) - 1):
            if a[i] == a[i + 1]:
                continue
            swapped = a[:i] + a[i + 1] + a[i] + a[i + 2 :]
            if OSA.distance(swapped, b, score_cutoff=1) == 1 and (
                _one_neighbour_typo(swapped, b) if a is brand else _one_neighbour_typo(b, swapped)
            ):
                return True
    return False


def _two_neighbour_keys(typed: str, brand: str) -> bool:
    """A hand shifted for two strokes: two letters in a row each replaced by a
    key next to it, on a 5-8 letter label (jptmail for hotmail, gmaji for
    gmail).  Two neighbour keys apart anywhere is not enough: tmall.com is
    that far from gmail.com, and a real shop."""
    if len(typed) != len(brand) or not 5 <= len(brand) <= 8:
        return False
    diff = [i for i in range(len(brand)) if typed[i] != brand[i]]
    return (
        len(diff) == 2
        and diff[1] == diff[0] + 1
        and all(typed[i] in _KEYBOARD.get(brand[i], ()) for i in diff)
    )


_VOWELS = frozenset("aeiou")


def _vowel_slips(typed: str, brand: str) -> bool:
    """Only vowels changed, moved or swapped, the consonants kept in order
    (gmiel, gmile, gmeil for gmail): a spelling slip, not another word.  At
    least three consonants, so that short vowel-heavy names stay apart."""
    kept = [c for c in brand if c not in _VOWELS]
    return len(kept) >= 3 and kept == [c for c in typed if c not in _VOWELS]


def _one_neighbour_typo(intended: str, typed: str) -> bool:
    """``typed`` is ``intended`` with one neighbour key or look-alike letter
    instead of the right one, or one extra such (or doubled) letter."""
    if len(typed) == len(intended):
        diff = [i for i in range(len(typed)) if typed[i] != intended[i]]
        return len(diff) == 1 and _near_chars(intended[diff[0]], typed[diff[0]])
    if len(typed) == len(intended) + 1:
        for i in range(len(typed)):
            if typed[:i] + typed[i + 1 :] == intended:
                ch = typed[i]
                left = typed[i - 1] if i else ""
                right = typed[i + 1] if i + 1 < len(typed) else ""
                if ch in (left, right) or _near_chars(ch, left) or _near_chars(ch, right):
                    return True
    return False


def _letter_keys(word: str, with_whole: bool = False) -> set[str]:
    letters = "".join(sorted(word))
    keys = {letters[:i] + letters[i + 1 :] for i in range(len(letters))}
    if with_whole:
        keys.add(letters)
    return keys


def _pair_candidates(form: str, ps: ProtectedSet) -> set[str]:
    """5-8 letter labels whose letters differ from ``form``'s by at most one
    (a swap keeps them; a neighbour typo changes or adds one)."""
    out: set[str] = set()
    for key in _letter_keys(form):
        out.update(ps.near_pair.get(key, ()))
    return out


def _short_label(name: Name, ps: ProtectedSet) -> _Hit | None:
    """One edit on a 2-3 letter label, under the same suffix only (exp.co.jp ->
    exo.co.jp, epx.co.jp); on a 2-letter label only a neighbour key or a
    look-alike letter, a swap or a doubled letter (au.com -> ay.com, auu.com)."""
    label = name.label
    if not label or not name.suffix or label in GENERIC_LABELS or not 1 <= len(label) <= 4:
        return None
    hits: list[_Hit] = []
    if "-" in label:
        # a hyphen put into a short name: ex-p.co.jp, a-u.com
        for e in ps.by_label.get(label.replace("-", ""), ()):
            if e.suffix == name.suffix and _allowed(e, name, ps):
                hits.append(_Hit(e, "hyphenation", name.registrable_text))
        return _best(hits)
    found: set[str] = set()
    for v in _deletes(label):
        found.update(ps.near_short.get(v, ()))
    for brand in found:
        if brand == label or OSA.distance(label, brand, score_cutoff=1) > 1:
            continue
        if not _strict_short(label, brand):
            continue
        for e in ps.by_label.get(brand, ()):
            if e.suffix == name.suffix and _allowed(e, name, ps):
                hits.append(_Hit(e, _edit_kind(label, brand), name.registrable_text))
    return _best(hits)


def _strict_short(label: str, brand: str) -> bool:
    """The stricter rule for 2-3 letter labels: a slip a hand or an eye makes.
    Any other one-letter change of a short name is usually another real
    organisation (jtb for jcb, npa for nta)."""
    if len(label) == len(brand):
        diff = [i for i in range(len(label)) if label[i] != brand[i]]
        if len(diff) == 2:
            return True  # adjacent swap (OSA distance 1)
        return _near_chars(brand[diff[0]], label[diff[0]])
    if len(label) > len(brand):
        return _one_neighbour_typo(brand, label)  # doubled or neighbour key
    return True  # a letter left out: ex.co.jp, ep.co.jp


def _short_part_slip(label: str, brand: str) -> bool:
    """False when an edit of ``brand`` falls in a hyphen-separated part of at
    most three letters and is not a neighbour-key or look-alike slip: kyoto-wu
    and kyoto-su are other universities, not kyoto-u mistyped.  Each part of a
    hyphenated name is a word its reader sees on its own."""
    if "-" not in brand:
        return True
    owner: list[int] = []  # part length per position of brand
    for part in brand.split("-"):
        owner.extend([len(part)] * len(part))
        owner.append(99)  # the hyphen itself
    for op, i, j in Levenshtein.editops(brand, label):
        touched = [owner[k] for k in (i - 1, i) if 0 <= k < len(brand)]
        if op == "insert":
            if min(touched, default=99) > 3:
                continue
            ch = label[j]
            around = [label[k] for k in (j - 1, j + 1) if 0 <= k < len(label)]
            if not any(ch == c or _near_chars(ch, c) for c in around if c != "-"):
                return False
        elif op == "replace" and owner[i] <= 3 and not _near_chars(brand[i], label[j]):
            return False
    return True


def _geographic(name: Name, ps: ProtectedSet) -> _Hit | None:
    """pref.kanagawa.jp and city.yokohama.lg.jp are typed whole: an edit in
    pref/city or the place name is a mistyped address — unless the result is
    another real place (pref.kagawa.jp is Kagawa, not a typo of Kanagawa)."""
    if not ps.geo:
        return None
    stem, gsuffix = _split_generic(name.text)
    labels = stem.split(".")
    hits: list[_Hit] = []
    # type.place (pref.kanagawa, city.yokohama) and type.place.prefecture
    # (city.kawagoe.saitama): an entry is compared with a name of as many words
    for size in (2, 3):
        if len(labels) < size:
            break
        parts = labels[-size:]
        plain = _flat(".".join(parts))
        # ASCII names are compared as typed: folding first (aichi -> akhl, "lc" ~ k)
        # would make a one-letter slip look like three edits.
        forms = {plain} if plain.isascii() else {plain, loose(plain)}
        found: set[str] = set()
        for flat in forms:
            found |= _near_candidates(flat, ps)
        for cand in found:
            b = budget(cand)
            if OSA.distance(plain, cand, score_cutoff=b) > b and (
                plain.isascii()
                or OSA.distance(loose(plain), ps.skeletons[cand], score_cutoff=b) > b
            ):
                continue
            for e in ps.geo.get(cand, ()):
                e_parts = e.stem.split(".")
                if len(e_parts) == size and _another_body(parts, e_parts):
                    continue
                # Any suffix: a slip in the name *and* a suffix game (pef.kanagawa.jp.jp,
                # city.yokohana.lg.com) is still this body's address mistyped.
                if _allowed(e, name, ps):
                    hits.append(_Hit(e, "geographic", ".".join(parts) + "." + gsuffix))
    return _best(hits)


def _another_body(parts: list[str], listed: list[str]) -> bool:
    """``parts`` (pref.kagawa; city.kawaguchi.saitama) names a real public body other
    than ``listed``, or the listed one itself: not a slip."""
    if parts == listed:
        return True
    kind, place = parts[0], parts[1]
    if place != listed[1] and (place in GEO_PREFECTURES if kind == "pref" else place in GEO_NAMES):
        return True  # another real place (pref.kagawa.jp is Kagawa)
    if kind != listed[0] and kind in GEO_PREFIXES and place != listed[1]:
        return True  # town.X for city.Y: another body altogether
    # the same town in another real prefecture (city.kawagoe.mie for ...saitama)
    return len(parts) == 3 and parts[2] != listed[2] and parts[2] in GEO_PREFECTURES


def _hosted(name: Name, ps: ProtectedSet) -> _Hit | None:
    """A protected name as a tenant of a service anyone can sign up to
    (``HOSTED_TENANT_DOMAINS``): mizuhobank.onmicrosoft.com, mhlw.sakura.ne.jp,
    mizuhobank-co-jp.onmicrosoft.com, ехр.onmicrosoft.com."""
    if name.registrable not in HOSTED_TENANT_DOMAINS:
        return None
    tenant = (
        name.text[: -len(name.registrable) - 1].rsplit(".", 1)[-1]
        if name.text != name.registrable
        else ""
    )
    flat = tenant.replace("-", "")
    if len(flat) < 3:
        return None
    hits = [_Hit(e, "hosted", tenant) for e, _how in _stems(tenant, ps)]
    for k in range(3, len(flat) + 1):
        tail = flat[k:]
        if tail and tail not in FUSED_TOKENS:
            continue
        hits += [_Hit(e, "hosted", tenant) for e in ps.by_stem_flat.get(flat[:k], ())]
    return _best(h for h in hits if len(_flat(h.entry.stem)) >= 3 and _allowed(h.entry, name, ps))


def explain_pair(domain: str, resembles: str) -> Explanation:
    """What differs between ``domain`` and the protected ``resembles`` (for
    pages that have only the two names, e.g. a send-log entry)."""
    a, b = normalise(domain), normalise(resembles)
    if not a.text or not b.text:
        return Explanation("", "")
    return _explain(a.text, b.text)


def _suffix_for_words(text: str) -> str:
    """The suffix as a reader sees it: co.com in exp.co.com, gojp.net in mhlw.gojp.net."""
    labels = text.split(".")
    i = len(labels) - 1
    while i > 1 and (labels[i - 1] in SUFFIX_TOKENS or labels[i - 1] in FUSED_TOKENS):
        i -= 1
    return ".".join(labels[i:])


def _explain(candidate: str, protected: str) -> Explanation:
    head, _, rest = candidate.partition(".")
    if head.startswith("www") and not protected.startswith("www") and len(head.lstrip("w-")) >= 2:
        # www-mhlw.com: say that www is stuck on, then what differs in the rest
        shown = head[3:].lstrip("-") + "." + rest
        if shown == protected:
            return Explanation(
                f"{protected} の前に {head[:3]} が続いています（{candidate} ↔ {protected}）",
                f"{head[:3]} run into the front of {protected} ({candidate} ↔ {protected})",
            )
        inner = _explain(shown, protected)
        return Explanation(
            f"{head[:3]} が名前に続いています。"
            + inner.ja.replace(f"（{shown} ↔", f"（{candidate} ↔"),
            f"{head[:3]} run into the name; " + inner.en.replace(f"({shown} ↔", f"({candidate} ↔"),
        )
    return explain(candidate, protected, _suffix_for_words(candidate), _suffix_for_words(protected))


def _www_fused(name: Name, ps: ProtectedSet) -> _Hit | None:
    """``www`` run into the name (wwwmhlw.go.jp, www-soumu.com, www-city-yokohama.jp):
    the rest, read on its own, is one of the lookalikes above."""
    labels = name.text.split(".")
    first = labels[0]
    if len(labels) < 2 or not first.startswith("www") or len(first.lstrip("w-")) < 2:
        return None
    head = first[3:].lstrip("-")
    for form in dict.fromkeys((head, head.replace("-", "."))):  # www-u-tokyo, www-city-yokohama
        rest = normalise(".".join([form, *labels[1:]]))
        if not rest.ascii:
            continue
        # www-exp.co.jp: the listed name itself behind www-
        hits = [_Hit(e, "prefix", name.text) for e in ps.by_domain.get(rest.ascii, ())]
        for step in _STEPS[:-1]:
            hit = step(rest, ps)
            if hit is not None:
                hits.append(_Hit(hit.entry, "prefix", name.text))
                break
        hit = _best(h for h in hits if _allowed(h.entry, name, ps))
        if hit is not None:
            return hit
    return None


_STEPS = (
    _structural,
    _homoglyph,
    _suffix_variants,
    _suffix_game,
    _merged,
    _fuzzy_label,
    _short_label,
    _geographic,
    _hosted,
    _www_fused,
)


def check(domain: str, protected: ProtectedSet) -> DomainVerdict:
    """Classify one recipient domain (or address).  Never raises."""
    name = normalise(domain)
    if not name.ascii:
        return DomainVerdict(domain=domain, verdict=EXTERNAL, reason=name.problem)
    if (
        len(name.ascii) > 253
        or name.problem.endswith("(too long)")
        or max(map(len, name.ascii.split("."))) > 63
    ):
        # Not a deliverable name, and the neighbourhood search grows with the
        # square of a label's length: refuse to spend time on it.
        return DomainVerdict(
            domain=name.ascii[:253], verdict=EXTERNAL, reason="not a valid domain name (too long)"
        )
    parents = list(_parents(name.ascii))
    for parent in parents:
        entry = protected.trusted.get(parent)
        if entry is not None:
            how = "is" if parent == name.ascii else "is a subdomain of"
            return DomainVerdict(
                domain=name.ascii,
                verdict=TRUSTED,
                reason=f"{how} the {entry.kind} domain {entry.domain}",
            )
    for parent in parents:
        if parent in protected.external:
            return DomainVerdict(
                domain=name.ascii,
                verdict=EXTERNAL,
                reason=f"listed as external (not a lookalike) in the allowlist: {parent}",
            )
        entry = protected.builtin.get(parent)
        if entry is not None:
            return DomainVerdict(
                domain=name.ascii,
                verdict=EXTERNAL,
                reason=f"the public mail service {entry.domain} (protected, not trusted)",
            )
    same_owner = protected.by_registrable.get(name.registrable)
    if same_owner and not any(_geo_type_slip(e, name) for e in same_owner):
        e = same_owner[0]
        kind = name.text.split(".", 1)[0]
        if kind in GEO_PREFIXES and kind != e.text.split(".", 1)[0]:
            # city.saitama.lg.jp beside pref.saitama.lg.jp: the PSL makes them one
            # registrable domain, but they are two public bodies
            reason = f"another public body than the {e.kind} domain {e.domain} ({kind}, not {e.stem.split('.', 1)[0]})"
        else:
            reason = (
                f"same registrable domain as the {e.kind} domain {e.domain}"
                " (not trusted: only the listed name is)"
            )
        return DomainVerdict(domain=name.ascii, verdict=EXTERNAL, reason=reason)
    for step in _STEPS:
        hit = step(name, protected)
        if hit is not None:
            e = hit.entry
            distance = OSA.distance(hit.compared, e.text)
            if hit.technique == "hosted":
                service = _to_text(name.registrable)
                words = Explanation(
                    f"{e.text} の名前（{hit.compared}）が、誰でも登録できる {service} の"
                    f"利用者名として使われています（{name.text} ↔ {e.text}）",
                    f"the name of {e.text} ({hit.compared}) as an account at {service}, "
                    f"which anyone can sign up to ({name.text} ↔ {e.text})",
                )
            else:
                words = _explain(name.text, e.text)
            return DomainVerdict(
                domain=name.ascii,
                verdict=LOOKALIKE,
                resembles=e.domain,
                technique=hit.technique,
                distance=distance,
                reason=f"looks like the {e.kind} domain {e.text} ({hit.technique}, distance {distance})",
                explanation=words.en,
                explanation_ja=words.ja,
            )
    if not name.valid:
        reason = name.problem
    elif name.registrable in protected.known:
        reason = f"the public mail service {name.registrable}"
    else:
        reason = "no resemblance to a protected domain"
    return DomainVerdict(domain=name.ascii, verdict=EXTERNAL, reason=reason)
