"""PDF extraction: reportlab-generated Japanese PDFs (CID font), forms, encryption, damage."""

from __future__ import annotations

import io
import re

import pytest
from extract_support import N1, N2, digits_of, numbers_found, run, text_of

from dlp.model import AttachmentStatus, Confidence

pytestmark = pytest.mark.timeout(60)


def _canvas(**kw: object) -> tuple[object, io.BytesIO]:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    bio = io.BytesIO()
    return canvas.Canvas(bio, **kw), bio


def japanese_pdf(pages: int = 3, **kw: object) -> bytes:
    c, bio = _canvas(**kw)
    for p in range(pages):
        c.setFont("HeiseiKakuGo-W5", 11)  # type: ignore[attr-defined]
        c.drawString(60, 800, f"個人番号通知 {p + 1}ページ")  # type: ignore[attr-defined]
        c.drawString(60, 770, f"山田 太郎 様の個人番号は {N1[:4]} {N1[4:8]} {N1[8:]} です。")  # type: ignore[attr-defined]
        c.drawString(60, 740, f"マイナンバー：{N2}")  # type: ignore[attr-defined]
        c.showPage()  # type: ignore[attr-defined]
    c.save()  # type: ignore[attr-defined]
    return bio.getvalue()


def test_japanese_cid_font_every_page() -> None:
    ex = run(japanese_pdf(3), "通知.pdf")
    assert ex.kind == "pdf" and ex.status is AttachmentStatus.SCANNED
    pages = [c for c in ex.chunks if re.search(r"!p\d+$", c.location)]
    assert [c.location.rsplit("!", 1)[1] for c in pages] == ["p1", "p2", "p3"]
    assert f"{N1[:4]} {N1[4:8]} {N1[8:]}" in pages[2].text
    assert "個人番号通知" in pages[0].text
    found = numbers_found(ex.chunks)
    assert found[N1] is Confidence.HIGH and found[N2] is Confidence.HIGH


def test_form_field_value_with_its_name_as_label() -> None:
    c, bio = _canvas()
    c.setFont("HeiseiKakuGo-W5", 11)  # type: ignore[attr-defined]
    c.drawString(60, 800, "申告書")  # type: ignore[attr-defined]
    c.acroForm.textfield(name="個人番号", value=N2, x=60, y=700, width=200, height=20)  # type: ignore[attr-defined]
    c.showPage()  # type: ignore[attr-defined]
    c.save()  # type: ignore[attr-defined]
    ex = run(bio.getvalue(), "form.pdf")
    field = next(ch for ch in ex.chunks if ch.location.endswith("!field"))
    assert field.text == N2
    assert field.field_label == "個人番号"
    assert numbers_found(ex.chunks)[N2] is Confidence.HIGH


def test_user_password_is_encrypted_owner_password_only_is_read() -> None:
    from reportlab.lib.pdfencrypt import StandardEncryption

    locked = japanese_pdf(1, encrypt=StandardEncryption("secret", ownerPassword="owner"))
    assert run(locked, "locked.pdf").status is AttachmentStatus.ENCRYPTED
    restricted = japanese_pdf(1, encrypt=StandardEncryption("", ownerPassword="owner", canCopy=0))
    ex = run(restricted, "restricted.pdf")
    assert ex.status is AttachmentStatus.SCANNED
    assert N2 in text_of(ex)


def test_broken_xref_is_repaired() -> None:
    data = japanese_pdf(2)
    start = data.rindex(b"startxref")
    broken = data[:start] + b"startxref\n999999\n%%EOF\n"
    ex = run(broken, "broken.pdf")
    assert ex.status is AttachmentStatus.SCANNED
    assert N1 in digits_of(ex)
    no_table = data.replace(b"\nxref\n", b"\nxxxx\n")
    ex = run(no_table, "noxref.pdf")
    assert ex.status is AttachmentStatus.SCANNED
    assert N1 in digits_of(ex)


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_truncated_pdf_never_raises(fraction: float) -> None:
    data = japanese_pdf(3)
    ex = run(data[: int(len(data) * fraction)], "cut.pdf")
    assert ex.kind == "pdf"
    assert ex.status in (AttachmentStatus.SCANNED, AttachmentStatus.ERROR)


def test_garbage_after_pdf_magic_is_error() -> None:
    ex = run(b"%PDF-1.7\n" + bytes(range(256)) * 8, "junk.pdf")
    assert ex.status is AttachmentStatus.ERROR


