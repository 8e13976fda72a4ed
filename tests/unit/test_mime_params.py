"""RFC 2231 parameter parsing must never lose the part it belongs to."""

from __future__ import annotations

from dlp.mime import parse_message


def _message(disposition: str) -> bytes:
    return (
        "From: a@example.jp\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        f"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: {disposition}\r\n\r\n"
        "payload\r\n--B--\r\n"
    ).encode()


def test_huge_continuation_index_keeps_the_attachment() -> None:
    # int() refuses a 5000-digit string; the attachment must still be handed on.
    parsed = parse_message(_message("attachment; filename*" + "9" * 5000 + "=x.txt"))
    assert [a.data for a in parsed.attachments] == [b"payload"]
    assert not any("unreadable" in d for d in parsed.defects)


def test_ordinary_continuations_still_join_in_order() -> None:
    parsed = parse_message(
        _message('attachment; filename*1="b.txt"; filename*0="a"; filename*10=""')
    )
    assert [a.filename for a in parsed.attachments] == ["ab.txt"]
