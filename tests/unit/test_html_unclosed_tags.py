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
