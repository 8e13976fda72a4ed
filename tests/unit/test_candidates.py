"""The compiled candidate scanner gives the answers of its regex definition.

dlp/detect/candidates.py defines the shapes by regex and applies them the slow way
(``_py_*``); dlp/detect/_candidates.c does the same in one pass.  Random text built
from the characters that matter (digits of several scripts, every separator, box gaps,
invisible characters, letters, kanji) must give both the same survivors, offsets and
counts.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.detect import candidates, native
from dlp.detect.base import SEPARATORS, Words, literal
from dlp.detect.mynumber import build_detector, check_digit

pytestmark = pytest.mark.skipif(
    not candidates.COMPILED,
    reason="dlp.detect._candidates is not built in this checkout (pip install -e . builds it)",
)

DIGITS = "0123456789０１２３４５６７８９٠١٢٣٤٥٦٧٨٩०१२३४५६७८९𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗"
OTHERS = SEPARATORS + candidates.BOX_GAPS + "\n,:/aZ番号個人ー\u200b\u00ad\ufe0f①½"


# Loose gaps (a row of cells, a wrapped line, spaced dashes), and gaps too long for one.
LOOSE_SAMPLES = ("\t", "\n", "\r\n", " - ", ",", " / ", "、", "\t\t\t\t", " \n ")


def _luhn_digit(base: str) -> str:
    return next(str(c) for c in range(10) if candidates.luhn_ok(base + str(c)))


@st.composite
def valid(draw: st.DrawFn) -> str:
    """A number that passes its check (My Number or Luhn), in some script, grouped
    or not: without these the random pieces would rarely hold a survivor."""
    if draw(st.booleans()):
        base = draw(st.text(alphabet="0123456789", min_size=11, max_size=11))
        d = base + str(check_digit(base))
        cuts = (4, 8)
    else:
        base = draw(st.text(alphabet="0123456789", min_size=13, max_size=18))
        d = base + _luhn_digit(base)
        cuts = draw(st.sampled_from([(4, 8, 12), (4, 10), (4, 8)]))
    offset = draw(st.sampled_from([0, 0xFF10 - 48, 0x0660 - 48, 0x1D7CE - 48]))
    d = "".join(chr(ord(c) + offset) for c in d)
    if draw(st.booleans()):
        seps = draw(st.sampled_from([SEPARATORS, candidates.BOX_GAPS, LOOSE_SAMPLES]))
        sep = draw(st.sampled_from(seps))
        if seps == candidates.BOX_GAPS and draw(st.booleans()):
            return sep.join(d)
        parts = [d[a:b] for a, b in zip((0, *cuts), (*cuts, len(d)), strict=True)]
        return sep.join(parts)
    return d


pieces = st.one_of(
    st.text(alphabet=DIGITS, min_size=1, max_size=20),
    st.text(alphabet=OTHERS, min_size=1, max_size=3),
    valid(),
)
texts = st.lists(pieces, max_size=40).map("".join)


@settings(max_examples=1500, deadline=None)
@given(texts)
def test_mynumber_candidates_match_the_regex(text: str) -> None:
    assert candidates._C is not None
    assert candidates._C.mynumber(text) == candidates._py_mynumber(text)


@settings(max_examples=1500, deadline=None)
@given(texts)
def test_card_candidates_match_the_regex(text: str) -> None:
    assert candidates._C is not None
    assert candidates._C.cards(text) == candidates._py_cards(text)


def _number(rng: random.Random) -> str:
    base = "".join(rng.choice("0123456789") for _ in range(11))
    return base + str(check_digit(base))


def test_valid_numbers_in_every_shape_survive() -> None:
    """Many valid numbers, in every shape the regex takes: the random strings above
    rarely hold one, so check the survivors themselves here."""
    rng = random.Random(5)
    parts = []
    for i in range(300):
        n = _number(rng)
        shape = i % 5
        if shape == 1:
            n = f"{n[:4]}{rng.choice(SEPARATORS)}{n[4:8]}{rng.choice(SEPARATORS)}{n[8:]}"
        elif shape == 2:
            n = n.translate({ord("0") + k: 0xFF10 + k for k in range(10)})
        elif shape == 3:
            n = rng.choice(candidates.BOX_GAPS).join(n)
        elif shape == 4:
            n = n.translate({ord("0") + k: 0x1D7CE + k for k in range(10)})  # astral
        parts.append(f"個人番号 {n} です\n")
    text = "".join(parts)
    found = candidates.mynumber(text)
    assert found == candidates._py_mynumber(text)
    assert len(found[0]) == 300
    assert found[1] == 240  # boxes are not counted among the shaped


def test_invisible_characters_are_reported() -> None:
    assert candidates.mynumber("abc")[2] is False
    assert candidates.mynumber("個人番号 1234\u200b5678")[2] is True
    assert candidates.mynumber("ok \ufe0f")[2] is True


def test_not_a_string_is_refused() -> None:
    assert candidates._C is not None
    with pytest.raises(TypeError):
        candidates._C.mynumber(b"123456789012")


WORDS = (
    "個人番号",
    "個人番号カード",
    "番号",
    "my number",
    "My Number",
    "number",
    "tel",
    "TEL",
    "Tel",
    "ー",
)


@settings(max_examples=800, deadline=None)
@given(
    st.lists(
        st.sampled_from([*WORDS, "a", "Z", " ", "個人", "num", "my", "番", "\U0001d7ce"]),
        max_size=30,
    ).map("".join),
    st.integers(-3, 40),
    st.integers(-1, 60),
    st.booleans(),
)
def test_words_are_found_as_the_alternation_finds_them(
    text: str, lo: int, hi: int, guard: bool
) -> None:
    """Leftmost first, the first word in order at one position, non-overlapping, and
    with ``guard`` an English word not inside another: what ``re`` does with the
    alternation base.Words compiles, window bounds included."""
    words = Words(WORDS, guard=guard)
    assert words._c is not None and words.pattern is not None
    end = len(text) if hi < 0 else min(hi, len(text))
    expected = [
        (m.start(), m.end(), m.group()) for m in words.pattern.finditer(text, max(lo, 0), end)
    ]
    assert words.spans(text, lo, hi) == expected
    assert words.search(text, lo, hi) == bool(expected)
    assert words.last_end(text, lo, hi) == (expected[-1][1] if expected else None)


def test_an_empty_word_list_finds_nothing() -> None:
    assert Words(()).spans("anything") == []
    assert Words(()).search("anything") is False


def _date_number(rng: random.Random) -> str:
    base = f"2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randrange(1000):03d}"
    return base + str(check_digit(base))


WEIGHED_WORDS = (
    *("個人番号", "マイナンバー", "My Number", "my number", "氏名", "住所", "生年月日"),
    *("電話", "注文番号", "TEL", "tel", "法人番号", "ID", "@", "x", "81", "8190"),
)


def _mobile_number(rng: random.Random) -> str:
    base = "8190" + "".join(rng.choice("0123456789") for _ in range(7))
    return base + str(check_digit(base))


@st.composite
def scored_text(draw: st.DrawFn) -> str:
    """Numbers among keywords, context words, labels, glue and filler of every length,
    so that windows, nearest words and labels fall on every side of a number."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    piece = st.one_of(
        valid(),
        st.builds(lambda: _date_number(rng)),
        st.builds(lambda: _mobile_number(rng)),
        st.sampled_from(WEIGHED_WORDS),
        st.text(alphabet="あいう 　\n,:-", min_size=1, max_size=40),
    )
    return "".join(draw(st.lists(piece, max_size=25)))


