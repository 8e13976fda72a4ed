"""Issue 15: My Number shapes real offices produce, through the real ``dlp scan --json``.

A Word form with one digit per table cell, an HTML table with the number split
4-4-4 over three cells, and invisible characters (zero-width, soft hyphen, bidi
marks) pasted inside a number.  Each must give a ``high`` finding; cells that
merely sit next to each other (a year, a postcode part, an amount) must not
become a number without a My Number label over or beside them.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from test_scan_cli import NUMBERS, lines, run

pytestmark = pytest.mark.timeout(120)

NUMBER = NUMBERS[0]


def high(*paths: Path) -> dict[str, int]:
    """High My Number findings per scanned file (one ``dlp scan`` for all of them)."""
    out = lines(run("--json", "--min-confidence", "low", *map(str, paths)))
    return {Path(r["source"]).name: r["summary"]["mynumber"]["by_confidence"]["high"] for r in out}


def _docx(path: Path, rows: list[list[str]], merge_first_row: bool = False) -> Path:
    docx = pytest.importorskip("docx")
    doc = docx.Document()
    doc.add_paragraph("扶養控除等申告書")
    width = max(len(r) for r in rows)
    table = doc.add_table(rows=len(rows), cols=width)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    if merge_first_row:
        table.cell(0, 0).merge(table.cell(0, width - 1))
        table.cell(0, 0).text = rows[0][0]
    doc.save(str(path))
    return path


def test_word_form_one_digit_per_cell(tmp_path: Path) -> None:
    beside = _docx(tmp_path / "beside.docx", [["氏名", "山田太郎"], ["個人番号", *NUMBER]])
    under = _docx(tmp_path / "under.docx", [["個人番号"], list(NUMBER)], merge_first_row=True)
    # Twelve one-digit cells with no My Number label: a score sheet, not a number.
    scores = _docx(tmp_path / "scores.docx", [["評価", *NUMBER]])
    assert high(beside, under, scores) == {"beside.docx": 1, "under.docx": 1, "scores.docx": 0}


def _mail(path: Path, body: str, subtype: str = "plain") -> Path:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.jp", "b@example.com", "書類"
    msg.set_content(body, subtype=subtype, charset="utf-8")
    path.write_bytes(bytes(msg))
    return path


INVISIBLE = {
    "zwsp": "\u200b",
    "zwnj": "\u200c",
    "zwj": "\u200d",
    "shy": "\u00ad",
    "wj": "\u2060",
    "lrm": "\u200e",
    "rlm": "\u200f",
    "lro": "\u202d",
    "bom": "\ufeff",
}


def _spread(mark: str) -> str:
    """The number with ``mark`` between every pair of digits."""
    return mark.join(NUMBER)


def test_invisible_characters_inside_a_number_in_every_format(tmp_path: Path) -> None:
    docx = pytest.importorskip("docx")
    files: list[Path] = []
    expected: dict[str, int] = {}
    for name, mark in INVISIBLE.items():
        files.append(_mail(tmp_path / f"{name}.eml", f"個人番号は {_spread(mark)} です。\n"))
        expected[f"{name}.eml"] = 1
    # A grouped number with bidi marks around the groups (copied from a right-to-left page).
    grouped = f"\u202b{NUMBER[:4]}\u202c-\u200f{NUMBER[4:8]}\u200e-{NUMBER[8:]}"
    files.append(_mail(tmp_path / "bidi.eml", f"<p>マイナンバー: {grouped}</p>", "html"))
    (tmp_path / "form.html").write_text(
        f"<table><tr><th>個人番号</th><td>{_spread(chr(0x2060))}</td></tr></table>",
        encoding="utf-8",
    )
    (tmp_path / "staff.csv").write_text(
        f"氏名,個人番号\n山田太郎,{_spread(chr(0x200B))}\n", encoding="utf-8"
    )
    doc = docx.Document()
    doc.add_paragraph(f"個人番号 {_spread(chr(0xAD))}")
    doc.save(str(tmp_path / "letter.docx"))
    for name in ("bidi.eml", "form.html", "staff.csv", "letter.docx"):
        expected[name] = 1
    files += [tmp_path / n for n in ("form.html", "staff.csv", "letter.docx")]
    assert high(*files) == expected


def _row(*cells: str, tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


QUADS = (NUMBER[:4], NUMBER[4:8], NUMBER[8:])


def test_html_table_number_over_three_cells(tmp_path: Path) -> None:
    beside = "<table>" + _row("個人番号", *QUADS) + "</table>"
    under = (
        "<table><tr><th>氏名</th><th colspan=3>個人番号</th><th>入社年</th></tr>"
        + _row("山田太郎", *QUADS, "2024")
        + "</table>"
    )
    header = "<table>" + _row("マイナンバー", tag="th") + _row(*QUADS) + "</table>"
    files = [
        _mail(tmp_path / "body_beside.eml", beside, "html"),
        _mail(tmp_path / "body_under.eml", under, "html"),
    ]
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.jp", "b@example.com", "資料"
    msg.set_content("添付をご確認ください。")
    msg.add_attachment(header.encode(), maintype="text", subtype="html", filename="form.html")
    (tmp_path / "attached.eml").write_bytes(bytes(msg))
    (tmp_path / "form.html").write_text(under, encoding="utf-8")
    files += [tmp_path / "attached.eml", tmp_path / "form.html"]
    assert high(*files) == {
        "body_beside.eml": 1,
        "body_under.eml": 1,
        "attached.eml": 1,
        "form.html": 1,
    }


def test_unrelated_adjacent_cells_do_not_form_a_number(tmp_path: Path) -> None:
    """The same three checksum-valid quads as a year, a postcode half and an amount:
    no number without a My Number label beside or above them, even when the table
    has a 個人番号 column elsewhere or the label sits over only one of them."""
    plain = "<table>" + _row("年", "郵便", "金額", tag="th") + _row(*QUADS) + "</table>"
    other_column = (
        "<table>"
        + _row("個人番号", "年", "郵便", "金額", tag="th")
        + _row("未提出", *QUADS)
        + "</table>"
    )
    four = "<table>" + _row("個人番号", *QUADS, "2024") + "</table>"  # 4-4-4-4: not 12 digits
    files = [
        _mail(tmp_path / "plain.eml", plain, "html"),
        _mail(tmp_path / "other.eml", other_column, "html"),
        _mail(tmp_path / "four.eml", four, "html"),
    ]
    out = lines(run("--json", "--min-confidence", "low", *map(str, files)))
    assert {Path(r["source"]).name: r["summary"]["mynumber"]["total"] for r in out} == {
        "plain.eml": 0,
        "other.eml": 0,
        "four.eml": 0,
    }


def test_three_boxes_of_four_digits_in_sheets_csv_and_word(tmp_path: Path) -> None:
    """The 4-4-4 boxes family in the other formats with cells; the twelve-box CSV row."""
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["氏名", "山田太郎"])
    ws.append(["個人番号", *QUADS])  # strings: a leading zero must survive
    wb.save(tmp_path / "form.xlsx")
    (tmp_path / "form.csv").write_text(
        "氏名,山田太郎\n個人番号," + ",".join(QUADS) + "\n", encoding="utf-8"
    )
    (tmp_path / "boxes.csv").write_text(
        "氏名,山田太郎\nマイナンバー," + ",".join(NUMBER) + "\n", encoding="utf-8"
    )
    word = _docx(tmp_path / "form.docx", [["個人番号", "", ""], list(QUADS)])
    # No label: a year, a postcode half and an amount side by side.
    (tmp_path / "ledger.csv").write_text(
        "年,郵便,金額\n" + ",".join(QUADS) + "\n", encoding="utf-8"
    )
    files = [tmp_path / n for n in ("form.xlsx", "form.csv", "boxes.csv", "ledger.csv")]
    assert high(*files, word) == {
        "form.xlsx": 1,
        "form.csv": 1,
        "boxes.csv": 1,
        "form.docx": 1,
        "ledger.csv": 0,
    }
    out = lines(run("--json", "--min-confidence", "low", str(tmp_path / "ledger.csv")))
    assert out[0]["summary"]["mynumber"]["total"] == 0


def _odt(path: Path, rows: list[list[str]]) -> Path:
    pytest.importorskip("odf")
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import P

    doc = OpenDocumentText()
    table = Table(name="form")
    table.addElement(TableColumn(numbercolumnsrepeated=max(len(r) for r in rows)))
    for row in rows:
        tr = TableRow()
        for value in row:
            cell = TableCell()
            cell.addElement(P(text=value))
            tr.addElement(cell)
        table.addElement(tr)
    doc.text.addElement(table)
    doc.save(str(path))
    return path


def test_odf_text_tables_share_the_box_reading(tmp_path: Path) -> None:
    boxes = _odt(tmp_path / "boxes.odt", [["個人番号", *NUMBER]])
    quads = _odt(tmp_path / "quads.odt", [["個人番号"], list(QUADS)])
    ledger = _odt(tmp_path / "ledger.odt", [["年", "郵便", "金額"], list(QUADS)])
    assert high(boxes, quads, ledger) == {"boxes.odt": 1, "quads.odt": 1, "ledger.odt": 0}


def test_a_list_of_persons_with_numbers_in_three_boxes_under_one_heading(tmp_path: Path) -> None:
    """The heading over the first box is the heading of every row of the list, not
    of the first three only (a review of 3 Dec 2026 found one number of four), in a
    spreadsheet and in a CSV, where the cells right of the heading are empty."""
    from dlp.detect.mynumber import check_digit

    numbers = [
        base + str(check_digit(base))
        for base in (
            "62149832025",
            "12345678901",
            "98765432109",
            "11122233344",
            "55566677788",
            "31415926535",
        )
    ]
    rows = [["氏名", "個人番号", "", ""]] + [
        [f"職員{i}", n[:4], n[4:8], n[8:]] for i, n in enumerate(numbers)
    ]
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    ws.merge_cells("B1:D1")
    wb.save(tmp_path / "list.xlsx")
    (tmp_path / "list.csv").write_text(
        "\n".join(",".join(r) for r in rows) + "\n", encoding="cp932"
    )
    assert high(tmp_path / "list.xlsx", tmp_path / "list.csv") == {
        "list.xlsx": len(numbers),
        "list.csv": len(numbers),
    }


def test_numbers_written_in_kanji_or_grouped_3_3_3_3(tmp_path: Path) -> None:
    """A number written in kanji numerals, mixed with digits, or copied down 3-3-3-3 or
    6-6 right behind its label: found as the number it is.  Kanji years and a kanji
    telephone number in the same mail are not numbers."""
    kanji = str.maketrans("0123456789", "〇一二三四五六七八九")
    n = NUMBER
    kept = "二〇二六年一二月三日 電話〇三-一二三四-五六七八\n"
    mails = {
        "kanji.eml": f"{kept}マイナンバー：{n.translate(kanji)}\n",
        "mixed.eml": f"{kept}個人番号 {n[:6].translate(kanji)}{n[6:]}\n",
        "3333.eml": f"{kept}マイナンバー {n[:3]}-{n[3:6]}-{n[6:9]}-{n[9:]}\n",
        "66.eml": f"{kept}個人番号：{n[:6]} {n[6:]}\n",
        "kept.eml": kept + f"部品番号 {n[:3]}-{n[3:6]}-{n[6:9]}-{n[9:]}\n",
    }
    paths = [_mail(tmp_path / name, body) for name, body in mails.items()]
    assert high(*paths) == {
        "kanji.eml": 1,
        "mixed.eml": 1,
        "3333.eml": 1,
        "66.eml": 1,
        "kept.eml": 0,
    }
    report = run("--json", str(tmp_path / "kanji.eml")).stdout
    assert n.translate(kanji) not in report and n not in report


def test_a_number_in_a_file_name(tmp_path: Path) -> None:
    """HR staff name files after the number (マイナンバー_621498320257.txt): the name is
    text the recipient reads, in a mail, inside an archive and as the file scanned."""
    import zipfile

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.jp", "b@example.com", "書類"
    msg.set_content("添付します。")
    msg.add_attachment(
        b"hello", maintype="text", subtype="plain", filename=f"マイナンバー_{NUMBER}.txt"
    )
    (tmp_path / "named.eml").write_bytes(bytes(msg))
    with zipfile.ZipFile(tmp_path / "member.zip", "w") as z:
        z.writestr(f"個人番号_{NUMBER}.txt", "hello")
    (tmp_path / f"マイナンバー_{NUMBER}.txt").write_text("hello", encoding="utf-8")
    (tmp_path / "plain.zip").write_bytes((tmp_path / "member.zip").read_bytes())
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as z:
        z.writestr("report_20261203.txt", "hello")
    found = high(
        tmp_path / "named.eml",
        tmp_path / "member.zip",
        tmp_path / f"マイナンバー_{NUMBER}.txt",
        tmp_path / "plain.zip",
    )
    assert found == {
        "named.eml": 1,
        "member.zip": 1,
        f"マイナンバー_{'*' * 12}.txt": 1,
        "plain.zip": 0,
    }


def test_a_sheet_or_a_title_naming_my_number_heads_its_number_column(tmp_path: Path) -> None:
    """A sheet named マイナンバー, or a list titled マイナンバー一覧 above 氏名 / 番号: the
    numbers under 番号 are My Numbers.  A specific other label (管理番号) keeps its own
    meaning, and 番号 on a sheet about something else is just a number."""
    openpyxl = pytest.importorskip("openpyxl")

    def book(name: str, sheet: str, rows: list[list[str]]) -> Path:
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = sheet
        for row in rows:
            ws.append(row)
        wb.save(tmp_path / name)
        return tmp_path / name

    table = [["氏名", "番号"], ["山田太郎", NUMBER], ["佐藤花子", NUMBERS[1]]]
    found = high(
        book("tab.xlsx", "マイナンバー", table),
        book("title.xlsx", "Sheet1", [["マイナンバー一覧", ""], *table]),
        book("other.xlsx", "Sheet1", [["マイナンバー一覧", ""], ["氏名", "管理番号"], *table[1:]]),
        book("sales.xlsx", "売上", table),
    )
    assert found == {"tab.xlsx": 2, "title.xlsx": 2, "other.xlsx": 0, "sales.xlsx": 0}
