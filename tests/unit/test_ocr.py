"""Issue 16: images and scanned PDF pages are read with OCR.

The images are rendered from text (tests/ocr_support.py) and go through the
real chain: sniffing, the sandboxed child, Tesseract, the detector with its
context rules, the scanner's report and the default policy.  Small images
only, so the whole file stays within seconds; accuracy and speed over more
cases are measured by bench/ocr.py (BENCHMARKS.md).
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from email.message import EmailMessage
from pathlib import Path

import pytest
from ocr_support import (
    INVALID,
    NUMBERS,
    a4_page,
    card_back,
    degraded,
    encode,
    font_path,
    form_table,
    fullwidth,
    image_in_a_text_part,
    image_pdf,
    noise_photo,
    phone_and_orders,
)
from PIL import Image, ImageDraw

from dlp.config import ConfigError, OcrSettings, ScanSettings, load_file, parse_settings
from dlp.extract import ocr
from dlp.model import Action, AttachmentStatus, Confidence, Recipient, RecipientClass, ScanReport
from dlp.policy import decide
from dlp.scanner import scan_file, scan_message

ROOT = Path(__file__).resolve().parents[2]
_WHY = ocr.unavailable(("jpn",))
needs_ocr = pytest.mark.skipif(
    bool(_WHY) or font_path() is None,
    reason=f"OCR unavailable ({_WHY}); .ci/run installs tesseract-ocr-jpn"
    if _WHY
    else "Noto CJK font missing (apt-get install fonts-noto-cjk) to render test images",
)
SCAN = ScanSettings()
EXTERNAL = Recipient("a@example.com", "example.com", RecipientClass.EXTERNAL)
POLICY = load_file(ROOT / "config" / "dlp.toml").policy


def scan_image(data: bytes, name: str, scan: ScanSettings = SCAN) -> ScanReport:
    return scan_file(data, name, scan, name)


def confidences(r: ScanReport) -> list[Confidence]:
    return [f.confidence for f in r.findings]


# --- positives ------------------------------------------------------------------------------


@needs_ocr
def test_card_back_with_label_and_4_4_4_number_is_high() -> None:
    r = scan_image(encode(card_back(), "PNG"), "card.png")
    assert confidences(r) == [Confidence.HIGH]
    assert r.findings[0].location == "attachment:card.png (ocr)"
    (a,) = r.attachments
    assert (a.status, a.detail, a.content_type) == (AttachmentStatus.SCANNED, "ocr", "image/png")
    assert not r.incomplete


@needs_ocr
def test_card_at_150_dpi_with_full_width_digits() -> None:
    r = scan_image(encode(card_back(NUMBERS[1], dpi=150, digits=fullwidth), "PNG"), "card.png")
    assert confidences(r) == [Confidence.HIGH]


@needs_ocr
def test_phone_photo_of_a_card_jpeg_skewed_and_noisy() -> None:
    photo = encode(degraded(card_back(NUMBERS[2]), angle=3), "JPEG", quality=45)
    r = scan_image(photo, "IMG_0001.jpg")
    assert confidences(r) == [Confidence.HIGH]
    assert r.attachments[0].content_type == "image/jpeg"


@needs_ocr
def test_upside_down_card_is_turned() -> None:
    r = scan_image(encode(card_back(NUMBERS[3]).rotate(180), "PNG"), "card.png")
    assert confidences(r) == [Confidence.HIGH]


@needs_ocr
def test_scanned_form_with_five_people_under_the_header() -> None:
    r = scan_image(encode(form_table(), "PNG"), "form.png")
    assert r.mynumber.distinct == 5 and r.mynumber.high == 5


@needs_ocr
def test_image_only_pdf_pages_are_rendered_and_read() -> None:
    pdf = image_pdf([card_back(NUMBERS[4]).convert("L"), form_table(NUMBERS[:2])])
    r = scan_image(pdf, "scan.pdf")
    assert sorted(f.location for f in r.findings) == [
        "attachment:scan.pdf!p1 (ocr)",
        "attachment:scan.pdf!p2 (ocr)",
        "attachment:scan.pdf!p2 (ocr)",
    ]
    assert r.mynumber.high == 3
    assert r.attachments[0].status is AttachmentStatus.SCANNED
    assert r.attachments[0].detail == "ocr (2 pages)"


@needs_ocr
def test_image_in_a_zip_and_in_a_mail_is_read() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("scans/card.png", encode(card_back(), "PNG"))
    r = scan_image(buf.getvalue(), "docs.zip")
    assert [f.location for f in r.findings] == ["attachment:docs.zip/scans/card.png (ocr)"]

    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = "資料", "a@example.lg.jp", "b@example.com"
    msg.set_content("添付します")
    msg.add_attachment(encode(card_back(), "JPEG"), "image", "jpeg", filename="card.jpg")
    r = scan_message(msg.as_bytes(), SCAN)
    assert r.mynumber.high == 1 and r.findings[0].location.endswith(" (ocr)")
    assert decide(r, [EXTERNAL], "a@example.lg.jp", POLICY).action is Action.HOLD


# --- negatives ------------------------------------------------------------------------------


@needs_ocr
def test_wrong_check_digit_beside_the_label_is_not_a_finding() -> None:
    r = scan_image(encode(card_back(INVALID), "PNG"), "card.png")
    assert r.findings == () and r.attachments[0].status is AttachmentStatus.SCANNED


@needs_ocr
def test_phone_and_order_numbers_and_a_photo_without_text_are_clean() -> None:
    for data, name in (
        (encode(phone_and_orders(), "PNG"), "order.png"),
        (encode(noise_photo(), "JPEG"), "photo.jpg"),
    ):
        r = scan_image(data, name)
        assert r.findings == (), name
        assert r.attachments[0].status is AttachmentStatus.SCANNED and not r.incomplete


# --- bad input and budgets ------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(side: int = 60_000) -> bytes:
    """A 3.6-gigapixel PNG header over a few hundred bytes of data."""
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 100_000, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


@needs_ocr
def test_decompression_bomb_is_too_large_before_decoding() -> None:
    t0 = time.monotonic()
    r = scan_image(bomb_png(), "bomb.png")
    (a,) = r.attachments
    assert a.status is AttachmentStatus.TOO_LARGE and "max_pixels" in a.detail
    assert r.incomplete
    assert time.monotonic() - t0 < 10  # refused from the header, not decoded


@needs_ocr
def test_truncated_and_malformed_images_are_errors() -> None:
    whole = encode(card_back(), "PNG")
    for data in (whole[: len(whole) // 2], b"\x89PNG\r\n\x1a\n" + os.urandom(2000)):
        r = scan_image(data, "x.png")
        (a,) = r.attachments
        assert a.status is AttachmentStatus.ERROR, a.detail
        assert r.incomplete


# One 1x1 frame: graphic control extension, image descriptor, LZW data (clear, 0, end).
_GIF_FRAME = b"\x21\xf9\x04\x00\x0a\x00\x00\x00" + b"\x2c" + b"\x00" * 4 + b"\x01\x00\x01\x00\x00"
_GIF_FRAME += b"\x02\x02\x44\x01\x00"


@needs_ocr
def test_animated_gif_with_thousands_of_frames_reads_the_first() -> None:
    single = encode(card_back(dpi=150).convert("P"), "GIF")
    assert single.endswith(b";")
    gif = single[:-1] + _GIF_FRAME * 20_000 + b";"
    assert Image.open(io.BytesIO(gif)).n_frames == 20_001
    t0 = time.monotonic()
    r = scan_image(gif, "anim.gif")
    assert time.monotonic() - t0 < 30
    assert confidences(r) == [Confidence.HIGH]
    assert r.attachments[0].detail == "ocr" and not r.incomplete


def _notice(text: str) -> bytes:
    img = Image.new("L", (420, 90), 255)
    ImageDraw.Draw(img).text((10, 20), text, fill=0)
    return encode(img, "PNG")


@needs_ocr
def test_images_past_the_page_budget_make_the_message_incomplete_and_held() -> None:
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = "写真", "a@example.lg.jp", "b@example.com"
    msg.set_content("写真を送ります")
    for i in range(3):
        msg.add_attachment(_notice(f"meeting {i}"), "image", "png", filename=f"p{i}.png")
    scan = ScanSettings(ocr=OcrSettings(max_pages=2))
    r = scan_message(msg.as_bytes(), scan)
    statuses = [a.status for a in r.attachments]
    assert statuses == [
        AttachmentStatus.SCANNED,
        AttachmentStatus.SCANNED,
        AttachmentStatus.TOO_LARGE,
    ]
    assert "max_pages = 2" in r.attachments[2].detail
    assert r.incomplete
    v = decide(r, [EXTERNAL], "a@example.lg.jp", POLICY)
    assert (v.action, v.rule) == (Action.HOLD, "incomplete-external")


@needs_ocr
def test_multipage_tiff_past_the_budget_is_partial() -> None:
    pages = [card_back(n, dpi=150).convert("L") for n in NUMBERS[:3]]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    r = scan_image(buf.getvalue(), "fax.tif", ScanSettings(ocr=OcrSettings(max_pages=2)))
    assert sorted(f.location for f in r.findings) == [
        "attachment:fax.tif!p1 (ocr)",
        "attachment:fax.tif!p2 (ocr)",
    ]
    (a,) = r.attachments
    assert a.status is AttachmentStatus.PARTIAL and "page 3 and after not read" in a.detail
    assert r.incomplete


@needs_ocr
def test_ocr_time_budget_used_up_is_not_a_clean_image() -> None:
    scan = ScanSettings(ocr=OcrSettings(timeout_seconds=0.001))
    time.sleep(0.01)
    r = scan_image(encode(card_back(), "PNG"), "card.png", scan)
    (a,) = r.attachments
    assert a.status is AttachmentStatus.TOO_LARGE and "time budget" in a.detail
    assert r.incomplete and not r.error  # not a scan failure: no tempfail loop


def test_ocr_off_or_without_models_says_so_and_is_not_an_error() -> None:
    card = encode(Image.new("L", (50, 50), 255), "PNG")
    off = scan_image(card, "c.png", ScanSettings(ocr=OcrSettings(enabled=False)))
    assert (off.attachments[0].status, off.attachments[0].detail) == (
        AttachmentStatus.IMAGE,
        "image not read (ocr disabled)",
    )
    missing = scan_image(card, "c.png", ScanSettings(ocr=OcrSettings(languages=("zzz",))))
    (a,) = missing.attachments
    assert a.status is AttachmentStatus.IMAGE
    assert a.detail.startswith("ocr unavailable") and "tesseract-ocr-zzz" in a.detail
    assert not missing.incomplete


# --- configuration --------------------------------------------------------------------------


def test_ocr_section_is_validated() -> None:
    s = parse_settings({"ocr": {"max_pages": 3, "languages": ["jpn", "eng"]}})
    assert s.ocr.max_pages == 3 and s.scan.ocr.languages == ("jpn", "eng")
    assert load_file(ROOT / "config" / "dlp.toml").ocr == OcrSettings()
    # a shorter per-message budget shrinks the default OCR time rather than being refused
    assert parse_settings({"scan": {"timeout_seconds": 5}}).ocr.timeout_seconds == 5
    bad = [
        ({"ocr": {"languages": []}}, "at least one"),
        ({"ocr": {"languages": ["jpn; rm"]}}, "not a Tesseract model"),
        ({"ocr": {"max_pages": 0}}, "max_pages"),
        ({"ocr": {"max_pixels": 10}}, "max_pixels"),
        ({"ocr": {"timeout_seconds": 90}}, "must not exceed scan.timeout_seconds"),
        ({"ocr": {"enabeld": True}}, "unknown key ocr.enabeld"),
        ({"scan": {"ocr": {"enabled": False}}}, "own [ocr] section"),
    ]
    for raw, words in bad:
        with pytest.raises(ConfigError) as info:
            parse_settings(raw)
        assert words in str(info.value)


# --- the command a user runs ----------------------------------------------------------------


@needs_ocr
def test_dlp_scan_json_on_image_and_pdf_files(tmp_path: Path) -> None:
    (tmp_path / "card.png").write_bytes(encode(card_back(), "PNG"))
    (tmp_path / "scan.pdf").write_bytes(image_pdf([form_table(NUMBERS[:2])]))
    (tmp_path / "order.png").write_bytes(encode(phone_and_orders(), "PNG"))
    dlp = Path(sys.executable).with_name("dlp")
    env = {**os.environ, "DLP_CONFIG": str(ROOT / "config" / "dlp.toml")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    files = [str(tmp_path / n) for n in ("card.png", "scan.pdf", "order.png")]
    proc = subprocess.run(
        [str(dlp), "scan", "--json", *files], capture_output=True, timeout=120, env=env
    )
    out = proc.stdout.decode()
    assert proc.returncode == 1, proc.stderr.decode()
    for n in NUMBERS[:2]:
        assert n not in out and n[:4] + " " not in out  # no number in the output
    card, pdf, order = (json.loads(line) for line in out.splitlines())
    assert [f["location"] for f in card["findings"]] == ["attachment:card.png (ocr)"]
    assert card["attachments"][0]["status"] == "scanned"
    assert {f["location"] for f in pdf["findings"]} == {"attachment:scan.pdf!p1 (ocr)"}
    assert pdf["summary"]["mynumber"]["by_confidence"]["high"] == 2
    assert order["findings"] == [] and order["attachments"][0]["detail"] == "ocr"


@needs_ocr
def test_a_short_message_budget_is_a_timeout_so_the_gateway_rescans_in_a_worker() -> None:
    # The gateway's in-process scan has 0.5 s; OCR that needs longer must make the
    # report a timeout (rescanned in a worker), not an image "not read" that is held.
    page = encode(a4_page(), "PNG")  # > 1 s of OCR
    r = scan_image(page, "page.png", ScanSettings(timeout_seconds=0.3))
    assert r.error.startswith("timeout"), r.attachments


@needs_ocr
def test_picture_pasted_into_a_word_file_is_read() -> None:
    import docx  # python-docx, a test dependency

    doc = docx.Document()
    doc.add_paragraph("添付の通りです")
    doc.add_picture(io.BytesIO(encode(card_back(dpi=150), "PNG")))
    doc.add_picture(io.BytesIO(encode(Image.new("RGB", (16, 16), "red"), "PNG")))  # an icon
    buf = io.BytesIO()
    doc.save(buf)
    r = scan_image(buf.getvalue(), "申請.docx")
    assert [(f.confidence, f.location) for f in r.findings] == [
        (Confidence.HIGH, "attachment:申請.docx/image1.png (ocr)")
    ]
    assert [a.detail for a in r.attachments[1:]] == ["ocr", "ocr: too small to hold text"]
    assert not r.incomplete


@needs_ocr
def test_scanned_pdf_past_the_page_budget_is_partial_and_without_ocr_says_so() -> None:
    pdf = image_pdf([card_back(NUMBERS[4]).convert("L"), form_table(NUMBERS[:2])])
    r = scan_image(pdf, "scan.pdf", ScanSettings(ocr=OcrSettings(max_pages=1)))
    assert [f.location for f in r.findings] == ["attachment:scan.pdf!p1 (ocr)"]
    (a,) = r.attachments
    assert a.status is AttachmentStatus.PARTIAL and "page 2: scanned page not read" in a.detail
    assert r.incomplete
    # Many pages past the budget: said once with a count, not a line per page.
    many = image_pdf([card_back(n, dpi=100).convert("L") for n in NUMBERS[:6]])
    (a,) = scan_image(many, "fax.pdf", ScanSettings(ocr=OcrSettings(max_pages=1))).attachments
    assert a.detail.endswith(
        "page 2: scanned page not read (OCR page budget ([ocr] max_pages = 1) used up); 4 more scanned pages not read"
    )

    # OCR off: as for an image, said in the detail but not a fail-closed status.
    r = scan_image(pdf, "scan.pdf", ScanSettings(ocr=OcrSettings(enabled=False)))
    (a,) = r.attachments
    assert a.status is AttachmentStatus.SCANNED and not r.incomplete and r.findings == ()
    assert a.detail == "scanned page(s) 1, 2 not read: ocr disabled"


def test_dlp_scan_says_once_that_images_are_not_read(tmp_path: Path) -> None:
    cfg = (ROOT / "config" / "dlp.toml").read_text(encoding="utf-8")
    cfg = cfg.replace('languages = ["jpn"]', 'languages = ["zzz"]', 1)
    assert 'languages = ["zzz"]' in cfg
    (tmp_path / "dlp.toml").write_text(cfg, encoding="utf-8")
    for i in range(2):
        (tmp_path / f"p{i}.png").write_bytes(encode(Image.new("L", (60, 60), 255), "PNG"))
    dlp = Path(sys.executable).with_name("dlp")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
    }
    proc = subprocess.run(
        [
            str(dlp),
            "scan",
            "--config",
            str(tmp_path / "dlp.toml"),
            "--json",
            str(tmp_path / "p0.png"),
            str(tmp_path / "p1.png"),
        ],
        capture_output=True,
        timeout=120,
        env=env,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert err.count("images are not read: ocr unavailable") == 1
    assert "tesseract-ocr-zzz" in err
    statuses = [
        json.loads(line)["attachments"][0]["status"] for line in proc.stdout.decode().splitlines()
    ]
    assert statuses == ["image", "image"]


@needs_ocr
def test_picture_in_an_opendocument_text_is_read() -> None:
    from odf.draw import Frame
    from odf.draw import Image as DrawImage
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    doc = OpenDocumentText()
    href = doc.addPicture("Pictures/card.png", "image/png", encode(card_back(dpi=150), "PNG"))
    para = P(text="添付")
    frame = Frame(width="8cm", height="5cm", anchortype="paragraph")
    frame.addElement(DrawImage(href=href))
    para.addElement(frame)
    doc.text.addElement(para)
    buf = io.BytesIO()
    doc.write(buf)
    r = scan_image(buf.getvalue(), "x.odt")
    assert [(f.confidence, f.location) for f in r.findings] == [
        (Confidence.HIGH, "attachment:x.odt/card.png (ocr)")
    ]


@needs_ocr
def test_sixteen_bit_grayscale_scan_is_not_read_as_white() -> None:
    deep = card_back(dpi=150).convert("L").convert("I").point(lambda v: v * 257).convert("I;16")
    data = encode(deep, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    assert confidences(scan_image(data, "scan16.png")) == [Confidence.HIGH]


@needs_ocr
def test_heic_photo_from_a_phone_is_read() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    card_back(NUMBERS[1]).save(buf, "HEIF", quality=80)
    r = scan_image(buf.getvalue(), "IMG_0001.HEIC")
    assert confidences(r) == [Confidence.HIGH]
    assert (r.attachments[0].content_type, r.attachments[0].detail) == ("image/heif", "ocr")


@needs_ocr
@pytest.mark.parametrize(
    ("fmt", "ctype"), [("BMP", "image/bmp"), ("WEBP", "image/webp"), ("GIF", "image/gif")]
)
def test_other_image_formats(fmt: str, ctype: str) -> None:
    card = card_back(NUMBERS[2], dpi=150)
    r = scan_image(encode(card.convert("P") if fmt == "GIF" else card, fmt), f"card.{fmt.lower()}")
    assert confidences(r) == [Confidence.HIGH]
    assert r.attachments[0].content_type == ctype


@needs_ocr
def test_scanned_page_with_a_stamped_page_number_is_still_ocrd() -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.drawImage(ImageReader(card_back()), 40, 400, width=500, height=315)
    c.drawString(280, 30, "- 1 -")  # a text layer of a few characters
    c.showPage()
    c.save()
    r = scan_image(buf.getvalue(), "scan.pdf")
    assert [(f.confidence, f.location) for f in r.findings] == [
        (Confidence.HIGH, "attachment:scan.pdf!p1 (ocr)")
    ]


@needs_ocr
def test_no_ocr_in_the_serving_process_an_image_there_is_a_timeout() -> None:
    raw = image_in_a_text_part()
    inline = scan_message(raw, ScanSettings(timeout_seconds=0.5, ocr_here=False))
    assert inline.error.startswith("timeout") and inline.findings == ()
    worker = scan_message(raw, SCAN)
    assert confidences(worker) == [Confidence.HIGH]
    with pytest.raises(ConfigError, match="ocr_here"):
        parse_settings({"scan": {"ocr_here": False}})


def _text_pdf_with_picture(text: str) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setFont("HeiseiKakuGo-W5", 11)
    c.drawString(40, 800, text)
    c.drawImage(ImageReader(card_back(NUMBERS[3])), 40, 400, width=400, height=252)
    c.showPage()
    c.save()
    return buf.getvalue()


@needs_ocr
def test_card_photo_in_a_pdf_with_text_about_it_is_read() -> None:
    # A Word file with a pasted photo of the card, exported to PDF: a text layer,
    # so not a "scanned page", but the text says what the picture is.
    pdf = _text_pdf_with_picture(
        "本人確認のため、マイナンバーカードの写しを添付いたします。ご確認ください。"
    )
    r = scan_image(pdf, "申請書.pdf")
    assert [(f.confidence, f.location) for f in r.findings] == [
        (Confidence.HIGH, "attachment:申請書.pdf!p1!picture1 (ocr)")
    ]
    assert r.attachments[0].detail == "ocr (1 picture)"
    # The charts and photos of an ordinary report are not OCR'd (budget, holds).
    report = _text_pdf_with_picture(
        "四半期の売上報告書です。グラフと写真をご確認ください。よろしくお願いいたします。"
    )
    r = scan_image(report, "report.pdf")
    assert r.findings == () and r.attachments[0].detail == ""
