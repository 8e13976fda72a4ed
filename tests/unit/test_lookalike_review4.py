"""Lookalike families a review of 3 Dec 2026 (fourth round) found missed or
misnamed: a look-alike letter together with a changed suffix, municipal names of
the geographic type (city.kawagoe.saitama.jp), and the own domain named when a
partner's registrable label happens to occur in the typed name."""

from __future__ import annotations

import pytest

from dlp.detect.lookalike import EXTERNAL, LOOKALIKE, ProtectedSet, check

OWN = ("city.kawagoe.saitama.jp", "kawagoe-hp.jp")
PARTNERS = ("exp.co.jp", "mhlw.go.jp", "mizuhobank.co.jp", "smbc.co.jp", "jcb.co.jp",
            "soumu.go.jp", "sakura-payroll.co.jp", "pref.saitama.lg.jp", "nissay.co.jp")  # fmt: skip


@pytest.fixture(scope="module")
def ps() -> ProtectedSet:
    return ProtectedSet.build(own=OWN, partners=PARTNERS, builtin=True)


@pytest.mark.parametrize(
    ("domain", "resembles"),
    [
        ("ехр.com", "exp.co.jp"),  # Cyrillic е х р, and .com for .co.jp
        ("mizuhobаnk.com", "mizuhobank.co.jp"),
        ("smbс.com", "smbc.co.jp"),
        ("jсb.net", "jcb.co.jp"),
        ("gmаil.net", "gmail.com"),
        ("sоumu.com", "soumu.go.jp"),
        ("rnhlw.com", "mhlw.go.jp"),  # rn for m
        ("mhIw.com", "mhlw.go.jp"),  # capital I for l
        ("mh1w.jp", "mhlw.go.jp"),
        ("rnizuhobank.com", "mizuhobank.co.jp"),
        ("sakura-payro11.com", "sakura-payroll.co.jp"),
        ("ехр.co.com", "exp.co.jp"),
    ],
)
def test_a_look_alike_letter_and_another_suffix(ps: ProtectedSet, domain: str, resembles: str) -> None:
    v = check(domain, ps)
    assert (v.verdict, v.resembles) == (LOOKALIKE, resembles), v
    assert v.explanation and v.explanation_ja


@pytest.mark.parametrize(
    "domain",
    [
        "city.kawagoe.saitma.jp",  # the prefecture mistyped
        "city.kawagoo.saitama.jp",  # the city mistyped
        "ctiy.kawagoe.saitama.jp",  # the type word mistyped
        "city.kawagoe.jp",  # the prefecture left out
        "city-kawagoe.jp",
        "citykawagoe.jp",
        "ctiy.kawagoe.jp",
        "city.kawagoe-saitama.com",
        "city-kawagoe-saitama.jp",
        "city.kawagoe.saitama.com",
        "city.kawagoe.saitama.net",
        "city.kawagoe.saitama.co.jp",
    ],
)
def test_municipal_names_of_the_geographic_type(ps: ProtectedSet, domain: str) -> None:
    v = check(domain, ps)
    assert (v.verdict, v.resembles) == (LOOKALIKE, "city.kawagoe.saitama.jp"), v


@pytest.mark.parametrize(
    "domain",
    [
        "city.kawaguchi.saitama.jp",  # Kawaguchi: another city of Saitama
        "city.kawagoe.saitama.jp",  # the own domain
        "www.city.kawagoe.saitama.jp",
        "town.kawagoe.mie.jp",  # Kawagoe town in Mie: another body
        "city.saitama.jp",  # Saitama City
        "city.chiba.jp",
        "kawagoe.com",
        "pref.saitama.jp",  # the prefecture under its geographic name
    ],
)
def test_real_neighbours_of_a_geographic_name_stay_as_they_are(ps: ProtectedSet, domain: str) -> None:
    assert check(domain, ps).verdict != LOOKALIKE, check(domain, ps)


def test_the_own_city_is_meant_not_the_prefecture_that_is_a_partner(ps: ProtectedSet) -> None:
    for domain in ("city.kawagoe.saitama.com", "city.kawagoe.saitama.ne.jp"):
        v = check(domain, ps)
        assert v.resembles == "city.kawagoe.saitama.jp", v
    # The prefecture's own name, under another suffix, is still the prefecture's.
    assert check("pref.saitama.com", ps).resembles == "pref.saitama.lg.jp"


