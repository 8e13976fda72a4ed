"""A "<" that never finds its ">" is text, and costs linear time, not quadratic;
so do long tag names and long runs of blanks."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.extract.html import _TAG, _squeeze_blanks, html_to_text


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "unit", ["<a", "<a b='", '<a b="x" ', "<!x", "<?x", "<script x", "<![CDATA["]
)
def test_many_unclosed_tags_come_back_as_text(unit: str) -> None:
    markup = unit * 100_000  # before: quadratic, hours for this size
    assert html_to_text(markup) == markup


def test_ordinary_tags_still_stripped() -> None:
    markup = '<!DOCTYPE html><p title="個人番号">x</p><table><tr><td>1<td>2</table><?xml v?>'
    assert html_to_text(markup) == "\n個人番号\nx\n1\t2\n"


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "markup",
    [
        "<" + "a" * 200_000 + "<",  # before: a name that is also attributes, ~hours
        "<td" + "a" * 200_000 + "<",
        "x" + " " * 200_000 + "y",  # before: every start inside the blanks retried
        "<p>" + " \t" * 100_000 + "<br>",
    ],
)
def test_long_runs_cost_linear_time(markup: str) -> None:
    html_to_text(markup)


# The patterns as first written (backtracking): the fast ones must give the same text.
_OLD_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9:-]*)((?:[^<>\"']|\"[^<\"]*\"|'[^<']*')*)>|<![^<>]*>|<\?[^<>]*>"
)
_OLD_BLANKS = re.compile(r"[ \t]*\n[ \t\n]*")
_MARKUP = st.lists(
    st.sampled_from([*"<>/!?\"'= \t\nabP1", "<br>", "<td", "title=", "<!--", "-->", "個"]),
    max_size=30,
).map("".join)


@settings(max_examples=1500, deadline=None)
@given(_MARKUP)
def test_possessive_tag_pattern_finds_the_same_tags(markup: str) -> None:
    def groups(p: re.Pattern[str]) -> list[tuple[int, int, tuple[str | None, ...]]]:
        return [(m.start(), m.end(), m.groups()) for m in p.finditer(markup)]

    assert groups(_TAG) == groups(_OLD_TAG)
    assert _squeeze_blanks(markup) == _OLD_BLANKS.sub("\n", markup)


@pytest.mark.parametrize(
    ("markup", "shown"),
    [
        # What the HTML standard's tokenizer (every browser) makes of them.
        ("a<!-->6214 9832 0257", "a6214 9832 0257"),  # an empty comment
        ("a<!--->6214 9832 0257", "a6214 9832 0257"),
        ("a<!-- x --!>6214 9832 0257", "a6214 9832 0257"),  # "--!>" ends a comment
        ("a<![CDATA[x>6214 9832 0257]]>", "a6214 9832 0257]]>"),  # a bogus comment
        ("a<!-- 6214 9832 0257 -->b", "ab"),
    ],
)
def test_comments_end_where_a_browser_ends_them(markup: str, shown: str) -> None:
    """Text a browser shows after an oddly closed comment is never dropped."""
    assert html_to_text(markup) == shown


@pytest.mark.parametrize(
    "hider",
    ['style="display:none"', "hidden", 'style="font-size: 0px"', 'style="DISPLAY: NONE"'],
)
def test_a_digit_hidden_by_its_own_markup_is_read_both_ways(hider: str) -> None:
    """The source holds thirteen digits, the screen shows twelve: both are read."""
    text = html_to_text(f"個人番号 6214<span {hider}>5</span>98320257<br>other")
    lines = text.split("\n")
    assert "個人番号 6214598320257" in lines and "個人番号 621498320257" in lines
    assert lines.count("other") == 1  # only the lines that read differently are added


def test_nothing_hidden_reads_once() -> None:
    markup = '<p style="font-size:0.5em">6214 9832 0257</p><p>hidden gem</p>'
    assert html_to_text(markup).strip() == "6214 9832 0257\nhidden gem"
