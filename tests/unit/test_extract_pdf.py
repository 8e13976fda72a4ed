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