@settings(max_examples=600, deadline=None)
@given(
    scored_text(),
    st.sampled_from([5, 20, 300]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([(), ("職員番号",)]),
)
def test_compiled_weighing_matches_the_python_twin(
    text: str, window: int, label_kw: bool, hint: bool, extra: tuple[str, ...]
) -> None:
    """Dense and sparse keyword lookups, the chance model, negative labels, dates,
    mobile numbers, glue, boxes and the header keyword: the same confidences, reasons
    and gaps from C as from ``_score_py``."""
    det = build_detector(window, extra)
    assert det.compiled is not None
    survivors, shaped, invisible = candidates.mynumber(text)
    if invisible:
        return
    c_rows = det._score_c(text, list(survivors), label_kw, hint, shaped)
    assert c_rows == det._score_py(text, list(survivors), label_kw, hint, shaped)


def test_compiled_weighing_matches_on_dense_structured_text() -> None:
    """Hundreds of numbers in one chunk (the dense path and the chance model)."""
    rng = random.Random(11)
    rows = []
    for i in range(400):
        n = _number(rng) if i % 3 else _date_number(rng)
        label = rng.choice(["", "個人番号 ", "電話 ", "氏名 山田 ", "ID"])
        rows.append(f"{i},{label}{n},{rng.choice(['東京', 'TEL 03', ''])}\n")
    text = "".join(rows)
    det = build_detector()
    assert det.compiled is not None
    survivors, shaped, _ = candidates.mynumber(text)
    for label_kw in (False, True):
        c_rows = det._score_c(text, list(survivors), label_kw, False, shaped)
        assert c_rows == det._score_py(text, list(survivors), label_kw, False, shaped)
        assert len(c_rows) > 200


def test_weighing_refuses_spans_outside_the_text() -> None:
    det = build_detector()
    assert det.compiled is not None
    for bad in [(5, 99, "123456789018", 0, 0), (-1, 11, "123456789018", 0, 0), ("a", 1, "", 0, 0)]:
        with pytest.raises((ValueError, TypeError)):
            det._score_c("short text", [bad], False, False, 1)  # type: ignore[list-item]


# Text whose every character is below U+0100 is stored one byte a character, and
# the scans test eight of those at a time: long runs without a digit or a gap,
# at every alignment, with what stops them (digits, U+00AD, bytes >= 0x80) inside.
def _ascii_number(digits: str) -> str:
    if len(digits) == 11:
        return digits + str(check_digit(digits))
    return digits + _luhn_digit(digits)


latin1 = st.lists(
    st.one_of(
        st.text(alphabet="0123456789", min_size=1, max_size=20),
        st.sampled_from([11, 15])
        .flatmap(lambda k: st.text(alphabet="0123456789", min_size=k, max_size=k))
        .map(_ascii_number),
        st.text(alphabet=" \t\n-,:/.aZé\u00ad\u00a0½²¹³¼¾\x7f\x80\xff", min_size=1, max_size=4),
        st.integers(1, 40).map(lambda k: "x" * k),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=2000, deadline=None)
@given(latin1)
def test_one_byte_text_gives_the_same_answers(text: str) -> None:
    assert candidates._C is not None
    assert candidates._C.mynumber(text) == candidates._py_mynumber(text)
    assert candidates._C.cards(text) == candidates._py_cards(text)


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from([" ", "\t"]), st.integers(1, 20).map(lambda k: "x" * k)),
        max_size=20,
    )
)
def test_one_byte_column_gap_at_every_alignment(parts: list[str]) -> None:
    assert candidates._C is not None
    text = "".join(parts)
    assert candidates._C.column_gap(text) is ("  " in text or "\t" in text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=" \t\u3000a山\n𝟎", max_size=12))
