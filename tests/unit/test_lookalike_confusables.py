"""The committed homoglyph table is what the generator makes from the Unicode data."""

from __future__ import annotations

from importlib import resources

import pytest

from dlp.detect import confusables
from dlp.detect.confusables import skeleton


def test_committed_table_matches_the_generator() -> None:
    pytest.importorskip("confusable_homoglyphs")
    committed = resources.files("dlp").joinpath("data/confusables.txt").read_text("utf-8")
    assert confusables.generate() == committed, (
        "dlp/data/confusables.txt is stale: python -m dlp.detect.confusables > dlp/data/confusables.txt"
    )


def test_table_covers_the_scripts_attackers_use() -> None:
    assert confusables.table_size() > 250
    # Cyrillic, Greek, Armenian look-alikes of Latin letters
    assert skeleton("раураӏ") == skeleton("paypal")
    assert skeleton("gοοgle") == "google"  # Greek omicron
    assert skeleton("օ") == "o"  # Armenian oh


@pytest.mark.parametrize(
    ("a", "b"),
    [("grnail", "gmail"), ("g00gle", "google"), ("paypa1", "paypal"), ("vvord", "word"),
     ("icioud", "icloud"), ("gmàil", "gmail"), ("ԍmail", "gmail")],
)  # fmt: skip
def test_equal_skeletons(a: str, b: str) -> None:
    assert skeleton(a) == skeleton(b)


@pytest.mark.parametrize(("a", "b"), [("gmail", "gmial"), ("exp", "exq"), ("か", "が")])
def test_different_skeletons(a: str, b: str) -> None:
    assert skeleton(a) != skeleton(b)
