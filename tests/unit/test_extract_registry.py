"""Sniffing by bytes, never raising, budget statuses, and reasons that carry no digits."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import tarfile
import time
import zipfile

import pytest
from extract_support import N1, N2, budget, run

from dlp.extract import registry
from dlp.extract.base import Budget
from dlp.model import AttachmentStatus

pytestmark = pytest.mark.timeout(90)


def test_sample_numbers_are_valid_my_numbers() -> None:
    from stdnum.jp import in_

    assert in_.is_valid(N1) and in_.is_valid(N2)


def _save(obj: object) -> bytes:
    bio = io.BytesIO()
    obj.save(bio)  # type: ignore[attr-defined]
    return bio.getvalue()


def _samples() -> dict[str, bytes]:
    import docx
    import openpyxl
    import pptx
    import xlwt
    from odf.opendocument import OpenDocumentPresentation, OpenDocumentSpreadsheet, OpenDocumentText
    from odf.text import P
    from reportlab.pdfgen import canvas

    wb = openpyxl.Workbook()
    wb.active.append(["個人番号", int(N1)])
    d = docx.Document()
    d.add_paragraph(N1)
    xls = xlwt.Workbook()
    xls.add_sheet("s").write(0, 0, N1)
    odt = OpenDocumentText()
    odt.text.addElement(P(text=N1))
    pdf = io.BytesIO()
    c = canvas.Canvas(pdf)
    c.drawString(10, 10, N1)
    c.save()
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        info = tarfile.TarInfo("a.csv")
        info.size = 3
        t.addfile(info, io.BytesIO(b"a,b"))
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.csv", f"個人番号\n{N1}\n")
    csv = f"氏名,個人番号\r\n山田,{N1}\r\n佐藤,{N2}\r\n".encode("cp932")
    return {
        "xlsx": _save(wb),
        "docx": _save(d),
        "pptx": _save(pptx.Presentation()),
        "xls": _save(xls),
        "odt": _save(odt),
        "ods": _save(OpenDocumentSpreadsheet()),
        "odp": _save(OpenDocumentPresentation()),
        "pdf": pdf.getvalue(),
        "tar": tar.getvalue(),
        "zip": z.getvalue(),
        "gzip": gzip.compress(csv),
        "bzip2": bz2.compress(csv),
        "xz": lzma.compress(csv),
        "csv": csv,
        "text": f"個人番号は {N1} です。\n".encode(),
        "html": b"<!DOCTYPE html><html><body><p>" + N1.encode() + b"</p></body></html>",
        "message": b"From: a@example.jp\r\nTo: b@example.jp\r\nSubject: x\r\n\r\n" + N1.encode(),
        "rtf": b"{\\rtf1\\ansi\\ansicpg932 \\'8c\\'c2\\'90\\'6c\\'94\\'d4\\'8d\\'86 "
        + N1.encode()
        + b"}",
        "tnef": b"\x78\x9f\x3e\x22" + b"\x00" * 40,
        "7z": b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 40,
        "rar": b"Rar!\x1a\x07\x01\x00" + b"\x00" * 40,
        "image": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        "binary": bytes(range(256)) * 4,
    }


SAMPLES = _samples()


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_sniff_by_bytes_not_by_name(kind: str) -> None:
    data = SAMPLES[kind]
    assert registry.sniff(data, "") == kind
    # a misleading name never changes a binary format's kind
    if kind not in ("csv", "text"):
        assert registry.sniff(data, "harmless.txt") == kind


def test_workbook_renamed_to_txt_is_still_read_as_a_workbook() -> None:
    ex = run(SAMPLES["xlsx"], "memo.txt")
    assert ex.kind == "xlsx" and ex.status is AttachmentStatus.SCANNED
    assert any(N1 in c.text for c in ex.chunks)


def test_self_extracting_zip_is_a_zip() -> None:
    sfx = b"MZ" + b"\x90" * 2000 + SAMPLES["zip"]
    assert registry.sniff(sfx) == "zip"
    assert [m.name for m in run(sfx, "setup.exe").members] == ["a.csv"]


def test_message_kind_hands_the_bytes_back_for_mime_parsing() -> None:
    ex = run(SAMPLES["message"], "fwd.eml")
    assert ex.kind == "message" and ex.status is AttachmentStatus.SCANNED
    assert ex.members[0].content_type == "message/rfc822"
    assert ex.members[0].data == SAMPLES["message"]


def test_image_and_unknown_binary() -> None:
    assert run(SAMPLES["image"]).status is AttachmentStatus.IMAGE
    assert run(SAMPLES["binary"]).status is AttachmentStatus.UNSUPPORTED


def test_never_raises_on_truncated_or_corrupted_input() -> None:
    rng = random.Random(20240401)
    runs = 0
    for kind, data in SAMPLES.items():
        variants = [data[: len(data) * k // 7] for k in range(1, 7)]
        for _ in range(4):
            b = bytearray(data)
            for _ in range(max(1, len(b) // 200)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            variants.append(bytes(b))
        for v in variants:
            t0 = time.monotonic()
            ex = registry.extract(v, f"x.{kind}", "attachment:x", budget(timeout=10))
            runs += 1
            assert isinstance(ex.status, AttachmentStatus)
            assert time.monotonic() - t0 < 5, kind
    assert runs > 200


def test_file_over_max_file_bytes_is_too_large() -> None:
    ex = run(SAMPLES["csv"], "a.csv", budget(max_file_bytes=10))
    assert ex.status is AttachmentStatus.TOO_LARGE


def test_spent_budget_is_too_large_and_deadline_is_timeout() -> None:
    b = budget(max_total_bytes=1000)
    b.spent_bytes = 999
    assert run(SAMPLES["csv"], "a.csv", b).status is AttachmentStatus.TOO_LARGE
    late = Budget(10**9, 10**9, 10, 5, 100, time.monotonic() - 1)
    assert run(SAMPLES["xlsx"], "a.xlsx", late).status is AttachmentStatus.TIMEOUT


def test_safe_reason_never_carries_digits() -> None:
    reason = registry.safe_reason(ValueError(f"bad cell value {N1} at row 3"))
    assert not any(ch.isdigit() for ch in reason)
    assert reason.startswith("ValueError: bad cell value ")


def test_error_detail_never_carries_digits() -> None:
    # a corrupt workbook whose damage report could quote content
    for kind in ("xlsx", "docx", "pdf", "zip", "xls"):
        data = SAMPLES[kind]
        ex = run(data[: len(data) // 2] + N1.encode() * 10, f"x.{kind}")
        if ex.status is AttachmentStatus.ERROR:
            assert N1 not in ex.detail and N1[:4] not in ex.detail
