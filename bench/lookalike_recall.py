"""Lookalike detector: recall per family, technique and label length; false flags.

    .venv/bin/python bench/lookalike_recall.py                      # markdown to stdout
    .venv/bin/python bench/lookalike_recall.py --output bench/RESULTS-lookalike-recall.md
    .venv/bin/python bench/lookalike_recall.py --misses 20          # also list misses

Reproducible: every generator is seeded by the domain it works on.

Protected set: 26 Japanese-style domains (issue 12: cities and prefectures under
``lg.jp``/``pref.*.jp``, ministries under ``go.jp``, universities under
``ac.jp``, companies under ``co.jp``/``.com`` including three-letter labels,
free mail and carriers) as the organisation's own/partner domains, plus the
built-in list.  Lookalikes come from dnstwist (as a library), the generators of
bench/lookalike.py, and the family generators below (short labels, several
homoglyphs, homoglyphs in hyphenated labels, government names).

Negatives: ../shared/data/popular-domains.txt (goal <= 0.3 % flagged) and the
curated list bench/data/lookalike-negatives.txt (real domains next to a
protected one that must stay ``external``: goal 0), and the real doppelgänger
domains in tests/data/doppelganger-domains.txt (goal: all caught).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
# --detector DIR: measure another checkout's detector (git archive COMMIT | tar -x -C DIR) on
# the same generated set; read before dlp is imported
if "--detector" in sys.argv:
    sys.path.insert(0, sys.argv[sys.argv.index("--detector") + 1])

import lookalike as base  # noqa: E402  (bench/lookalike.py: generators shared)

from dlp.detect.lookalike import (  # noqa: E402
    _KEYBOARD,
    BUILTIN_KNOWN,
    BUILTIN_PROTECTED,
    GEO_NAMES,
    GEO_PREFECTURES,
    LOOKALIKE,
    ProtectedSet,
    _split_generic,
    check,
    normalise,
)

NEGATIVES = ROOT / "bench" / "data" / "lookalike-negatives.txt"
DOPPELGANGERS = ROOT / "tests" / "data" / "doppelganger-domains.txt"

# Own domains (trusted) and partners; all 26 are protected.
OWN = ("city.yokohama.lg.jp", "example-city.lg.jp", "exp.co.jp", "sakura-payroll.co.jp")
PROTECTED = base.JP_PROTECTED

FAMILIES: dict[str, tuple[str, ...]] = {
    "character edits": (
        "addition", "insertion", "omission", "repetition", "replacement",
        "transposition", "vowel-swap", "bitsquatting", "hyphenation",
    ),
    "homoglyphs": ("homoglyph", "cyrillic", "multi_homoglyph", "hyphen_homoglyph"),
    "suffix games": ("suffix_swap", "suffix_typo", "suffix_nested"),
    "merged suffixes and dots": (
        "merged", "merged_plus_edit", "dot_missing", "hyphen_for_dot",
    ),
    "structure": ("dot_extra", "prefix", "subdomain"),
    "short labels": ("short_edit",),
    "two edits": ("double_typo",),
    "geographic and government": ("geographic", "government"),
}  # fmt: skip
TECHNIQUE_FAMILY = {t: f for f, ts in FAMILIES.items() for t in ts}

# Look-alike renderings people actually register (ASCII first, then Cyrillic).
_GLYPHS: dict[str, tuple[str, ...]] = {
    "m": ("rn", "nn"), "l": ("1", "i", "I"), "o": ("0",), "w": ("vv",), "d": ("cl",),
    "i": ("1", "l"), "a": ("а",), "e": ("е",), "c": ("с",), "p": ("р",), "y": ("у",),
    "x": ("х",), "s": ("ѕ",), "k": ("к",), "g": ("q",), "u": ("v",), "h": ("һ",),
}  # fmt: skip


def short_variants(domain: str) -> Iterator[tuple[str, str]]:
    """One slip on a 2-3 letter label, under the same suffix: a key next to the
    right one, a look-alike letter, two letters swapped, a doubled letter, a
    neighbour key pressed as well."""
    stem, gsuffix = _split_generic(domain)
    label = stem.split(".")[-1]
    if not 2 <= len(label) <= 3 or "." in stem:
        return
    for i, ch in enumerate(label):
        for near in sorted(_KEYBOARD.get(ch, ())):
            if near.isalpha():
                yield "short_edit", f"{label[:i]}{near}{label[i + 1 :]}.{gsuffix}"
        for glyph in _GLYPHS.get(ch, ()):
            if glyph.isascii():
                yield "short_edit", f"{label[:i]}{glyph}{label[i + 1 :]}.{gsuffix}"
        yield "short_edit", f"{label[:i]}{ch}{ch}{label[i + 1 :]}.{gsuffix}"
        for near in sorted(_KEYBOARD.get(ch, ())):
            if near.isalpha():
                yield "short_edit", f"{label[: i + 1]}{near}{label[i + 1 :]}.{gsuffix}"
    for i in range(len(label) - 1):
        if label[i] != label[i + 1]:
            yield "short_edit", f"{label[:i]}{label[i + 1]}{label[i]}{label[i + 2 :]}.{gsuffix}"


def homoglyph_variants(domain: str) -> Iterator[tuple[str, str]]:
    """Two or three look-alikes at once (rn + 1 + l), and look-alikes inside each
    part of a hyphenated label (example-city -> exarnple-clty)."""
    rng = random.Random("glyph:" + domain)
    stem, gsuffix = _split_generic(domain)
    spots = [i for i, ch in enumerate(stem) if ch in _GLYPHS]
    for _ in range(20):
        if len(spots) < 2:
            break
        chosen = sorted(rng.sample(spots, min(len(spots), rng.randint(2, 3))), reverse=True)
        w = stem
        for i in chosen:
            w = w[:i] + rng.choice(_GLYPHS[w[i]]) + w[i + 1 :]
        yield "multi_homoglyph", f"{w}.{gsuffix}"
    label = stem.split(".")[-1]
    if "-" not in label:
        return
    head = stem[: len(stem) - len(label)]
    parts = label.split("-")
    for p, part in enumerate(parts):
        for i, ch in enumerate(part):
            for glyph in _GLYPHS.get(ch, ()):
                new = list(parts)
                new[p] = part[:i] + glyph + part[i + 1 :]
                yield "hyphen_homoglyph", f"{head}{'-'.join(new)}.{gsuffix}"
    for _ in range(10):  # one look-alike in every part at once
        new = list(parts)
        for p, part in enumerate(parts):
            idx = [i for i, ch in enumerate(part) if ch in _GLYPHS]
            if idx:
                i = rng.choice(idx)
                new[p] = part[:i] + rng.choice(_GLYPHS[part[i]]) + part[i + 1 :]
        yield "hyphen_homoglyph", f"{head}{'-'.join(new)}.{gsuffix}"


def government_variants(domain: str) -> Iterator[tuple[str, str]]:
    """go.jp / lg.jp / pref names: the suffix itself mistyped or dropped the way
    people do it (mhlw.go.jp -> mhlw.jp, mhlw.go.com, mhlw-go.jp, mhlw.gov.jp)."""
    stem, gsuffix = _split_generic(domain)
    if gsuffix not in ("go.jp", "lg.jp", "ac.jp") and not stem.startswith(("pref.", "city.")):
        return
    twins = {"jp", "lg.jp"} if stem.startswith(("pref.", "city.")) else set()
    for suffix in ("jp", "go.jp", "gov.jp", "lg.jp", "gr.jp", "or.jp", "co.jp", "com", "net",
                   "go.com", "gov", "jp.net", "lg.com", "ac.com", "ed.jp", "ne.jp"):  # fmt: skip
        # pref.kanagawa.lg.jp is the same prefecture (only public bodies register there)
        if suffix != gsuffix and not {suffix, gsuffix} <= twins:
            yield "government", f"{stem}.{suffix}"
    yield "government", f"{stem}-{gsuffix.replace('.', '-')}.jp"
    yield "government", f"www-{stem.replace('.', '-')}.{gsuffix}"


def variants(domain: str) -> Iterator[tuple[str, str]]:
    seen: set[str] = set()
    for technique, candidate in (
        *base.variants(domain),
        *short_variants(domain),
        *homoglyph_variants(domain),
        *government_variants(domain),
    ):
        if candidate not in seen and candidate != domain:
            seen.add(candidate)
            yield technique, candidate


def read_list(path: Path) -> list[str]:
    out = []
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line.split()[0])
    return out


def _another_real_place(candidate: str, domain: str) -> bool:
    """pref.kagawa.jp generated from pref.kanagawa.jp is Kagawa, not a lookalike:
    real places are negatives, not misses."""
    c_stem, _ = _split_generic(normalise(candidate).text)
    d_stem, _ = _split_generic(domain)
    c, d = c_stem.split("."), d_stem.split(".")
    if len(c) != 2 or len(d) != 2 or c[1] == d[1]:
        return False
    return c[1] in (GEO_PREFECTURES if c[0] == "pref" else GEO_NAMES)


def _length_bucket(label: str) -> str:
    n = len(label)
    if n <= 3:
        return "2-3"
    if n == 4:
        return "4"
    if n <= 8:
        return "5-8"
    return "9+"


def build_set() -> ProtectedSet:
    partners = [d for d in PROTECTED if d not in OWN and d not in BUILTIN_PROTECTED]
    return ProtectedSet.build(own=OWN, partners=partners, builtin=True)


def measure(ps: ProtectedSet, misses: int) -> dict[str, object]:
    skip = {normalise(d).registrable for d in (*PROTECTED, *BUILTIN_PROTECTED, *BUILTIN_KNOWN)}
    skip |= {normalise(d).registrable for d in base.popular_domains()}
    skip |= {normalise(d).registrable for d in read_list(NEGATIVES)}
    by_tech: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_len: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    long_only: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    missed: dict[str, list[str]] = defaultdict(list)
    excluded = 0
    for domain in PROTECTED:
        stem, _ = _split_generic(domain)
        bucket = _length_bucket(stem.replace(".", ""))
        # the stricter rule for short names applies to a word of 1-3 letters
        # (exp, au) or a hyphen part of one (kyoto-u)
        has_short = any(len(w) <= 3 for w in stem.replace("-", ".").split("."))
        for technique, candidate in variants(domain):
            name = normalise(candidate)
            if name.registrable in skip or "." not in name.ascii:
                excluded += 1
                continue
            if technique in ("geographic", "government") and _another_real_place(candidate, domain):
                excluded += 1
                continue
            v = check(candidate, ps)
            hit = v.verdict == LOOKALIKE
            by_tech[technique][0] += 1
            by_tech[technique][1] += hit
            fam = TECHNIQUE_FAMILY.get(technique, "other")
            by_len[(fam, bucket)][0] += 1
            by_len[(fam, bucket)][1] += hit
            if not has_short:
                long_only[fam][0] += 1
                long_only[fam][1] += hit
            if not hit:
                missed[technique].append(f"{candidate} (for {domain})")
    return {
        "tech": by_tech,
        "len": by_len,
        "long": long_only,
        "missed": missed,
        "excluded": excluded,
    }


def _pct(a: int, n: int) -> str:
    return f"{a / n:.1%}" if n else "-"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def report(misses: int) -> str:
    out: list[str] = []
    ps = build_set()
    t = time.perf_counter()
    m = measure(ps, misses)
    took = time.perf_counter() - t
    tech: dict[str, list[int]] = m["tech"]  # type: ignore[assignment]
    by_len: dict[tuple[str, str], list[int]] = m["len"]  # type: ignore[assignment]
    long_only: dict[str, list[int]] = m["long"]  # type: ignore[assignment]
    fam_rows = []
    for fam, techniques in FAMILIES.items():
        n = sum(tech[t][0] for t in techniques if t in tech)
        h = sum(tech[t][1] for t in techniques if t in tech)
        worst = min(
            ((tech[t][1] / tech[t][0], t) for t in techniques if tech.get(t, [0])[0]),
            default=(0.0, "-"),
        )
        ln, lh = long_only.get(fam, [0, 0])
        fam_rows.append((fam, str(n), _pct(h, n), _pct(lh, ln), f"{worst[1]} {worst[0]:.1%}"))
    total_n = sum(v[0] for v in tech.values())
    total_h = sum(v[1] for v in tech.values())
    out.append(f"## Recall per family ({len(PROTECTED)} protected domains, {total_n} lookalikes)\n")
    out.append(
        _table(
            (
                "family",
                "lookalikes",
                "recall",
                "recall, names without a 1-3 letter word",
                "lowest technique",
            ),
            fam_rows,
        )
    )
    out.append(
        f"\nAll: {_pct(total_h, total_n)}; {m['excluded']} generated names left out "
        "(a listed, known, popular or curated-negative domain, another real place, or no "
        f"longer a domain). Checked in {took:.1f} s.\n"
    )
    rows = [
        (TECHNIQUE_FAMILY.get(t, "other"), t, str(n), str(n - h), _pct(h, n))
        for t, (n, h) in sorted(
            tech.items(), key=lambda kv: (TECHNIQUE_FAMILY.get(kv[0], ""), kv[0])
        )
    ]
    out.append("## Recall per technique\n")
    out.append(_table(("family", "technique", "lookalikes", "missed", "recall"), rows))
    buckets = ("2-3", "4", "5-8", "9+")
    len_rows = []
    for fam in FAMILIES:
        cells = []
        for b in buckets:
            n, h = by_len.get((fam, b), [0, 0])
            cells.append(f"{_pct(h, n)} ({n})" if n else "-")
        len_rows.append((fam, *cells))
    out.append("\n## Recall per label length (letters typed before the suffix, dots left out)\n")
    out.append(_table(("family", *(f"{b} letters" for b in buckets)), len_rows))

    out.append("\n## False flags\n")
    pop = base.popular_domains()
    flagged_pop = [(d, check(d, ps)) for d in pop]
    flagged_pop = [(d, v) for d, v in flagged_pop if v.verdict == LOOKALIKE]
    neg = read_list(NEGATIVES)
    flagged_neg = [(d, check(d, ps)) for d in neg]
    flagged_neg = [(d, v) for d, v in flagged_neg if v.verdict == LOOKALIKE]
    fr = [
        (
            "popular-domains.txt",
            f"{len(flagged_pop)}/{len(pop)}",
            f"{len(flagged_pop) / len(pop):.2%}",
            "<= 0.3 %",
            ", ".join(f"{d}~{v.resembles}" for d, v in flagged_pop[:8]) or "-",
        ),
        (
            "curated negatives",
            f"{len(flagged_neg)}/{len(neg)}",
            f"{len(flagged_neg) / max(1, len(neg)):.2%}",
            "0",
            ", ".join(f"{d}~{v.resembles}" for d, v in flagged_neg[:8]) or "-",
        ),
    ]
    out.append(_table(("list", "flagged", "rate", "goal", "flagged domains"), fr))

    real = read_list(DOPPELGANGERS)
    if real:
        targets = {}
        for line in DOPPELGANGERS.read_text(encoding="utf-8").splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 2:
                targets[parts[0]] = parts[1]
        real_ps = ProtectedSet.build(own=sorted(set(targets.values())), builtin=True)
        caught = [d for d in real if check(d, real_ps).verdict == LOOKALIKE]
        out.append(
            f"\n## Real doppelgänger domains (tests/data/doppelganger-domains.txt)\n\n"
            f"{len(caught)}/{len(real)} caught with their targets protected"
            + (
                "; missed: " + ", ".join(d for d in real if d not in caught)
                if len(caught) < len(real)
                else "."
            )
        )
    missed: dict[str, list[str]] = m["missed"]  # type: ignore[assignment]
    if misses and any(missed.values()):
        out.append("\n## Misses (first per technique)\n")
        for t, names in sorted(missed.items()):
            if names:
                # longest intended names first: short-label misses are mostly by design
                names.sort(key=lambda s: -len(s.rpartition("for ")[2]))
                out.append(f"- {t} ({len(names)}): " + ", ".join(names[:misses]))
    out.append(NOTES)
    return "\n".join(out) + "\n"


NOTES = """
Notes
- A lookalike counts as found when `check()` answers `lookalike` (against any protected domain).
  Generators: dnstwist fuzzers (addition ... vowel-swap, subdomain), bench/lookalike.py
  (`own_variants`, `family_variants`: suffix games, merged names, merge plus one letter, two
  neighbour typos, geographic edits) and this script (`short_variants`, `homoglyph_variants`,
  `government_variants`).
