"""Attachments a content review of 3 Dec 2026 (fourth round) got out unread: one stray
control byte (a NUL, DOS's end-of-file byte, a bell) made a text or CSV file
"unsupported", and so did UTF-16/32 text without a byte-order mark."""

from __future__ import annotations

import pytest

from dlp.config import ScanSettings
from dlp.model import AttachmentStatus, Confidence
from dlp.scanner import scan_file

N = "621498320257"  # passes the check digit
ROWS = [("山田太郎", N), ("佐藤花子", "123456789018")]


def _csv(encoding: str) -> bytes:
    lines = ["氏名,個人番号", *(f"{a},{b}" for a, b in ROWS)]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("nul_at_end", _csv("cp932") + b"\x00"),
        ("nul_padding", _csv("cp932") + b"\x00" * 9000),
        ("dos_eof", _csv("cp932") + b"\x1a"),
        ("bell_inside", _csv("utf-8").replace(b"\r\n", b"\x07\r\n", 1)),
        ("utf16le_no_bom", _csv("utf-16-le")),
        ("utf16be_no_bom", _csv("utf-16-be")),
        ("utf32le_no_bom", _csv("utf-32-le")),
    ],
)
def test_text_with_stray_control_bytes_or_no_bom_is_read(name: str, data: bytes) -> None:
    report = scan_file(data, f"{name}.csv", ScanSettings(), f"{name}.csv")
    (att,) = report.attachments
    assert att.status is AttachmentStatus.SCANNED, (name, att)
    highs = [f for f in report.findings if f.detector == "mynumber" and f.confidence is Confidence.HIGH]
    assert len(highs) >= 2, (name, report.findings)


def test_a_real_binary_stays_binary() -> None:
    import random

    rng = random.Random(7)
    blob = bytes(rng.randrange(256) for _ in range(20000))
    report = scan_file(blob, "blob.bin", ScanSettings(), "blob.bin")
    (att,) = report.attachments
    assert att.status is AttachmentStatus.UNSUPPORTED


def _xlsx(header: str, values: list[str]) -> bytes:
    """A minimal xlsx: one sheet, inline strings, the header in A1/B1."""
    import io
    import zipfile
    from xml.sax.saxutils import escape

    def cell(ref: str, text: str) -> str:
        return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{escape(text)}</t></is></c>'

    rows = [f'<row r="1">{cell("A1", "氏名")}{cell("B1", header)}</row>']
    for i, v in enumerate(values, start=2):
        rows.append(f'<row r="{i}">{cell(f"A{i}", "山田")}{cell(f"B{i}", v)}</row>')
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
        f'spreadsheetml/2006/main"><sheetData>{"".join(rows)}</sheetData></worksheet>'
    )
    files = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": sheet,
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def _highs(data: bytes, name: str) -> int:
    report = scan_file(data, name, ScanSettings(), name)
    return sum(
        f.detector == "mynumber" and f.confidence is Confidence.HIGH for f in report.findings
    )


@pytest.mark.parametrize(
    "header",
    [
        "個人\n番号",  # Alt+Enter in a narrow column
        "マイ\r\nナンバー",
        "マイナンハ\u3099ー",  # decomposed (macOS): ハ + combining dakuten
        "マイナンハ\u309bー",  # the spacing dakuten typed after the kana
        "個人 番号",
        "個人No.",
        "マイＮｏ．",
        "my_number",
    ],
)
def test_a_header_written_as_people_write_it_still_heads_the_column(header: str) -> None:
    assert _highs(_xlsx(header, [N, "123456789018"]), "名簿.xlsx") == 2, repr(header)


@pytest.mark.parametrize(
    "text",
    [
        f"マイナンハ\u3099ー：{N}",
        f"個人 番号 {N}",
        f'{{"my_number": "{N}"}}',
    ],
)
def test_decomposed_kana_and_other_spellings_in_text(text: str) -> None:
    assert _highs(text.encode("utf-8"), "memo.txt") == 1, repr(text)


def test_a_line_break_inside_an_html_header_cell_keeps_the_label() -> None:
    from dlp.extract.html import _markup_text

    text = _markup_text(
        f"<table><tr><th>氏名</th><th>個人<br>番号</th></tr><tr><td>山田</td><td>{N}</td></tr></table>",
        (),
    )
    assert "個人 番号" in text


@pytest.mark.parametrize(
    "text",
    [
        f"マイナンバー: {N[:6]}\n{N[6:]}\n",  # wrapped at the line end, anywhere
        f"マイナンバー: {N[:4]}\n{N[4:]}\n",
        f"マイナンバー: {N[:8]}\r\n{N[8:]}\r\n",
        f"マイナンバー: {N[:6]}-\n{N[6:]}\n",
        f">> マイナンバー: {N[:6]}\n>> {N[6:]}\n",  # a quoted reply
    ],
)
def test_a_number_wrapped_at_the_end_of_its_keywords_line(text: str) -> None:
    assert _highs(text.encode("utf-8"), "memo.txt") == 1, repr(text)


def test_a_number_written_as_a_float_is_read() -> None:
    """621498320257.0: pandas' to_csv for a numeric column that holds a blank."""
    csv = f"氏名,マイナンバー,住所\n山田,{N}.0,東京\n佐藤,123456789018.0,大阪\n,,\n"
    assert _highs(csv.encode("utf-8"), "export.csv") == 2
    assert _highs(f"マイナンバー: {N}.0\n".encode(), "memo.txt") == 1


@pytest.mark.parametrize("groups", [(3, 3, 3, 3), (6, 6), (4, 4, 4), (2, 4, 4, 2)])
def test_a_number_typed_into_cells_in_any_groups_under_its_heading(groups: tuple[int, ...]) -> None:
    from dlp.extract.html import _markup_text

    cells, at = [], 0
    for g in groups:
        cells.append(N[at : at + g])
        at += g
    row = "".join(f"<td>{c}</td>" for c in cells)
    markup = (
        f'<table><tr><th>氏名</th><th colspan="{len(cells)}">個人番号</th></tr>'
        f"<tr><td>山田</td>{row}</tr></table>"
    )
    text = _markup_text(markup, ())
    assert N in text.replace(" ", ""), text
    assert _highs(markup.encode("utf-8"), "table.html") == 1, text


def test_document_properties_are_read() -> None:
    """Title, subject, keywords, comments (File > Info) travel with the file."""
    import io
    import zipfile

    data = _xlsx("氏名", ["x"])
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as out:
        for info in src.infolist():
            out.writestr(info, src.read(info))
        out.writestr(
            "docProps/core.xml",
            '<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/'
            'package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<dc:description>マイナンバー {N}</dc:description></cp:coreProperties>",
        )
    assert _highs(buf.getvalue(), "book.xlsx") == 1
