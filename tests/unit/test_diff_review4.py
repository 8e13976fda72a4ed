"""Problems a review of this session's own diff (3 Dec 2026, fourth round) found in
the fixes of that session: a quadratic regex on the serving loop, second-look rules
that let clearly labelled numbers through, a quadratic lower-casing, the BER walker's
re-walks, personal bank accounts taken for companies', the part cap counting SQL
comments, a mask that missed wrapped kanji numerals, single-quoted spin counts."""

from __future__ import annotations

import time

import pytest

from dlp.detect.mynumber import build_detector, scrub
from dlp.model import Confidence, TextChunk

N = "621498320257"


def conf(text: str) -> Confidence | None:
    found = build_detector().find(TextChunk(text, "body"))
    return max((m.confidence for m in found), key=lambda c: c.rank, default=None)


def test_unclosed_cells_do_not_make_the_html_reader_quadratic() -> None:
    from dlp.extract.html import html_to_text

    markup = "<table><tr><td>x</td></tr></table><br>" + "<td " * 60000
    started = time.monotonic()
    html_to_text(markup)
    assert time.monotonic() - started < 1.0
    assert "個人 番号" in html_to_text("<table><tr><th>個人<br>番号</th></tr></table>")


@pytest.mark.parametrize(
    "text",
    [
        f"氏名/My Number: {N}",
        f"My Number-{N}",
        f'{{"employee.my_number": "{N}"}}',
        f"person.MyNumber = '{N}'",
        f"マイナンバー：{N}\n円滑な手続きのため",
        f"個人番号 {N}　円山町在住",
    ],
)
def test_a_keyword_right_before_the_number_keeps_it_high(text: str) -> None:
    assert conf(text) is Confidence.HIGH, text


def test_many_english_keyword_rows_stay_linear() -> None:
    body = "".join(f"my number: {N}\n" for _ in range(8000))
    started = time.monotonic()
    build_detector().find(TextChunk(body, "body"))
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "text",
    [
        "普通 1234567（ヤマダ ユイ）",
        "普通 1234567（ヤマダ ケンゴ）",
        "普通 1234567（名義 サトウ ハルカ）",
        "普通 1234567 サトウ メイ（勤務先 株式会社テスト）",
    ],
)
def test_a_persons_account_is_not_taken_for_a_companys(text: str) -> None:
    from dlp.detect.bank_account import build

    assert build().find(TextChunk(text, "body")), text


def test_sql_comments_are_no_mime_parts() -> None:
    from dlp.mime import parse_message

    body = "".join(f"-- comment {i}\nSELECT {i};\n" for i in range(10050))
    raw = f"From: a@b\nTo: c@d\nSubject: sql\nContent-Type: text/plain\n\n{body}".encode()
    assert not [u for u in parse_message(raw).unread if "MIME parts" in u]


@pytest.mark.parametrize(
    "text",
    [
        "個人番号：六二一四九八\n> 三二〇二五七",
        "個人番号：⑥②①④⑨⑧\n> ③②⓪②⑤⑦",
        f"個人番号：{N[:6]}\n> 三二〇二五七",
    ],
)
def test_a_wrapped_number_in_numerals_is_masked(text: str) -> None:
    assert conf(text) is Confidence.HIGH
    assert build_detector().find(TextChunk("個人番号 " + scrub(text), "body")) == []


def test_a_single_quoted_spin_count_is_refused_too() -> None:
    from dlp.extract.officecrypto import decrypt_default

    data = b"<encryption><keyData spinCount='10000000' /></encryption>" + b"\0" * 64
    started = time.monotonic()
    assert decrypt_default(data) is None
    assert time.monotonic() - started < 0.5