- Left out of recall: generated names that are a listed or known domain, a popular or curated
  negative domain (they are measured as negatives), or another real place (pref.kagawa.jp made
  from pref.kanagawa.jp is Kagawa).
- Label length = the letters a person types before the generic suffix, without dots/hyphens
  (exp: 3, mhlw: 4, cityyokohama: 12).
- "Names without a 1-3 letter word": protected names none of whose dot- or hyphen-separated
  words has three letters or fewer (so not exp, jcb, nta, au, ocn, u-tokyo, kyoto-u).  For the
  others, one-letter changes are caught only when they are slips a hand or eye makes (neighbour
  key, look-alike, swap, doubled letter, left out): the rest is usually another organisation
  (jtb.co.jp for jcb.co.jp, npa.go.jp for nta.go.jp, kyoto-wu.ac.jp for kyoto-u.ac.jp; see the
  curated negatives), so dnstwist's arbitrary replacements and additions on them are missed by
  design.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="also write the report (with run details) to this file")
    parser.add_argument("--misses", type=int, default=0, help="list up to N misses per technique")
    parser.add_argument("--detector", metavar="DIR", help="use the dlp package of another checkout")
    args = parser.parse_args()
    t = time.perf_counter()
    body = report(args.misses)
    print(body, end="")
    if args.output:
        import os
        import platform

        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        head = (
            "# Lookalike detector: recall per family, false flags\n\n"
            "Produced by `.venv/bin/python bench/lookalike_recall.py "
            + (f"--detector {args.detector} " if args.detector else "")
            + f"--misses {args.misses} --output {args.output}` on"
            f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"Python {platform.python_version()}, load average {load}, "
            f"{time.perf_counter() - t:.0f} s.\n\n"
        )
        Path(args.output).write_text(head + body, encoding="utf-8")


if __name__ == "__main__":
    main()
