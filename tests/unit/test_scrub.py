"""``scrub``: the gentle mask for free text that reviewers still need to read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dlp.detect.mynumber import SCRUB_MASK, check_digit, is_valid, scrub


def _number(base: str) -> str:
    return base + str(check_digit(base))


def test_masks_valid_numbers_in_every_common_shape() -> None:
    n = _number("62149832025")
    for shown in (
        n,
        f"{n[:4]}-{n[4:8]}-{n[8:]}",
        f"{n[:4]}・{n[4:8]}・{n[8:]}",
        f"{n[:4]}\u3000{n[4:8]}\u3000{n[8:]}",
    ):
        assert scrub(f"個人番号 {shown} の件") == f"個人番号 {SCRUB_MASK} の件"
    full = n.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert scrub(full) == SCRUB_MASK


def test_leaves_what_is_no_my_number_readable() -> None:
    # A queue id / timestamp Message-ID and longer runs must stay matchable in the MTA's log.
    for text in (
        "<20261126101010.4F2A1@mail.example.lg.jp>",
        "1234567890189",
        "123456789012",
        "TEL 03-1234-5678",
    ):
        assert scrub(text) == text


@given(st.text(alphabet="0123456789 -abc", max_size=60))
def test_no_valid_twelve_digit_group_survives(text: str) -> None:
    out = scrub(text)
    digits_runs = [
        r for r in "".join(c if c.isdigit() else " " for c in out).split() if len(r) == 12
    ]
    assert not any(is_valid(r) for r in digits_runs)
