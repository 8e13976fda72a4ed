"""Picture hex in RTF is skipped whole lines at a time, in linear time."""

from __future__ import annotations

import pytest

from dlp.extract.rtf import _HEX_BLOCK


@pytest.mark.timeout(20)
def test_one_long_hex_line_is_not_quadratic() -> None:
    source = "a" * 1_000_000  # no line break: not a block; before, hours to find out
    assert _HEX_BLOCK.sub("", source) == source


def test_block_of_hex_lines_is_removed() -> None:
    hex_line = "0123456789abcdef" * 4 + "\n"
    source = "{\\pict\\pngblip\n" + hex_line * 10 + "}after 1234"
    assert _HEX_BLOCK.sub("", source) == "{\\pict\\pngblip\n}after 1234"