def test_unmapped_legacy_cmap_falls_back_to_pdfminer(corpus_dir: object) -> None:
    from pathlib import Path

    path = Path(str(corpus_dir)) / "pdf-pdfminer" / "simple3.pdf"
    ex = run(path.read_bytes(), "simple3.pdf")
    # pdfium drops these glyphs (non-embedded font, JIS "H" CMap); pdfminer maps them
    assert "あいうえお" in text_of(ex)
    jo = run((Path(str(corpus_dir)) / "pdf-pdfminer" / "jo.pdf").read_bytes(), "jo.pdf")
    assert "わたくしといふ現象は" in text_of(jo)


def _raw_pdf(
    content: str, page_extra: str = "", objects: tuple[bytes, ...] = (), root: str = ""
) -> bytes:
    """A one-page PDF written by hand: objects 1-5 (catalog, pages, page, content,
    Helvetica), then ``objects`` from 6 on."""

    def stream(body: str, extra: str = "") -> bytes:
        return f"<< /Length {len(body)} {extra} >>\nstream\n{body}\nendstream".encode()

    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    objs = [
        f"<< /Type /Catalog /Pages 2 0 R {root} >>".encode(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >>"
        + f" /Contents 4 0 R {page_extra} >>".encode(),
        stream(content),
        font,
        *objects,
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


@pytest.mark.parametrize("subtype", ["FreeText", "Stamp"])
def test_annotation_read_as_drawn(subtype: str) -> None:
    """A stamp, or a text box whose /Contents is empty: only its appearance stream
    shows the number (an attack review of 3 Dec 2026)."""
    drawn = f"BT /F1 12 Tf 2 6 Td (My Number: {N1}) Tj ET"
    annot = (
        f"<< /Type /Annot /Subtype /{subtype} /Rect [72 600 372 620] /Contents () "
        "/AP << /N 7 0 R >> /F 4 >>"
    ).encode()
    appearance = (
        f"<< /Length {len(drawn)} /Type /XObject /Subtype /Form /BBox [0 0 300 20] "
        "/Resources << /Font << /F1 5 0 R >> >> >>\nstream\n"
        f"{drawn}\nendstream"
    ).encode()
    data = _raw_pdf(
        "BT /F1 14 Tf 72 700 Td (Attached.) Tj ET", "/Annots [6 0 R]", (annot, appearance)
    )
    ex = run(data, "stamped.pdf")
    assert numbers_found(ex.chunks) == {N1: Confidence.HIGH}
    assert any(c.location.endswith("(annotations as drawn)") for c in ex.chunks)
    drawn_text = "".join(c.text for c in ex.chunks if "as drawn" in c.location)
    # what was read already comes again only as the label line before a new one,
    # and never with a digit (no number counts twice)
    assert all(
        f"My Number: {N1}" in line or not any(ch.isdigit() for ch in line)
        for line in drawn_text.split("\n")
    ), drawn_text


def test_bookmark_titles_are_read() -> None:
    outline = (
        b"<< /Type /Outlines /First 7 0 R /Last 7 0 R /Count 1 >>",
        f"<< /Title (My Number: {N1}) /Parent 6 0 R /Dest [3 0 R /Fit] >>".encode(),
    )
    data = _raw_pdf(
        "BT /F1 14 Tf 72 700 Td (Attached.) Tj ET", objects=outline, root="/Outlines 6 0 R"
    )
    ex = run(data, "marked.pdf")
    assert numbers_found(ex.chunks) == {N1: Confidence.HIGH}


def test_a_form_field_value_keeps_the_label_printed_beside_it() -> None:
    """A filled-in form: the page prints "My Number" and a text field (named Text1)
    holds the number.  Read as drawn, the value kept only its own line and was
    ``low`` (a content review of 3 Dec 2026, fourth round)."""
    drawn = f"BT /F1 12 Tf 2 6 Td ({N1}) Tj ET"
    field = (
        "<< /Type /Annot /Subtype /Widget /FT /Tx /T (Text1) "
        f"/V ({N1}) /Rect [72 640 372 660] /AP << /N 7 0 R >> /F 4 >>"
    ).encode()
    appearance = (
        f"<< /Length {len(drawn)} /Type /XObject /Subtype /Form /BBox [0 0 300 20] "
        "/Resources << /Font << /F1 5 0 R >> >> >>\nstream\n"
        f"{drawn}\nendstream"
    ).encode()
    data = _raw_pdf(
        "BT /F1 14 Tf 72 700 Td (Application form) Tj 0 -30 Td (My Number) Tj ET",
        "/Annots [6 0 R]",
        (field, appearance),
        root="/AcroForm << /Fields [6 0 R] >>",
    )
    ex = run(data, "form.pdf")
    assert numbers_found(ex.chunks).get(N1) is Confidence.HIGH, [c.text for c in ex.chunks]
