"""``scrub`` and ``redact``: the one mask for every string that leaves the scanner.

The property tests build My Numbers in every shape the detector accepts and many it
does not (yet), embed them in random text, and check that after masking no
checksum-valid twelve-digit run is left in any normalisation a reader or a tool could
apply: the text as is (digits folded as the detector's ``\\d`` sees them), NFKC,
invisible characters dropped, spaces dropped (one digit per cell joined), separators
dropped, everything dropped.  The normalisations are written here independently of
``dlp.detect.numchars``: only the separators the documentation promises are used.
"""

from __future__ import annotations

import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dlp.detect.mynumber import SCRUB_MASK, build_detector, check_digit, redact, scrub
from dlp.model import TextChunk


def _number(base: str) -> str:
    return base + str(check_digit(base))


N = _number("62149832025")  # 621498320257

# Separators the docs promise (docs/sendlog.md, "What is masked").
HYPHENS = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff0d\u30fc\uff70\ufe63\u2043\u301c\uff5e"
DOTS = ".\uff0e\u30fb\uff65\u00b7\u2027\u3002"
SPACES = " \t\u00a0\u3000\u2009\u202f\n"
CELLS = ",\uff0c\u3001|\uff5c;_'\"\u2018\u2019\u201c\u201d"
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a\u202c\u2066\u2069\u034f\ufe0f"
SEPARATORS = HYPHENS + DOTS + CELLS

# Ways to write one digit: ASCII, full-width, Arabic-Indic, Devanagari, mathematical
# bold, circled, superscript (the last three are not \d; NFKC makes them digits).
DIGIT_FORMS = (
    "0123456789",
    "０１２３４５６７８９",
    "٠١٢٣٤٥٦٧٨٩",
    "०१२३४५६७८९",
    "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗",
    "⓪①②③④⑤⑥⑦⑧⑨",
    "⁰¹²³⁴⁵⁶⁷⁸⁹",
)


# --- the normalisations -------------------------------------------------------------


def _fold(text: str) -> str:
    return "".join(str(int(c)) if c.isdecimal() else c for c in text)


def _drop(text: str, chars: str) -> str:
    return text.translate({ord(c): None for c in chars})


def _invisible(c: str) -> bool:
    return unicodedata.category(c) in ("Cf", "Mn", "Me")


def normalisations(text: str) -> list[str]:
    nfkc = _fold(unicodedata.normalize("NFKC", text))
    seen = "".join(c for c in nfkc if not _invisible(c))
    no_space = "".join(c for c in seen if not c.isspace())
    no_sep = _drop(seen, SEPARATORS + unicodedata.normalize("NFKC", SEPARATORS))
    bare = "".join(c for c in no_sep if not c.isspace())
    return [_fold(text), nfkc, seen, no_space, no_sep, bare]


def _valid(d: str) -> bool:
    return d[-1] == str(check_digit(d[:11]))


def valid_runs(text: str) -> list[tuple[int, str]]:
    """Checksum-valid maximal twelve-digit ASCII runs in any normalisation: (which, run)."""
    found = []
    for k, norm in enumerate(normalisations(text)):
        run = ""
        for c in norm + "x":
            if "0" <= c <= "9":
                run += c
                continue
            if len(run) == 12 and _valid(run):
                found.append((k, run))
            run = ""
    return found


# --- numbers in every shape ----------------------------------------------------------


JOINERS = " /／_*~〜|｜[]【】「」()（）#＃+:;'\"&%$!?.,、。・=<>"
"""Characters no letter or digit that people put between groups of a number."""


@st.composite
def numbers(draw: st.DrawFn) -> str:
    base = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=11, max_size=11)))
    digits = _number(base)
    form = draw(st.sampled_from((*DIGIT_FORMS, "mixed")))
    if form == "mixed":
        shown = [draw(st.sampled_from(DIGIT_FORMS))[int(d)] for d in digits]
    else:
        shown = [form[int(d)] for d in digits]
    shape = draw(st.sampled_from(["plain", "4-4-4", "cells", "split", "invisible", "joined"]))
    sep = st.sampled_from(SEPARATORS + SPACES)
    if shape == "plain":
        return "".join(shown)
    if shape == "4-4-4":
        a, b = draw(sep), draw(sep)
        return "".join(shown[:4]) + a + "".join(shown[4:8]) + b + "".join(shown[8:])
    if shape == "cells":  # one digit per cell: tabs, commas, quoted CSV, a table
        gap = draw(st.sampled_from(["\t", " ", "\u3000", ",", '","', "|", " | ", "\t\t"]))
        return gap.join(shown)
    if shape == "joined":
        # groups of any size joined by the same one to three characters that are no
        # letter or digit, as the detector reads them right behind a keyword
        # (2071 / 8728 / 3349, [5406][2767][8422], 「6604」「8764」「7594」, 6214_9832_0257)
        joiner = draw(st.text(alphabet=JOINERS, min_size=1, max_size=3))
        cuts = sorted(draw(st.sets(st.integers(1, 11), min_size=1, max_size=5)))
        pieces = ["".join(shown[a:b]) for a, b in zip([0, *cuts], [*cuts, 12], strict=True)]
        return joiner.join(pieces)
    gaps = st.text(alphabet=SEPARATORS + SPACES + INVISIBLE, min_size=1, max_size=3)
    out = shown[0]
    for c in shown[1:]:
        if shape == "invisible":
            out += draw(st.text(alphabet=INVISIBLE, max_size=2)) + c
        else:  # digits spread over cells of any width
            out += (draw(gaps) if draw(st.booleans()) else "") + c
    return out


