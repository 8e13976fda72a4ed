"""Workbooks, Word, PowerPoint and OpenDocument files, generated with the real libraries."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import pytest
from extract_support import N1, N2, digits_of, numbers_found, run, text_of

from dlp.extract.spreadsheet import render
from dlp.extract.tables import column_label, column_name
from dlp.model import AttachmentStatus, Confidence

pytestmark = pytest.mark.timeout(60)


def _save(obj: object) -> bytes:
    bio = io.BytesIO()
    obj.save(bio)  # type: ignore[attr-defined]
    return bio.getvalue()


# --- spreadsheets -----------------------------------------------------------------------------


def _roster_xlsx() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "名簿"
    # Real rosters: a title and a date above the header row.
    ws.append(["職員名簿"])
    ws.append(["作成日", dt.date(2024, 4, 1)])
    ws.append([])
    ws.append(["氏名", "個人番号", "備考", "電話"])
    ws.append(["山田 太郎", int(N1), "", "03-1234-5678"])
    ws.append(["佐藤 花子", float(N2), f"旧番号 {N1[:4]}-{N1[4:8]}-{N1[8:]}", "090-1111-2222"])
    ws2 = wb.create_sheet("扶養")
    ws2.append(["続柄", "マイナンバー"])
    ws2.append(["子", f"{N2[:4]} {N2[4:8]} {N2[8:]}"])
    return _save(wb)


def test_xlsx_every_sheet_column_chunks_and_header_labels() -> None:
    ex = run(_roster_xlsx(), "名簿.xlsx")
    assert ex.kind == "xlsx"
    assert ex.status is AttachmentStatus.SCANNED
    by_loc = {c.location: c for c in ex.chunks}
    col_b = by_loc["attachment:名簿.xlsx!名簿!B"]
    assert col_b.field_label == "個人番号"
    # a 12-digit number stored as a float comes out as the integer typed, never 1.23457E+11
    assert N1 in col_b.text.split("\n")
    assert N2 in col_b.text.split("\n")
    assert "E+" not in col_b.text and ".0" not in col_b.text
    assert by_loc["attachment:名簿.xlsx!扶養!B"].field_label == "マイナンバー"
    found = numbers_found(ex.chunks)
    assert found[N1] is Confidence.HIGH
    assert found[N2] is Confidence.HIGH


def test_xlsx_column_letters_survive_an_empty_leading_area() -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active["D5"] = "個人番号"
    wb.active["D6"] = int(N1)
    ex = run(_save(wb), "a.xlsx")
    cells = [c.location for c in ex.chunks if not c.location.endswith("!properties")]
    assert cells == ["attachment:a.xlsx!Sheet!D"]


def test_render_keeps_whole_numbers_integral() -> None:
    assert render(123456789018.0) == "123456789018"
    assert render(1e20) == "100000000000000000000"
    assert render(1.5) == "1.5"
    assert render(True) == "TRUE"
    assert render(dt.date(2024, 1, 2)) == "2024-01-02"


def test_column_helpers() -> None:
    assert [column_name(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]
    assert column_label(["名簿", "", "個人番号", N1]) == "個人番号"
    assert column_label(["氏名", "山田"]) == "氏名"
    assert column_label([N1, N2]) is None


def test_xls_written_by_xlwt() -> None:
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("名簿")
    for c, v in enumerate(["氏名", "個人番号"]):
        ws.write(0, c, v)
    ws.write(1, 0, "山田")
    ws.write(1, 1, float(N1))
    ws.write(2, 0, "佐藤")
    ws.write(2, 1, N2)
    ex = run(_save(wb), "old.xls")
    assert ex.kind == "xls" and ex.status is AttachmentStatus.SCANNED
    col = next(c for c in ex.chunks if c.location.endswith("!B"))
    assert col.field_label == "個人番号"
    assert col.text.split("\n") == ["個人番号", N1, N2]


def test_ods_written_by_odfpy() -> None:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name="名簿")
    for row in (["氏名", "個人番号"], ["山田", int(N1)]):
        tr = TableRow()
        for v in row:
            if isinstance(v, int):
                cell = TableCell(valuetype="float", value=v)
            else:
                cell = TableCell(valuetype="string")
                cell.addElement(P(text=v))
            tr.addElement(cell)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    ex = run(_save(doc), "a.ods")
    assert ex.kind == "ods"
    assert numbers_found(ex.chunks)[N1] is Confidence.HIGH


def test_ods_comments_text_boxes_and_sheet_names_are_read() -> None:
    """calamine reads cells only: a cell's comment, a text box on the sheet and the name
    on its tab are shown too (an attack review of 3 Dec 2026)."""
    from odf.draw import Frame, TextBox
    from odf.office import Annotation
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name=f"台帳{N2}")
    tr = TableRow()
    cell = TableCell(valuetype="string")
    note = Annotation()
    note.addElement(P(text=f"マイナンバー：{N1}"))
    cell.addElement(note)
    cell.addElement(P(text="資料"))
    tr.addElement(cell)
    box_cell = TableCell()
    frame = Frame(width="4cm", height="1cm")
    box = TextBox()
    box.addElement(P(text=f"個人番号 {N1}"))
    frame.addElement(box)
    box_cell.addElement(frame)
    tr.addElement(box_cell)
    table.addElement(tr)
    doc.spreadsheet.addElement(table)
    ex = run(_save(doc), "notes.ods")
    found = numbers_found(ex.chunks)
    assert found[N1] is Confidence.HIGH and N2 in found
    (extra,) = [c for c in ex.chunks if "comments, text boxes" in c.location]
    assert extra.text.count(N1) == 2


def test_truncated_xlsx_is_error_not_crash() -> None:
    data = _roster_xlsx()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 10):
        ex = run(data[:cut], "cut.xlsx")
        assert ex.kind == "xlsx"
        assert ex.status is AttachmentStatus.ERROR, ex


def test_xlsx_declaring_a_huge_sheet_is_refused_before_inflating() -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active["A1"] = 1
    src = zipfile.ZipFile(io.BytesIO(_save(wb)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for n in src.namelist():
            d = src.read(n)
            if n == "xl/worksheets/sheet1.xml":
                d = d.replace(b"<sheetData>", b"<sheetData>" + b" " * 30_000_000)
            z.writestr(n, d)
    ex = run(out.getvalue(), "bomb.xlsx")
    assert ex.status is AttachmentStatus.TOO_LARGE
    assert "ratio" in ex.detail


# --- Word ------------------------------------------------------------------------------------


def _docx() -> bytes:
    import docx

    d = docx.Document()
    d.sections[0].header.paragraphs[0].text = f"ヘッダー 個人番号 {N2}"
    d.sections[0].footer.paragraphs[0].text = "フッター 社外秘"
    p = d.add_paragraph(f"山田さんの個人番号は{N1[:4]}-{N1[4:8]}-{N1[8:]}です。")
    d.add_comment(p.runs, text=f"確認済み {N2}", author="総務")
    t = d.add_table(rows=3, cols=2)
    for r, (a, b) in enumerate([("氏名", "マイナンバー"), ("山田", N1), ("佐藤", N2)]):
        t.cell(r, 0).text = a
        t.cell(r, 1).text = b
    return _save(d)


def test_docx_body_table_header_footer_comments() -> None:
    ex = run(_docx(), "申請書.docx")
    assert ex.kind == "docx" and ex.status is AttachmentStatus.SCANNED
    locs = {c.location.split("!", 1)[1]: c for c in ex.chunks}
    assert "1234-5678-9018" in locs["body"].text
    assert N2 in locs["header1"].text or N2 in locs.get("header2", locs["body"]).text
    assert any("フッター" in c.text for c in ex.chunks)
    assert N2 in locs["comments"].text
    col = locs["body!table1!B"]
    assert col.field_label == "マイナンバー"
    assert col.text.split("\n") == ["マイナンバー", N1, N2]
    found = numbers_found(ex.chunks)
    assert found[N1] is Confidence.HIGH and found[N2] is Confidence.HIGH


def _patch_part(data: bytes, part: str, edit: object) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for n in src.namelist():
            d = src.read(n)
            if n == part:
                d = edit(d)  # type: ignore[operator]
            z.writestr(n, d)
    return out.getvalue()


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def test_docx_text_box_read_once_and_ruby_base_kept() -> None:
    # A text box as Word writes it: the DrawingML choice and a VML fallback with the same text.
    box = (
        '<w:p><w:r><mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
        f'<mc:Choice Requires="wps"><w:drawing><w:txbxContent><w:p><w:r><w:t>枠内 {N1}</w:t></w:r></w:p>'
        "</w:txbxContent></w:drawing></mc:Choice><mc:Fallback><w:pict><w:txbxContent><w:p><w:r>"
        f"<w:t>枠内 {N1}</w:t></w:r></w:p></w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>"
        "<w:p><w:r><w:ruby><w:rt><w:r><w:t>こじんばんごう</w:t></w:r></w:rt><w:rubyBase><w:r>"
        f"<w:t>個人番号</w:t></w:r></w:rubyBase></w:ruby></w:r><w:r><w:t>：{N2}</w:t></w:r></w:p>"
    )

    def edit(xml: bytes) -> bytes:
        return xml.replace(b"<w:body>", b"<w:body>" + box.encode())

    ex = run(_patch_part(_docx(), "word/document.xml", edit), "box.docx")
    body = next(c for c in ex.chunks if c.location.endswith("!body"))
    assert body.text.count(f"枠内 {N1}") == 1
    assert f"個人番号：{N2}" in body.text
    assert "こじんばんごう" not in body.text


def _renamed(data: bytes, old: str, new: str, extra: dict[str, bytes] | None = None) -> bytes:
    """``data`` with part ``old`` saved as ``new`` (its references too) and ``extra`` added."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for n in src.namelist():
            d = src.read(n).replace(old.encode(), new.encode())
            d = d.replace(old.split("/", 1)[1].encode(), new.split("/", 1)[1].encode())
            z.writestr(new if n == old else n, d)
        for n, d in (extra or {}).items():
            z.writestr(n, d)
    return out.getvalue()


