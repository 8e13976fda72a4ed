"""Patterns over sender-written text answer as their first, backtracking forms did,
in linear time (a long run of tabs or digits once took seconds per line or cell)."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.extract.aligned import _GAP, table_chunks
from dlp.extract.tables import is_value_like

_OLD_GAP = re.compile(r"\S(?:\s*[\u3000\t]|\s{2,})\s*\S")
_OLD_VALUE_LIKE = re.compile(r"^[\s\d\-‐‑–—−ー.,/:()+#*]*\d[\s\d\-‐‑–—−ー.,/:()+#*]*$")


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from([*"ab1 \t\u3000\n\u00a0", "  ", "個"]), max_size=20).map("".join))
def test_gap_is_found_where_it_was(line: str) -> None:
    assert (_GAP.search(line) is None) == (_OLD_GAP.search(line) is None)


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.sampled_from([*"12 -./:()+#*x\n\t", "ー", "１", "①", "年", "−"]), max_size=16).map(
        "".join
    )
)
def test_value_like_is_what_it_was(cell: str) -> None:
    assert is_value_like(cell) == bool(_OLD_VALUE_LIKE.match(unicodedata.normalize("NFKC", cell)))


@pytest.mark.timeout(20)
def test_long_cells_and_lines_cost_linear_time() -> None:
    assert not is_value_like("1" * 200_000 + "x")  # before: ~3 minutes
    assert is_value_like("1" * 200_000)
    line = "氏" + "\t" * 990  # under the 1,000 characters a line may have to be measured
    assert _GAP.search(line) is None  # nothing after the tabs: no gap between two texts
    table_chunks(("名前\t住所\n" + line + "\n") * 4000, "body")  # before: ~30 s