surrounding = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="0123456789 -\t,.個人番号abc@", max_size=12),
)


@settings(max_examples=600, deadline=None)
@given(numbers(), surrounding, surrounding, st.booleans())
@example(f"{N[:4]}\t{N[4:8]}\t{N[8:]}", "", "", False)
@example("\t".join(N), "件名 ", " の件", True)
@example("".join("⓪①②③④⑤⑥⑦⑧⑨"[int(d)] for d in N), "1", "", False)
@example(N, "\u2460", "", False)
# Issue 15 shapes the detector reads: bidi marks around the groups, a soft hyphen and
# word joiners inside, the three cells of an HTML row (tab-separated by html_to_text).
@example(f"\u202b{N[:4]}\u202c-\u200f{N[4:8]}\u200e-{N[8:]}", "", "", True)
@example("\u00ad".join(N[:6]) + "\u2060".join(N[6:]), "", "", True)
@example(f"{N[:4]} / {N[4:8]} / {N[8:]}", "", "", True)  # a review of 3 Dec (fourth round)
@example(f"{N[:6]}\n{N[6:]}", "", "", True)  # wrapped at a line end behind the keyword
@example(f"{N[:6]}-\r\n>> {N[6:]}", "", "", True)
@example(f"[{N[:4]}][{N[4:8]}][{N[8:]}]", "", ".txt", False)
@example(f"「{N[:4]}」「{N[4:8]}」「{N[8:]}」", "", "", True)
@example(f"12 / {N[:4]} / {N[4:8]} / {N[8:]}", "No. ", "", False)
@example(
    f"\t{N[:4]}\t{N[4:8]}\t{N[8:]}\n", "\n", "\t2024", True
)  # ① then a \d run: 13 digits after NFKC, 12 before
def test_no_number_survives_any_normalisation(
    number: str, before: str, after: str, keyword: bool
) -> None:
    text = ("個人番号 " if keyword else "") + before + number + after
    assert valid_runs(scrub(text)) == []
    assert valid_runs(redact(text)) == []
    # The detector itself, with a keyword next to it, finds nothing left.
    chunk = TextChunk("個人番号 " + scrub(text), "header:Subject")
    assert build_detector().find(chunk) == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_scrub_is_idempotent_and_redact_covers_it(text: str) -> None:
    once = scrub(text)
    assert scrub(once) == once
    assert valid_runs(once) == [] and valid_runs(redact(text)) == []
    assert redact(redact(text)) == redact(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789 -\t,.\u200b①０abc", max_size=60))
def test_digit_rich_text_keeps_no_number(text: str) -> None:
    assert valid_runs(scrub(text)) == []
    assert valid_runs(redact(text)) == []


# --- what the reviewer still sees -----------------------------------------------------


_KANJI = str.maketrans("0123456789", "〇一二三四五六七八九")


def test_every_common_shape_becomes_the_one_mask() -> None:
    full = N.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    for shown in (
        N,
        f"{N[:4]}-{N[4:8]}-{N[8:]}",
        f"{N[:4]}・{N[4:8]}・{N[8:]}",
        f"{N[:4]}\u3000{N[4:8]}\u3000{N[8:]}",
        f"{N[:4]}\t{N[4:8]}\t{N[8:]}",
        "\t".join(N),  # one digit per cell, copied from a spreadsheet
        " ".join(N),
        '","'.join(N),
        "\u200b".join(N),  # zero-width spaces inside
        f"{N[:4]}\u00ad{N[4:8]}\u200e{N[8:]}",  # soft hyphen, left-to-right mark
        full,
        f"{full[:4]}ー{full[4:8]}ー{full[8:]}",
        f"{N[:3]},{N[3:6]},{N[6:9]},{N[9:]}",  # Excel's thousands separators
        N[:6].translate(_KANJI) + N[6:],  # kanji numerals mixed with digits
        f"{N[:4]} {N[4:8]} {N[8:]}".translate(_KANJI),
        N[:4].translate(_KANJI) + full[4:],
    ):
        assert scrub(f"個人番号 {shown} の件") == f"個人番号 {SCRUB_MASK} の件", repr(shown)


def test_addresses_and_replies_keep_their_shape() -> None:
    assert scrub(f"{N}@example.com") == f"{SCRUB_MASK}@example.com"
    assert (
        scrub(f"550 5.1.1 <{N}@example.com>: Recipient address rejected")
        == f"550 5.1.1 <{SCRUB_MASK}@example.com>: Recipient address rejected"
    )


def test_ascii_reply_with_short_runs_before_and_after_the_number() -> None:
    # Plain ASCII takes its own path: short runs (a status code, a date) next to
    # the number, in the same run or in runs of their own, must not hide it.
    for shown in (N, f"{N[:4]}-{N[4:8]}-{N[8:]}", " ".join(N), "\t".join(N)):
        for text in (
            f"250 2.0.0 Ok: 2026-11-26 7 {shown} queued as 4F2A1",
            f"250 2.0.0 Ok: 12 x 3 {shown}",
            f"{shown} 9 8",
        ):
            masked = scrub(text)
            assert valid_runs(masked) == [] and SCRUB_MASK in masked, text
            assert valid_runs(redact(text)) == [], text


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["1", "23", "456", N, " ", "-", ".", "\t", "a", "Z:"]), max_size=30)
)
def test_ascii_digit_runs_keep_no_number(parts: list[str]) -> None:
    text = "".join(parts)
    assert valid_runs(scrub(text)) == []
    assert valid_runs(redact(text)) == []


