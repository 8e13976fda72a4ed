"""The scanner's shortcuts give what the long way gives.

* Chunks with no digit character are skipped: every per-chunk detector it skips
  them for finds only values that hold a digit, and the skip test sees every
  digit character a detector reads (dlp/scanner.py ``_VALUES_HOLD_DIGITS``).
* ``keywords`` asks the stem-gated detectors only when one of their stems occurs:
  the same set as asking every detector."""

from __future__ import annotations

import email.message

from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.config import ScanSettings
from dlp.detect import (
    bank_account,
    credit_card,
    drivers_license,
    mynumber,
    passport,
    pension_number,
    residence_card,
)
from dlp.detect.numchars import DIGITS
from dlp.detect.registry import NAMES, build_detectors
from dlp.model import TextChunk
from dlp.scanner import _ANY_DIGIT, _VALUES_HOLD_DIGITS, _state, scan_message

NUMBER = "621498320257"  # a valid My Number (check digit 7)

_KEYWORDS = (
    *mynumber.KEYWORDS,
    *credit_card.KEYWORDS,
    *drivers_license.KEYWORDS,
    *residence_card.KEYWORDS,
    *passport.KEYWORDS,
    *pension_number.KEYWORDS,
    *bank_account.KEYWORDS,
)
# Everything a value could be made of except digits: letters (ASCII, full-width,
# look-alikes of digits), kanji and roman numerals, every kind of separator.
_PIECES = [
    *"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    *"ＡＢＣＴＫＯｌＩ",
    *"一二三四五六七八九十〇零壱弐参百千万",
    *"ⅠⅡⅫⅹ",
    *" \t\n-‐ー－・.,:/()#*　",
    "OO",
    "lI",
    *_KEYWORDS,
]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=80).map("".join)


def test_every_detector_listed_exists() -> None:
    assert _VALUES_HOLD_DIGITS.issubset(NAMES)
    # The table detector is the only one left out: it reads whole tables, and
    # the scanner hands it every table whatever the digits.
    assert set(NAMES) - _VALUES_HOLD_DIGITS == {"roster"}


@settings(max_examples=400, deadline=None)
@given(_TEXT, st.sampled_from([None, "個人番号", "カード番号", "口座番号", "旅券番号"]))
def test_no_listed_detector_finds_a_value_without_a_digit(text: str, label: str | None) -> None:
    assert not _ANY_DIGIT.search(text)
    for d in build_detectors(tuple(sorted(_VALUES_HOLD_DIGITS))):
        assert not d.find(TextChunk(text, "body", label), context_hint=True), d.name


def test_the_skip_test_sees_every_digit_character() -> None:
    for lo, hi in DIGITS:
        for cp in range(lo, hi + 1):
            assert _ANY_DIGIT.search(chr(cp)), hex(cp)
    for c in "0９١۹߀०৯๙𝟎𝟗":  # \d in many scripts, astral digits
        assert _ANY_DIGIT.search(f"個人番号{c}")
    assert not _ANY_DIGIT.search("個人番号😀")  # an emoji holds no digit


def _mail(body: str) -> bytes:
    m = email.message.EmailMessage()
    m["From"] = "a@example.lg.jp"
    m["To"] = "b@example.com"
    m["Subject"] = "ご連絡"
    m.set_content(body)
    return m.as_bytes()


def test_numbers_in_other_scripts_are_still_found() -> None:
    settings_ = ScanSettings()
    arabic = NUMBER.translate({ord("0") + i: 0x0660 + i for i in range(10)})
    wide = NUMBER.translate({ord("0") + i: 0xFF10 + i for i in range(10)})
    for shown in (NUMBER, arabic, wide):
        report = scan_message(_mail(f"お世話になっております。\n個人番号：{shown}\n"), settings_)
        assert report.summary("mynumber").total == 1, shown
    assert (
        scan_message(_mail("お世話になっております。\n個人番号はまだです。\n"), settings_)
        .summary("mynumber")
        .total
        == 0
    )


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from([*_PIECES, "0", "١", "regards", "お世話になっております。"]), max_size=40
    ).map("".join)
)
def test_keywords_are_every_detectors_own_answer(text: str) -> None:
    state = _state(ScanSettings())
    assert state.stem_gated  # the shortcut is in use
    assert state.keywords(text) == frozenset(d.name for d in state.dets if d.has_keyword(text))