def test_column_gap_is_the_python_test(text: str) -> None:
    assert candidates._C is not None
    python = ("  " in text) or "\u3000" in text or "\t" in text
    assert candidates._C.column_gap(text) is python


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=200), st.text(max_size=60))
def test_any_text_at_all(text: str, other: str) -> None:
    """Whatever a message decodes to (lone surrogates, astral characters, controls)
    and whatever words a configuration names (``extra_keywords = ["𠮷田番号"]``), the
    compiled scanner answers as its twins do and never fails."""
    assert candidates._C is not None
    assert candidates._C.mynumber(text) == candidates._py_mynumber(text)
    assert candidates._C.cards(text) == candidates._py_cards(text)
    words = Words([w for w in (other[:3], other[3:9], "番号", "𠮷田") if w])
    expected = [] if words.pattern is None else [
        (m.start(), m.end(), m.group()) for m in words.pattern.finditer(text)
    ]  # fmt: skip
    assert words.spans(text) == expected


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.sampled_from(["icens", "ension", "licension", "年金", "x", " ", "A"]), max_size=12
    ).map("".join),
    st.booleans(),
)
def test_present_sees_overlapping_words(text: str, guard: bool) -> None:
    """Every word that occurs, even where another word's occurrence overlaps it."""
    words = Words(["icens", "ension", "年金", "Ae"], guard=guard)
    twin = tuple(w for w in words.words if re.search((literal if guard else re.escape)(w), text))
    assert words.present(text) == twin


def test_the_gate_sees_a_stem_behind_another() -> None:
    """In "licension" the licence stem ``icens`` overlaps the pension stem ``ension``:
    both detectors must be asked (a hidden stem would skip its detector)."""
    from dlp.detect.registry import NAMES, build_gate

    hits = build_gate(NAMES).hits("licension 1234-567890")
    assert {"drivers_license", "pension_number"} <= hits


def test_a_module_from_other_sources_is_not_used(tmp_path: Path) -> None:
    """A compiled module whose interface differs (the C file changed and ``make`` was
    not run) is left aside for the Python twins, and the reason is given."""
    pkg = tmp_path / "dlp" / "detect"
    pkg.mkdir(parents=True)
    (tmp_path / "dlp" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "_candidates.py").write_text("API = 0\n")
    native_src = Path(native.__file__).read_text()
    (pkg / "native.py").write_text(native_src)
    code = "from dlp.detect import native; print(native.COMPILED, native.STATUS)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == f"False built from other sources (interface 0, expected {native.API})"
    assert native.COMPILED and native.STATUS == "compiled"