def test_a_city_is_not_the_same_registrant_as_its_prefecture(ps: ProtectedSet) -> None:
    v = check("city.saitama.lg.jp", ps)
    assert v.verdict == EXTERNAL
    assert "same registrable domain" not in v.reason, v
    assert "pref.saitama.lg.jp" in v.reason, v


@pytest.mark.parametrize(("domain", "resembles"), [("mufj.jp", "mufg.jp"), ("mufp.jp", "mufg.jp")])
def test_a_one_letter_slip_under_jp_is_explained_as_one(domain: str, resembles: str) -> None:
    ps = ProtectedSet.build(partners=[resembles], builtin=False)
    v = check(domain, ps)
    assert (v.verdict, v.resembles) == (LOOKALIKE, resembles), v
    assert "dots" not in v.explanation and "ドット" not in v.explanation_ja, v


def test_the_refusal_shows_the_domain_as_typed_and_keeps_both_languages() -> None:
    """A long explanation (several look-alike letters named) cut the reply where the
    Japanese ran out of room, and the English half was lost; the domain was shown as
    its A-label (xn--e1awo...), which the sender never typed."""
    from dlp.config import DomainSettings
    from dlp.model import Recipient, RecipientClass
    from dlp.policy import recipient_refusal

    ps = ProtectedSet.build(own=["city.example-shi.lg.jp"], partners=["exp.co.jp"])
    for typed in ("ЕХР.СО.JР", "сity.ехаmрlе-ѕhі.lg.jp"):
        v = check(typed, ps)
        assert v.verdict == LOOKALIKE and v.domain.startswith("xn--")
        r = Recipient(f"u@{v.domain}", v.domain, RecipientClass.LOOKALIKE, v.resembles,
                      v.technique, explanation=v.explanation, explanation_ja=v.explanation_ja)  # fmt: skip
        verdict = recipient_refusal(r, DomainSettings())
        assert verdict is not None
        reply = verdict.smtp_message
        assert len(reply.encode("utf-8")) + 4 <= 512
        ja, _, en = reply.partition(" / ")
        assert "の誤りの可能性があります" in ja and "looks like a mistyped" in en, reply
        assert typed.lower() in ja and "xn--" not in reply, reply


@pytest.mark.parametrize(
    ("domain", "resembles"),
    [
        ("exp\u0323.co.jp", "exp.co.jp"),  # a combining dot below, no precomposed form
        ("e\u0337xp.co.jp", "exp.co.jp"),  # a combining solidus overlay
        ("jc\u0185.co.jp", "jcb.co.jp"),  # ƅ, LATIN SMALL LETTER TONE SIX
    ],
)
def test_combining_marks_and_tone_six(ps: ProtectedSet, domain: str, resembles: str) -> None:
    v = check(domain, ps)
    assert (v.verdict, v.resembles, v.technique) == (LOOKALIKE, resembles, "homoglyph"), v


@pytest.mark.parametrize(
    ("domain", "resembles"),
    [
        ("mizuhobank.onmicrosoft.com", "mizuhobank.co.jp"),
        ("smbc.onmicrosoft.com", "smbc.co.jp"),
        ("mhlw.sakura.ne.jp", "mhlw.go.jp"),
        ("mizuhobank-co-jp.onmicrosoft.com", "mizuhobank.co.jp"),
        ("ехр.onmicrosoft.com", "exp.co.jp"),
        ("gmail.onmicrosoft.com", "gmail.com"),
    ],
)
def test_a_protected_name_as_a_tenant_of_a_service_anyone_can_sign_up_to(
    ps: ProtectedSet, domain: str, resembles: str
) -> None:
    v = check(domain, ps)
    assert (v.verdict, v.resembles) == (LOOKALIKE, resembles), v


@pytest.mark.parametrize(
    "domain", ["contoso.onmicrosoft.com", "mail.onmicrosoft.com", "www3.sakura.ne.jp", "abc.xsrv.jp"]
)
def test_other_tenants_stay_external(ps: ProtectedSet, domain: str) -> None:
    assert check(domain, ps).verdict == EXTERNAL
