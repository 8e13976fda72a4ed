"""Inputs a denial-of-service review of 3 Dec 2026 (fourth round) stalled the gateway
with: a password-protected Office file asking for 10,000,000 hash rounds, thousands of
small MIME parts parsed on the serving loop, 200,000 parts that outlasted the scan
budget on every retry."""

from __future__ import annotations

import io
import re
import time

import pytest

from dlp.extract.officecrypto import MAX_SPIN_COUNT, decrypt_default
from dlp.mime import parse_message
from dlp.smtp.gateway import _has_heavy_part


def _encrypted_docx(spin: int) -> bytes:
    """A real agile-encrypted docx (msoffcrypto), its spinCount then set to ``spin``
    in the EncryptionInfo XML (same width, so the container stays valid)."""
    from docx import Document  # python-docx is a test dependency
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = io.BytesIO()
    Document().save(plain)
    plain.seek(0)
    out = io.BytesIO()
    OOXMLFile(plain).encrypt("VelvetSweatshop", out)
    data = out.getvalue()
    old = re.search(rb'spinCount="(\d+)"', data)
    assert old is not None
    new = str(spin).encode()
    assert len(new) <= len(old.group(1)) + 3
    return data.replace(old.group(0), b'spinCount="' + new + b'"')


def test_an_absurd_spin_count_is_encrypted_without_deriving_a_key() -> None:
    pytest.importorskip("docx")
    data = _encrypted_docx(10_000_000)
    started = time.monotonic()
    assert decrypt_default(data) is None
    assert time.monotonic() - started < 1.0


def test_office_s_own_spin_count_is_still_tried() -> None:
    pytest.importorskip("docx")
    data = _encrypted_docx(MAX_SPIN_COUNT)
    assert decrypt_default(data) is not None  # VelvetSweatshop: Excel opens it unasked


def _multipart(n: int, nested: bool = False) -> bytes:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\nx%d\r\n" % i for i in range(n))
    return (
        b"From: a@example.lg.jp\r\nTo: c@d.example\r\nSubject: s\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"
    )


def test_many_small_parts_are_scanned_in_a_worker_not_the_loop() -> None:
    assert not _has_heavy_part(_multipart(3))
    assert _has_heavy_part(_multipart(500))
    uu = b"From: a@b\r\nSubject: s\r\n\r\nsee below\r\nbegin 644 file.docx\r\nM`\r\nend\r\n"
    assert _has_heavy_part(uu)


def test_two_hundred_thousand_parts_are_read_up_to_the_limit_and_said_so() -> None:
    started = time.monotonic()
    parsed = parse_message(_multipart(200_000))
    assert time.monotonic() - started < 20
    assert any("more than 5000 MIME parts" in u for u in parsed.unread)
    assert len([u for u in parsed.unread if "MIME parts" in u]) == 1
