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
