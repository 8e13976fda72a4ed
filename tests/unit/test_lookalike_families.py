"""The lookalike families of issue 12, one test per family: what is caught (and
named), what must stay external, and the words the sender is shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlp.detect.lookalike import EXTERNAL, LOOKALIKE, ProtectedSet, check

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "data" / "doppelganger-domains.txt"


PARTNERS = ("mhlw.go.jp", "soumu.go.jp", "nta.go.jp", "jcb.co.jp", "u-tokyo.ac.jp",
            "kyoto-u.ac.jp", "nagoya-kikaku.com")  # fmt: skip


@pytest.fixture(scope="module")
def ps() -> ProtectedSet:
    return ProtectedSet.build(
        own=["exp.co.jp", "city.yokohama.lg.jp", "example-city.lg.jp", "pref.kanagawa.jp"],
        partners=PARTNERS,
        builtin=True,
    )


def caught(ps: ProtectedSet, domain: str, resembles: str, technique: str | None = None) -> None:
    v = check(domain, ps)
    assert (v.verdict, v.resembles) == (LOOKALIKE, resembles), v
    if technique is not None:
        assert v.technique == technique, v
    assert v.explanation and v.explanation_ja  # every lookalike says what differs


def external(ps: ProtectedSet, domain: str) -> None:
    v = check(domain, ps)
    assert v.verdict == EXTERNAL, v


@pytest.mark.parametrize(
    "domain",
    ["exp.co.com", "exp.jp.net", "exp.com.jp", "exp.co.jp.jp", "exp.ne.jp", "exp.go.jp",
     "au.co.jp", "au.com.jp", "jcb.co.com", "nta.gojp.net", "nta.go.com"],
)  # fmt: skip
def test_suffix_games_on_labels_of_any_length(ps: ProtectedSet, domain: str) -> None:
    target = {"au": "au.com", "jcb": "jcb.co.jp", "nta": "nta.go.jp"}.get(domain[:3].rstrip("."))
    caught(ps, domain, target or "exp.co.jp")


@pytest.mark.parametrize(
    ("domain", "resembles"),
    [("exo.co.jp", "exp.co.jp"),  # neighbour key
     ("epx.co.jp", "exp.co.jp"),  # swap
     ("expp.co.jp", "exp.co.jp"),  # doubled
     ("ex.co.jp", "exp.co.jp"),  # left out
     ("ex-p.co.jp", "exp.co.jp"),  # a hyphen put in
     ("jvb.co.jp", "jcb.co.jp"),  # neighbour key
     ("ay.com", "au.com")],
)  # fmt: skip
def test_short_labels_catch_the_slips_a_hand_makes(
    ps: ProtectedSet, domain: str, resembles: str
) -> None:
    caught(ps, domain, resembles)


@pytest.mark.parametrize(
    "domain",
    # JTB and the National Police Agency, one letter from jcb / nta but not a slip;
    # an edit *and* another suffix on three letters; two Kyoto universities
    ["jtb.co.jp", "npa.go.jp", "exo.com", "aux.com", "kyoto-wu.ac.jp", "kyoto-su.ac.jp"],
)
def test_short_labels_and_short_parts_leave_real_neighbours_alone(
    ps: ProtectedSet, domain: str
) -> None:
    external(ps, domain)


@pytest.mark.parametrize(
    ("domain", "resembles"),
    [("expcojp.com", "exp.co.jp"), ("expco.net", "exp.co.jp"), ("mhlwgo.com", "mhlw.go.jp"),
     ("mhlwgojp.jp", "mhlw.go.jp"), ("cityyokohamalgjp.net", "city.yokohama.lg.jp"),
     ("cityyokohama.com", "city.yokohama.lg.jp"), ("expcojp.jp", "exp.co.jp"),
     # merge plus one letter
     ("expcojpp.com", "exp.co.jp"), ("prefkaqnagawa.jp", "pref.kanagawa.jp"),
     ("citylyokohama.lg.jp", "city.yokohama.lg.jp"),
     ("nagjoyakikakucom.com", "nagoya-kikaku.com")],
)  # fmt: skip
def test_merged_suffixes_and_dots(ps: ProtectedSet, domain: str, resembles: str) -> None:
    caught(ps, domain, resembles)


@pytest.mark.parametrize(
    "domain",
    ["gmiak.com",  # swap + neighbour key
     "gmaji.com",  # hand shifted for two strokes
     "gmiel.com", "gmile.com",  # vowels moved
     "gmali.com"],
)  # fmt: skip
def test_two_edits_on_a_five_letter_brand(ps: ProtectedSet, domain: str) -> None:
    caught(ps, domain, "gmail.com")


def test_two_neighbour_keys_on_a_longer_label_but_not_tmall(ps: ProtectedSet) -> None:
    caught(ps, "jptmail.com", "hotmail.com", "double_typo")
    external(ps, "tmall.com")  # two neighbour keys from gmail.com, and a real shop


@pytest.mark.parametrize(
    ("domain", "resembles"),
    [("nnh1vv.go.jp", "mhlw.go.jp"), ("sovrnu.go.jp", "soumu.go.jp"),
     ("v-t0kyo.ac.jp", "u-tokyo.ac.jp"), ("xn--u-tok-zua41v.ac.jp", "u-tokyo.ac.jp"),
     ("exarnple-clty.lg.jp", "example-city.lg.jp"), ("examp1e-city.lg.jp", "example-city.lg.jp"),
     ("example-c1ty.lg.jp", "example-city.lg.jp"), ("nag0ya-kikaku.com", "nagoya-kikaku.com")],
)  # fmt: skip
def test_several_homoglyphs_and_hyphenated_labels(
    ps: ProtectedSet, domain: str, resembles: str
) -> None:
    caught(ps, domain, resembles, "homoglyph")


@pytest.mark.parametrize(
    ("domain", "resembles"),
    [("pref.kanagawz.jp", "pref.kanagawa.jp"), ("prif.kanagawa.jp", "pref.kanagawa.jp"),
     ("pref.kanagwaa.jp", "pref.kanagawa.jp"), ("pef.kanagawa.jp.jp", "pref.kanagawa.jp"),
     ("city.yokohamma.lg.jp", "city.yokohama.lg.jp"), ("ctiy.yokohama.lg.com", "city.yokohama.lg.jp"),
     ("city.yokohama.lg.com", "city.yokohama.lg.jp"), ("mhlw.jp", "mhlw.go.jp"),
     ("www-mhlw.com", "mhlw.go.jp"), ("wwwsoumu.go.jp", "soumu.go.jp"),
     ("ctiy.yokohama.lg.jp", "city.yokohama.lg.jp")],
)  # fmt: skip
def test_geographic_and_government_names(ps: ProtectedSet, domain: str, resembles: str) -> None:
    caught(ps, domain, resembles)


@pytest.mark.parametrize(
    "domain",
    # Kagawa is another prefecture; the LG.JP and geographic forms of the same
    # body are the body itself; Yokosuka is another city
    ["pref.kagawa.jp", "pref.kanagawa.lg.jp", "city.yokohama.jp", "city.yokosuka.kanagawa.jp"],
)
def test_real_places_and_twins_stay_external(ps: ProtectedSet, domain: str) -> None:
    external(ps, domain)


@pytest.mark.parametrize("domain", ["yahoo.fr", "yahoo.co.uk", "outlook.de", "hotmail.fr"])
def test_the_providers_own_country_domains_are_not_suffix_swaps(
    ps: ProtectedSet, domain: str
) -> None:
    external(ps, domain)


@pytest.mark.parametrize(
    ("domain", "en", "ja"),
    [("gmial.com", "two letters swapped (ia for ai) (gmial.com ↔ gmail.com)",
      "ai と ia の入れ替わり（gmial.com ↔ gmail.com）"),
     ("exp.com", "the suffix .co.jp became .com (exp.com ↔ exp.co.jp)",
      "末尾が .co.jp ではなく .com です（exp.com ↔ exp.co.jp）"),
     ("exp.co.com", "the suffix .co.jp became .co.com (exp.co.com ↔ exp.co.jp)",
      "末尾が .co.jp ではなく .co.com です（exp.co.com ↔ exp.co.jp）"),
     ("expcojp.com", "exp.co.jp run together without its dots, under .com (expcojp.com)",
      "exp.co.jp のドットが抜けて一つの名前になり、.com が付いています（expcojp.com）"),
     ("exo.co.jp", "p changed to o (exo.co.jp ↔ exp.co.jp)", "p が o に（exo.co.jp ↔ exp.co.jp）"),
     ("v-t0kyo.ac.jp", "look-alike characters: v for u; 0 for o (v-t0kyo.ac.jp ↔ u-tokyo.ac.jp)",
      "見た目の似た文字: u の代わりに v、o の代わりに 0（v-t0kyo.ac.jp ↔ u-tokyo.ac.jp）"),
     ("gmiak.com",
      "two letters swapped (ia for ai); l changed to k (gmiak.com ↔ gmail.com)",
      "ai と ia の入れ替わり、l が k に（gmiak.com ↔ gmail.com）"),
     ("ctiy.yokohama.lg.com",
      "two letters swapped (ti for it); the suffix .lg.jp became .lg.com"
      " (ctiy.yokohama.lg.com ↔ city.yokohama.lg.jp)",
      "it と ti の入れ替わり、末尾が .lg.jp ではなく .lg.com（ctiy.yokohama.lg.com ↔ city.yokohama.lg.jp）"),
     ("www-mhlw.com",
      "www run into the name; the suffix .go.jp became .com (www-mhlw.com ↔ mhlw.go.jp)",
      "www が名前に続いています。末尾が .go.jp ではなく .com です（www-mhlw.com ↔ mhlw.go.jp）")],
)  # fmt: skip
def test_explanations_say_what_differs(ps: ProtectedSet, domain: str, en: str, ja: str) -> None:
    v = check(domain, ps)
    assert (v.explanation, v.explanation_ja) == (en, ja)


def _real() -> list[tuple[str, str, str]]:
    out = []
    source = ""
    for line in REAL.read_text(encoding="utf-8").splitlines():
        data, _, comment = line.partition("#")
        parts = data.split()
        if len(parts) == 2:
            out.append((parts[0], parts[1], comment.strip() or source))
        elif not parts and "https://" in comment:
            source = comment.strip()  # a heading comment names the source of the lines below
    return out


REAL_DOMAINS = _real()


def test_the_real_list_is_there_and_every_entry_has_a_source() -> None:
    assert len(REAL_DOMAINS) >= 40
    assert all(source for _, _, source in REAL_DOMAINS)


@pytest.mark.parametrize(("domain", "target", "source"), REAL_DOMAINS)
def test_real_doppelgangers_are_caught(domain: str, target: str, source: str) -> None:
    """Each domain seen in the wild, with the domain it imitates protected (as an
    own/partner domain, or built in)."""
    p = ProtectedSet.build(own=[target], builtin=True)
    v = check(domain, p)
    assert (v.verdict, v.resembles) == (LOOKALIKE, target), (v, source)