def test_docx_parts_found_whatever_they_are_called() -> None:
    """Word finds a package's parts through its relationships, not by name: a main
    document saved as word/main.xml is shown all the same, and so is a chart's title."""
    chart = (
        '<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" '
        'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><c:chart><c:title>'
        f"<c:tx><c:rich><a:p><a:r><a:t>個人番号 {N2}</a:t></a:r></a:p></c:rich></c:tx>"
        "</c:title></c:chart></c:chartSpace>"
    ).encode()
    data = _renamed(
        _docx(), "word/document.xml", "word/main.xml", {"word/charts/chart1.xml": chart}
    )
    ex = run(data, "renamed.docx")
    found = numbers_found(ex.chunks)
    assert found[N1] is Confidence.HIGH and found[N2] is Confidence.HIGH
    assert any(c.location.endswith("!main") for c in ex.chunks)
    assert any(c.location.endswith("!charts/chart1") for c in ex.chunks)
    assert not any("styles" in c.location or "settings" in c.location for c in ex.chunks)


def test_docx_fallback_content_and_imported_chunks_are_read() -> None:
    """What Word shows when it does not know the preferred content (mc:Fallback), and
    an HTML or text part it imports where it stands (altChunk): both seen by someone."""
    box = (
        '<w:p><w:r><mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
        '<mc:Choice Requires="w99"><w:t>新しい枠</w:t></mc:Choice><mc:Fallback><w:t>'
        f"マイナンバー：{N1}</w:t></mc:Fallback></mc:AlternateContent></w:r></w:p>"
    )

    def edit(xml: bytes) -> bytes:
        return xml.replace(b"<w:body>", b"<w:body>" + box.encode())

    data = _patch_part(_docx(), "word/document.xml", edit)
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n in src.namelist():
            z.writestr(n, src.read(n))
        z.writestr("word/afchunk.htm", f"<html><body>個人番号 {N2}</body></html>")
    ex = run(out.getvalue(), "fallback.docx")
    assert numbers_found(ex.chunks)[N1] is Confidence.HIGH
    (fallback,) = [c for c in ex.chunks if c.location.endswith("(fallback)")]
    assert N1 in fallback.text and "新しい枠" not in fallback.text
    assert [m.name for m in ex.members] == ["afchunk.htm"]


