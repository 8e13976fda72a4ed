"""Which messages the serving process scans itself (gateway._has_heavy_part).

A message with a part that is not text goes to a scan worker: unpacking it may
be slow, and the serving event loop must keep answering.  Wrongly "heavy" costs
a worker hand-off; wrongly "light" costs the inline budget (then a worker)."""

from __future__ import annotations

import pytest

from dlp.smtp.gateway import _has_heavy_part

PDF = b"Content-Type: application/pdf\r\nContent-Disposition: attachment\r\n\r\nJVBERi0x\r\n"


@pytest.mark.parametrize(
    ("message", "heavy"),
    [
        (b"From: a@b.jp\r\nSubject: x\r\n\r\nplain body\r\n", False),
        (b"From: a@b.jp\r\nContent-Type: text/plain\r\n\r\nbody\r\n", False),
        # A plain body quoting a header line has no part to unpack.
        (b"From: a@b.jp\r\nContent-Type: text/plain\r\n\r\nsee:\r\n" + PDF, False),
        (b"From: a@b.jp\r\n" + PDF, True),
        (PDF, True),  # the header's first line
        (b"From: a@b.jp\r\ncontent-disposition: ATTACHMENT\r\n\r\nx\r\n", True),
        (
            b"From: a@b.jp\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            b"Content-Type: text/plain\r\n\r\nhi\r\n--b\r\n" + PDF + b"--b--\r\n",
            True,
        ),
        (
            b"From: a@b.jp\r\nCONTENT-TYPE: Multipart/Alternative; boundary=b\r\n\r\n--b\r\n"
            b"Content-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: text/html\r\n\r\n"
            b"<p>hi</p>\r\n--b--\r\n",
            False,
        ),
        # Folded or unusual: when unsure, heavy.
        (b"From: a@b.jp\r\nContent-Type:\r\n multipart/mixed; boundary=b\r\n\r\n--b\r\n", True),
        # Bare LF line ends: the whole message is searched, as it always was.
        (b"From: a@b.jp\nContent-Type: text/plain\n\nbody\nContent-Type: image/png\n", True),
    ],
)
def test_which_messages_go_to_a_worker(message: bytes, heavy: bool) -> None:
    assert _has_heavy_part(message) is heavy
