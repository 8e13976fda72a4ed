"""A "<" that never finds its ">" is text, and costs linear time, not quadratic."""

from __future__ import annotations

import pytest

from dlp.extract.html import html_to_text


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
