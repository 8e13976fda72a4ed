"""Tables aligned with spaces in plain text (issue 15): a roster pasted into a mail
body or a .txt file is read as a table, as a CSV file is; prose, price lists and
schedules that merely hold runs of spaces are not rosters."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from dlp.config import ScanSettings
from dlp.extract.aligned import pieces, tables
from dlp.model import ScanReport
from dlp.scanner import scan_file, scan_message


def _mail(body: str) -> ScanReport:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.lg.jp", "b@example.com", "ご連絡"
    m.set_content(body)
    return scan_message(m.as_bytes(), ScanSettings())


def _persons(report: ScanReport) -> int:
    return report.summaries["roster"].distinct


def test_pieces_are_measured_in_display_columns() -> None:
    # a full-width character and an ideographic space are two columns wide
    assert pieces("氏名　　住所  TEL") == [(0, "氏名"), (8, "住所"), (14, "TEL")]
    # a single space stays inside a cell; two split
    assert pieces("Full name  1-1 2F") == [(0, "Full name"), (11, "1-1 2F")]
    assert pieces("氏名\t住所") == [(0, "氏名"), (8, "住所")]


IDEOGRAPHIC = """お疲れさまです。来月の名簿です。

氏名　　　　住所　　　　　　　　　電話
山田　太郎　東京都千代田区1-1　　03-1234-5678
佐藤　花子　大阪府大阪市北区2-2　06-1234-5678
鈴木一郎　　福岡県福岡市3-3　　　092-123-4567

以上です。
"""

ASCII = """Staff list (2026)
Name           Address                    Date of birth
-------------  -------------------------  -------------
Taro Yamada    1-1 Chiyoda, Tokyo         1980-04-01
Hanako Sato    2-2 Kita-ku, Osaka         1985-12-24
Ichiro Suzuki  3-3 Hakata, Fukuoka        1990-07-07
Jiro Tanaka    4-4 Naka-ku, Nagoya        1975-01-15
"""

TABS = "社員名\t\t生年月日\t携帯\n山田太郎\t\t1980/4/1\t090-1111-2222\n佐藤花子\t\t1985/12/24\t080-3333-4444\n"

INDENTED_HALF_WIDTH = """  No.  氏名          連絡先          備考
  1    山田 太郎     090-1111-2222
  2    佐藤 花子     080-3333-4444   代理
  3    高橋 三郎     070-5555-6666
"""


@pytest.mark.parametrize(
    ("body", "persons"),
    [(IDEOGRAPHIC, 3), (ASCII, 4), (TABS, 2), (INDENTED_HALF_WIDTH, 3)],
    ids=["ideographic-spaces", "ascii-with-rule", "tabs", "half-width-indented"],
)
def test_an_aligned_roster_in_a_body_is_read_as_a_table(body: str, persons: int) -> None:
    report = _mail(body)
    assert _persons(report) == persons
    (finding,) = [f for f in report.findings if f.detector == "roster"]
    assert finding.location == "body:text/plain!table1"
    assert finding.masked == f"{persons} persons" and finding.confidence.value == "high"
    assert "氏名" in report.items


def test_names_with_an_ideographic_space_are_one_cell() -> None:
    ((header, *rows),) = list(tables(IDEOGRAPHIC))
    assert header == ["氏名", "住所", "電話"]
    assert rows[0] == ["山田 太郎", "東京都千代田区1-1", "03-1234-5678"]
    assert rows[2][0] == "鈴木一郎"


def test_an_aligned_roster_in_a_text_file() -> None:
    report = scan_file(IDEOGRAPHIC.encode("cp932"), "名簿.txt", ScanSettings(), "t")
    assert _persons(report) == 3
    assert [f.location for f in report.findings] == ["attachment:名簿.txt!table1"]


PROSE = """お世話になっております。  氏名と住所の一覧は  来週お送りします。
担当の山田が確認中です。  ご不明な点は電話で  お問い合わせください。
佐藤さんにも共有しています。  生年月日の欄は  空けておいてください。
"""

PRICE_LIST = """商品名　　　　　単価　　　お問合せ電話
コピー用紙　　　500円　　 03-1111-2222
ボールペン　　　100円　　 03-1111-2222
クリアファイル　 50円　　 03-1111-2222
"""

SCHEDULE = """日付      時間    氏名        場所
4月1日    10:00   山田 太郎   第1会議室
4月2日    14:00   佐藤 花子   第2会議室
4月3日    09:30   鈴木 一郎   オンライン
"""

MISALIGNED = """氏名  住所  電話
山田太郎さんは東京都千代田区に  住んでいて、電話は03-1234-5678です。
佐藤花子さんは  大阪府に住んでいます。電話は06-1234-5678です。
"""

ONE_PERSON_FORM = """氏名　　山田　太郎
住所　　東京都千代田区1-1
電話　　03-1234-5678
"""

ONE_ROW = """氏名　　　　住所　　　　　　　　　電話
山田　太郎　東京都千代田区1-1　　03-1234-5678
"""


@pytest.mark.parametrize(
    "body",
    [PROSE, PRICE_LIST, SCHEDULE, MISALIGNED, ONE_PERSON_FORM, ONE_ROW],
    ids=["prose-two-spaces", "price-list", "schedule", "misaligned", "one-person-form", "one-row"],
)
def test_look_alikes_are_no_roster(body: str) -> None:
    assert _persons(_mail(body)) == 0


def test_prose_is_no_table_even_for_a_reader_that_wants_any_header() -> None:
    assert list(tables(PROSE)) == []
    assert list(tables(MISALIGNED)) == []
    # the price list and the schedule are tables, just not rosters
    assert len(list(tables(PRICE_LIST))) == len(list(tables(SCHEDULE))) == 1


def test_an_html_table_roster_in_a_body() -> None:
    rows = "".join(
        f"<tr><td>{n}</td><td>{a}</td></tr>"
        for n, a in (
            ("山田太郎", "東京都1-1"),
            ("佐藤花子", "大阪府2-2"),
            ("鈴木一郎", "福岡県3-3"),
        )
    )
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.lg.jp", "b@example.com", "名簿"
    m.set_content("表をご確認ください。")
    m.add_alternative(f"<table><tr><th>氏名</th><th>住所</th></tr>{rows}</table>", subtype="html")
    report = scan_message(m.as_bytes(), ScanSettings())
    assert _persons(report) == 3
    assert [f.location for f in report.findings] == ["body:text/html!table1"]


def test_one_row_out_of_line_does_not_end_the_table() -> None:
    body = IDEOGRAPHIC.replace("佐藤　花子　大阪府", "佐藤　花子太郎　大阪府")
    ((_, *rows),) = list(tables(body))
    assert [r[0] for r in rows] == ["山田 太郎", "鈴木一郎"]  # the long name's row is skipped
