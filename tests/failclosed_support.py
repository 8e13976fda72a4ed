"""Messages that try to get My Numbers past the scanner by making it read less
(issue 11).  Each builder returns the raw message; ``ROSTER`` is what they hide."""

from __future__ import annotations

import base64
import io
import zipfile

from support import my_number

SENDER = "sender@example.lg.jp"
EXTERNAL = "someone@kaisha-abc.jp"


NUMBERS = (my_number("12345678901"), my_number("98765432109"), my_number("11122233344"))
ROSTER = ("氏名,個人番号\n" + "".join(f"山田{i},{n}\n" for i, n in enumerate(NUMBERS))).encode()
_TEXT = "Content-Type: text/plain; charset=utf-8\r\n\r\nお疲れさまです。"


def _csv_part(data: bytes = ROSTER, name: str = "meibo.csv") -> str:
    b64 = base64.encodebytes(data).decode()
    return (
        f'Content-Type: text/csv; charset=utf-8; name="{name}"\r\n'
        f'Content-Disposition: attachment; filename="{name}"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}"
    )


def _head(subject: str, content_type: str) -> str:
    return (
        f"From: {SENDER}\r\nTo: {EXTERNAL}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@example.lg.jp>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}\r\n\r\n"
    )


def _multipart(subject: str, parts: list[str], boundary: str = "b1", ct_extra: str = "") -> bytes:
    body = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--\r\n"
    return (_head(subject, f'multipart/mixed; boundary="{boundary}"{ct_extra}') + body).encode()


def nested_comment() -> bytes:
    """A sibling part's Content-Type with a comment nested 2,000 deep."""
    comment = "(" * 2000 + ")" * 2000
    return _multipart(
        "nested-comment",
        [f"Content-Type: text/plain {comment}; charset=utf-8\r\n\r\nhi", _csv_part()],
    )


def many_parts(count: int = 5001) -> bytes:
    """The roster after more parts than the parser reads."""
    return _multipart("many-parts", [_TEXT] * count + [_csv_part()])


def two_boundaries(decoy_first: bool = True) -> bytes:
    """``boundary`` twice: the roster is under the one a reader may not pick."""
    real = "".join(f"--real\r\n{p}\r\n" for p in (_TEXT, _csv_part())) + "--real--\r\n"
    order = '"decoy"; boundary="real"' if decoy_first else '"real"; boundary="decoy"'
    head = _head(f"two-boundaries-{decoy_first}", f"multipart/mixed; boundary={order}")
    return (head + f"--decoy\r\n{_TEXT}\r\n--decoy--\r\n" + real).encode()


def two_content_types() -> bytes:
    """A part with two Content-Type headers (text body to one reader, a file to another)."""
    b64 = base64.encodebytes(ROSTER).decode()
    part = (
        'Content-Type: image/png\r\nContent-Type: text/csv; name="a.csv"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}"
    )
    return _multipart("two-content-types", [_TEXT, part])


def two_transfer_encodings() -> bytes:
    b64 = base64.encodebytes(ROSTER).decode()
    part = (
        'Content-Type: text/csv; name="a.csv"\r\nContent-Transfer-Encoding: 7bit\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}"
    )
    return _multipart("two-transfer-encodings", [_TEXT, part])


def broken_utf8() -> bytes:
    """One byte cut from a character (a relay folding a long line mid-character)."""
    body = ("個人番号一覧\r\n" + "\r\n".join(NUMBERS) + "\r\n").encode()
    bad = "あいう".encode()[:-1] + b"\r\n" + body
    head = _head("broken-utf8", "text/plain; charset=utf-8").replace(
        "\r\n\r\n", "\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return head.encode() + bad


def archive_over_member_budget(members: int) -> bytes:
    """A ZIP whose first member (a ZIP of ``members`` files) spends the member
    budget before the roster that follows it."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        for i in range(members):
            zf.writestr(f"filler{i}.txt", "x")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("a-filler.zip", inner.getvalue())
        zf.writestr("z-meibo.csv", ROSTER)
    b64 = base64.encodebytes(outer.getvalue()).decode()
    part = (
        'Content-Type: application/zip; name="docs.zip"\r\n'
        'Content-Disposition: attachment; filename="docs.zip"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}"
    )
    return _multipart("archive-budget", [_TEXT, part])


def tabbed_subject() -> bytes:
    """A number typed one digit per cell and pasted with tabs into the Subject."""
    subject = "個人番号 " + "\t".join(NUMBERS[0])
    return (
        f"From: {SENDER}\r\nTo: {EXTERNAL}\r\nSubject: {subject}\r\n"
        "Message-ID: <tabbed@example.lg.jp>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "ご確認ください。\r\n"
    ).encode()
