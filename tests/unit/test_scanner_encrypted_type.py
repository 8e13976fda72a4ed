"""The declared type of an encrypted part is sender text: it is redacted too."""

from __future__ import annotations

from dlp.config import ScanSettings
from dlp.model import AttachmentStatus
from dlp.scanner import scan_message


def test_encrypted_part_content_type_is_redacted() -> None:
    raw = (
        b"From: a@example.jp\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=B\r\n'
        b"\r\n--B\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
        b"--B\r\nContent-Type: application/x123456789018\r\n\r\nxx\r\n--B--\r\n"
    )
    report = scan_message(raw, ScanSettings())
    encrypted = [a for a in report.attachments if a.status is AttachmentStatus.ENCRYPTED]
    assert [a.content_type for a in encrypted] == ["application/x************"]
    assert "123456789018" not in repr(report)