def test_leaves_what_is_no_my_number_readable() -> None:
    # Message-IDs and queue ids must stay matchable in the MTA's log; longer runs,
    # invalid check digits, phone numbers and times are no My Number.
    for text in (
        "<20261126101010.4F2A1@mail.example.lg.jp>",
        "<1732612345.123456.1@host>",
        "4dKq2X1z3Jz9",
        "1234567890189",
        f"2026{N}",
        "123456789012",
        "TEL 03-1234-5678",
        "2026-11-26 10:10:10",
        "192.168.10.200",
        "",
    ):
        assert scrub(text) == text


def test_message_id_keeps_the_digits_that_are_no_number() -> None:
    assert scrub(f"<20261126.{N}.x@host>") == f"<20261126.{SCRUB_MASK}.x@host>"


def test_redact_stars_long_runs_in_every_shape() -> None:
    assert redact("件名 6214 9832 0257 と 2026年") == "件名 **** **** **** と 2026年"
    assert redact("名簿_621498320257.csv") == "名簿_************.csv"
    assert redact("件名 " + "\t".join(N)) == "件名 " + "\t".join("*" * 12)
    assert redact("1\u200b2\u200b3\u200b4\u200b5\u200b6\u200b7\u200b8 と 12") == (
        "*\u200b*\u200b*\u200b*\u200b*\u200b*\u200b*\u200b* と 12"
    )
    assert redact("第3回 1234567") == "第3回 1234567"  # seven digits: kept


def test_json_log_line_masks_every_field_as_scrub_tree_does() -> None:
    import json
    import logging

    from dlp.sendlog.redact import scrub_tree
    from dlp.smtp.gateway import JsonFormatter

    fields = {
        "event": "message",
        "recipient": f"{N}@example.com",
        "reply": f"250 2.0.0 Ok: dlp-3fa9c0e1b7d24a6f relayed (queued as {N[:4]}-{N[4:8]}-{N[8:]})",
        "client": "192.168.100.200",  # an IP address: kept, twelve digits or not
        "client_address": f"x{N}",  # not an IP address: masked
        "reasons": [f"個人番号 {N}", "ok"],
        "nested": {"inner": N, N: 1},
        "empty": [],
        "size": 20480,
        "ms": 0.5,
        "flag": True,
        "none": None,
        N: "a key with a number",
        7: "a key that is no string",
    }
    rec = logging.LogRecord("dlp.smtp", logging.INFO, __file__, 1, "message", None, None)
    rec.dlp = fields
    out = json.loads(JsonFormatter().format(rec))
    expected = json.loads(json.dumps(scrub_tree(fields, keep=frozenset())))
    assert {k: v for k, v in out.items() if k not in ("ts", "level", "logger", "msg")} == expected
    assert N not in json.dumps(out, ensure_ascii=False)
    assert out["client"] == "192.168.100.200"


def test_the_gateways_own_audit_keys_are_never_masked() -> None:
    """Hex keys held a twelve-digit run with a valid check digit about once in
    2,600 (``dlp-0a794879137493ef``): that key was logged and recorded masked,
    and no longer matched the reply, the next hop's log or the hold queue."""
    from dlp.smtp.gateway import _own_key

    keys = {_own_key() for _ in range(20000)}
    assert len(keys) == 20000
    for key in keys:
        assert scrub(key) == key and redact(key) == key
        assert not any(c.isdigit() for c in key)
    assert scrub("dlp-0a794879137493ef") != "dlp-0a794879137493ef"  # the old shape could be