def test_docx_embedded_workbook_is_a_member() -> None:
    xlsx = _roster_xlsx()
    src = zipfile.ZipFile(io.BytesIO(_docx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n in src.namelist():
            z.writestr(n, src.read(n))
        z.writestr("word/embeddings/Microsoft_Excel_Worksheet.xlsx", xlsx)
    ex = run(out.getvalue(), "with-sheet.docx")
    assert [m.name for m in ex.members] == ["Microsoft_Excel_Worksheet.xlsx"]
    assert run(ex.members[0].data).kind == "xlsx"


def test_truncated_docx_keeps_what_was_readable() -> None:
    data = _docx()
    ex = run(data[: int(len(data) * 0.9)], "cut.docx")
    assert ex.status is AttachmentStatus.ERROR
    assert ex.kind == "docx"


# --- PowerPoint ------------------------------------------------------------------------------


def test_pptx_slides_tables_and_notes() -> None:
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    s1 = prs.slides.add_slide(prs.slide_layouts[1])
    s1.shapes.title.text = "マイナンバー収集について"
    s1.placeholders[1].text = f"例: {N1[:4]} {N1[4:8]} {N1[8:]}"
    s1.notes_slide.notes_text_frame.text = f"読み上げ注意 {N2}"
    s2 = prs.slides.add_slide(prs.slide_layouts[5])
    tbl = s2.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, (a, b) in enumerate([("氏名", "個人番号"), ("山田", N1), ("佐藤", N2)]):
        tbl.cell(r, 0).text = a
        tbl.cell(r, 1).text = b
    ex = run(_save(prs), "説明.pptx")
    assert ex.kind == "pptx" and ex.status is AttachmentStatus.SCANNED
    locs = [c.location.split("!", 1)[1] for c in ex.chunks]
    assert locs.index("slide1") < locs.index("slide1!notes") < locs.index("slide2!table1!A")
    notes = next(c for c in ex.chunks if c.location.endswith("slide1!notes"))
    assert N2 in notes.text
    col = next(c for c in ex.chunks if c.location.endswith("slide2!table1!B"))
    assert col.field_label == "個人番号"
    assert N1 in digits_of(ex)


# --- OpenDocument text -----------------------------------------------------------------------


def test_odt_paragraphs_tables_and_spaces() -> None:
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import P, S, Span

    doc = OpenDocumentText()
    p = P(text="個人番号")
    p.addElement(S(c=2))
    p.addElement(Span(text=f"{N1[:4]}-{N1[4:8]}-{N1[8:]}"))
    doc.text.addElement(p)
    t = Table(name="T")
    t.addElement(TableColumn(numbercolumnsrepeated=2))
    for row in (["氏名", "個人番号"], ["佐藤", N2]):
        tr = TableRow()
        for v in row:
            cell = TableCell()
            cell.addElement(P(text=v))
            tr.addElement(cell)
        t.addElement(tr)
    doc.text.addElement(t)
    ex = run(_save(doc), "a.odt")
    assert ex.kind == "odt" and ex.status is AttachmentStatus.SCANNED
    assert re.search(r"個人番号  1234-5678-9018", text_of(ex))
    col = next(c for c in ex.chunks if c.location.endswith("!table1!B"))
    assert col.field_label == "個人番号" and N2 in col.text


@pytest.mark.parametrize("far_cell", ["XFD1048576", "ZZ100000", "AAA300000"])
def test_xlsx_cell_bomb_is_refused_before_calamine_allocates(far_cell: str) -> None:
    # calamine would allocate rows x columns x 32 bytes and abort the process
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active["A1"] = "個人番号"
    wb.active[far_cell] = int(N1)
    ex = run(_save(wb), "bomb.xlsx")
    assert ex.status is AttachmentStatus.TOO_LARGE
    assert "cell bomb" in ex.detail


def test_xlsx_tall_single_column_is_fine() -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active["A1"] = "個人番号"
    wb.active["A300000"] = int(N1)
    ex = run(_save(wb), "tall.xlsx")
    assert ex.status is AttachmentStatus.SCANNED
    assert ex.chunks[0].text.endswith(N1)


def test_ods_repeated_cell_bomb_is_refused() -> None:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow

    doc = OpenDocumentSpreadsheet()
    table = Table(name="s")
    row = TableRow(numberrowsrepeated=100_000)
    row.addElement(TableCell(valuetype="float", value=1, numbercolumnsrepeated=1000))
    table.addElement(row)
    doc.spreadsheet.addElement(table)
    data = _save(doc)
    assert len(data) < 5000
    ex = run(data, "bomb.ods")
    assert ex.status is AttachmentStatus.TOO_LARGE and "cell bomb" in ex.detail


@pytest.mark.parametrize("kind", ["odt", "ods"])
def test_password_protected_opendocument_is_encrypted(kind: str) -> None:
    import os

    from odf.opendocument import OpenDocumentSpreadsheet, OpenDocumentText

    doc = OpenDocumentText() if kind == "odt" else OpenDocumentSpreadsheet()

    def encrypt(manifest: bytes) -> bytes:
        return manifest.replace(
            b'manifest:full-path="content.xml" manifest:media-type="text/xml"/>',
            b'manifest:full-path="content.xml" manifest:media-type="text/xml"><manifest:encryption-data '
            b'manifest:checksum-type="SHA1/1K" manifest:checksum="x"/></manifest:file-entry>',
        )

    data = _patch_part(_save(doc), "META-INF/manifest.xml", encrypt)
    data = _patch_part(data, "content.xml", lambda _: os.urandom(2000))
    ex = run(data, f"secret.{kind}")
    assert (ex.kind, ex.status) == (kind, AttachmentStatus.ENCRYPTED)


def test_xlsx_cell_comments_and_embedded_files() -> None:
    import openpyxl
    from openpyxl.comments import Comment

    wb = openpyxl.Workbook()
    wb.active["A1"] = "氏名"
    wb.active["A2"] = "山田"
    wb.active["A2"].comment = Comment(f"個人番号 {N2} 確認済", "総務")
    data = _save(wb)
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n in src.namelist():
            z.writestr(n, src.read(n))
        z.writestr("xl/embeddings/Microsoft_Word_Document.docx", _docx())
    ex = run(out.getvalue(), "c.xlsx")
    assert ex.status is AttachmentStatus.SCANNED
    comment = next(c for c in ex.chunks if "!comment" in c.location)
    assert f"個人番号 {N2}" in comment.text
    assert [m.name for m in ex.members] == ["Microsoft_Word_Document.docx"]


def test_leading_zero_kept_by_a_number_format_is_restored() -> None:
    # a number with a leading zero typed into a cell formatted 000000000000: Excel stores 11 digits
    import openpyxl
    from stdnum.jp import in_

    base = "01234567890"
    n = base + in_.calc_check_digit(base)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "名簿"
    ws.append(["氏名", "個人番号", "番号(区切り)", "件数"])
    ws.append(["山田", int(n), int(n), 7])
    ws["B2"].number_format = "000000000000"
    ws["C2"].number_format = "0000\\-0000\\-0000"
    ws["D2"].number_format = "0"
    ex = run(_save(wb), "zero.xlsx")
    cols = {c.location.rsplit("!", 1)[1]: c.text.split("\n") for c in ex.chunks}
    assert cols["B"][1] == n and cols["C"][1] == n
    assert cols["D"][1] == "7"
    assert numbers_found(ex.chunks)[n] is Confidence.HIGH


def test_form_sheet_labels_on_the_left_and_one_digit_per_box() -> None:
    # The shape of the official 扶養控除等申告書 templates: a label, then 12 one-digit boxes.
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "給与所得者の扶養控除等(異動)申告書"
    ws["A3"] = "あなたの個人番号"
    for i, d in enumerate(N1):
        ws.cell(row=3, column=3 + i, value=int(d))
    ws["A5"] = "配偶者のマイナンバー"
    ws.merge_cells("A5:B5")
    ws["C5"] = int(N2)
    ws["A7"] = "月別出勤"
    for m in range(12):
        ws.cell(row=7, column=2 + m, value=m % 10)
    ex = run(_save(wb), "申告書.xlsx")
    found = numbers_found(ex.chunks)
    assert found[N1] is Confidence.HIGH
    assert found[N2] is Confidence.HIGH
    # every digit still appears once: the twelve boxes became one cell
    assert sum(c.text.count(N1) for c in ex.chunks) == 1


def test_big_tables_are_not_treated_as_forms() -> None:
    from dlp.extract import forms

    cols = [["山田"] * (forms.MAX_ROWS + 1), [N1] * (forms.MAX_ROWS + 1)]
    forms.apply(cols)
    assert cols[1][0] == N1
    small = [["個人番号"], [N1]]
    forms.apply(small)
    assert small[1][0] == f"個人番号 {N1}"
    months = [["出勤日数", *"山田"], *[[str(m % 10)] for m in range(12)]]
    forms.apply(months)
    assert [c[0] for c in months[1:]] == [str(m % 10) for m in range(12)]


@pytest.mark.parametrize("hide", ["vanish", "tiny"])
def test_docx_digit_in_a_run_nobody_sees_is_read_both_ways(hide: str) -> None:
    """An extra digit in a hidden (or one-point) run: thirteen digits stored, the
    twelve of N1 on the reader's screen - both are read (a review of 3 Dec 2026)."""
    import docx
    from docx.oxml.ns import qn
    from docx.oxml.shared import OxmlElement

    d = docx.Document()
    p = d.add_paragraph(f"個人番号 {N1[:6]}")
    extra = p.add_run("9")
    if hide == "vanish":
        extra.font.hidden = True
    else:
        sz = OxmlElement("w:sz")
        sz.set(qn("w:val"), "2")
        extra._r.get_or_add_rPr().append(sz)
    p.add_run(N1[6:])
    d.add_paragraph("他の行")
    ex = run(_save(d), "申請書.docx")
    found = numbers_found(ex.chunks)
    assert found.get(N1) is Confidence.HIGH, [c.text for c in ex.chunks]
    shown = [c for c in ex.chunks if c.location.endswith("(as shown)")]
    assert len(shown) == 1 and "他の行" not in shown[0].text  # only the lines that differ


def test_xlsx_page_header_and_drop_down_lists_are_read() -> None:
    """Printed on every page, offered in a drop-down or shown as a prompt: calamine reads
    cells only (an attack review of 3 Dec 2026)."""
    openpyxl = pytest.importorskip("openpyxl")
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "資料"
    ws.oddHeader.center.text = f"マイナンバー：{N1}"
    dv = DataValidation(type="list", formula1=f'"個人番号 {N2},なし"', prompt="選んでください")
    ws.add_data_validation(dv)
    dv.add("B2")
    buf = io.BytesIO()
    wb.save(buf)
    ex = run(buf.getvalue(), "form.xlsx")
    assert numbers_found(ex.chunks) == {N1: Confidence.HIGH, N2: Confidence.HIGH}
    (extra,) = [c for c in ex.chunks if c.location.endswith("(header, lists)")]
    assert "&C" not in extra.text and "選んでください" in extra.text
