"""dlp.mime: real messages in the encodings Japanese mail uses, and broken ones."""

from __future__ import annotations

import base64
import quopri
from email.message import EmailMessage

import pytest

from dlp.extract.text import decode_iso2022jp
from dlp.mime import decode_header_value, parse_message

TEXT = "山田様\r\n個人番号は 6214-9832-0257 です。①㈱ よろしくお願いします。\r\n"


def raw_message(
    body: bytes, ctype: str = "text/plain", cte: str = "7bit", extra: str = ""
) -> bytes:
    head = (
        "From: sender@example.jp\r\nTo: rcpt@example.com\r\nSubject: test\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n{extra}\r\n"
    )
    return head.encode("ascii") + body


def cp50220(text: str) -> bytes:
    """ISO-2022-JP as Windows writes it (CP50220): NEC row 13 via JIS X 0208 escapes.

    Built by converting CP932 bytes back to JIS, since Python cannot encode CP50220."""
    out = bytearray()
    in_kanji = False
    for ch in text:
        if ord(ch) < 0x80:
            if in_kanji:
                out += b"\x1b(B"
                in_kanji = False
            out += ch.encode("ascii")
            continue
        s1, s2 = ch.encode("cp932")
        if not in_kanji:
            out += b"\x1b$B"
            in_kanji = True
        # Shift_JIS → JIS X 0208
        j1 = (s1 - (0x70 if s1 <= 0x9F else 0xB0)) << 1
        if s2 < 0x9F:
            j1 -= 1
            j2 = s2 - (0x20 if s2 >= 0x80 else 0x1F)
        else:
            j2 = s2 - 0x7E
        out += bytes((j1, j2))
    if in_kanji:
        out += b"\x1b(B"
    return bytes(out)


def body_text(raw: bytes) -> str:
    parsed = parse_message(raw)
    bodies = [c for c in parsed.chunks if c.location.startswith("body")]
    assert len(bodies) == 1, parsed
    return bodies[0].text


def test_cp50220_helper_roundtrips_plain_jis() -> None:
    assert decode_iso2022jp(cp50220("個人番号")) == "個人番号"
    assert cp50220("個人番号") == "個人番号".encode("iso2022_jp")


@pytest.mark.parametrize(
    ("charset", "encode"),
    [
        ("iso-2022-jp", cp50220),
        ("ISO-2022-JP", cp50220),
        ("shift_jis", lambda t: t.encode("cp932")),
        ("Shift-JIS", lambda t: t.encode("cp932")),
        ("euc-jp", lambda t: t.replace("①㈱", "").encode("euc_jp")),
        ("utf-8", lambda t: t.encode("utf-8")),
        ("utf-16", lambda t: t.encode("utf-16")),
    ],
)
@pytest.mark.parametrize("cte", ["base64", "quoted-printable", "8bit"])
def test_body_charsets_and_transfer_encodings(charset: str, encode, cte: str) -> None:  # type: ignore[no-untyped-def]
    data = encode(TEXT)
    if cte == "base64":
        payload = base64.encodebytes(data)
    elif cte == "quoted-printable":
        payload = quopri.encodestring(data)
    else:
        if charset == "utf-16":
            pytest.skip("UTF-16 cannot travel as 8bit")
        payload = data
    got = body_text(raw_message(payload, f"text/plain; charset={charset}", cte))
    assert "個人番号は 6214-9832-0257 です。" in got
    if charset != "euc-jp":
        assert "①㈱" in got


def test_unlabelled_and_mislabelled_bodies_are_detected() -> None:
    long = TEXT * 5
    for ctype, data in [
        ("text/plain", long.encode("cp932")),
        ("text/plain; charset=us-ascii", long.encode("utf-8")),
        ("text/plain; charset=iso-8859-1", long.encode("cp932")),
        ("text/plain; charset=utf-8", long.encode("cp932")),
        ("text/plain; charset=us-ascii", cp50220(long)),
        ("text/plain", cp50220(long)),
        ("text/plain; charset=x-unknown-charset", long.encode("euc_jp", "ignore")),
    ]:
        got = body_text(raw_message(data, ctype, "8bit"))
        assert "個人番号は 6214-9832-0257" in got, ctype


def test_qp_soft_line_break_inside_a_number() -> None:
    payload = "個人番号".encode("iso2022_jp") + b" 621498=\r\n320257"
    got = body_text(raw_message(payload, "text/plain; charset=iso-2022-jp", "quoted-printable"))
    assert got == "個人番号 621498320257"


def test_html_body_keeps_numbers_interrupted_by_markup() -> None:
    html = "<html><body><p>個人番号 6214<span>9832</span>0257</p><p>a&nbsp;1234&nbsp;5678</p></body></html>"
    got = body_text(raw_message(html.encode("cp932"), "text/html; charset=shift_jis", "8bit"))
    assert "個人番号 621498320257" in got
    assert "a 1234 5678" in got


def test_headers_rfc2047_and_raw_8bit() -> None:
    subj = "=?ISO-2022-JP?B?" + base64.b64encode(cp50220("マイナンバー①")).decode() + "?="
    raw = (
        f"Subject: {subj}\r\nFrom: =?Shift_JIS?B?{base64.b64encode('山田㈱'.encode('cp932')).decode()}?= <a@x.jp>\r\n"
        "To: b@example.com\r\nMIME-Version: 1.0\r\n\r\nbody\r\n"
    ).encode("ascii")
    raw = raw.replace(b"To: b@example.com", "Cc: 田中 <c@x.jp>".encode())
    parsed = parse_message(raw)
    heads = {c.location: c.text for c in parsed.chunks if c.location.startswith("header:")}
    assert heads["header:Subject"] == "マイナンバー①"
    assert heads["header:From"] == "山田㈱ <a@x.jp>"
    assert heads["header:Cc"] == "田中 <c@x.jp>"
    assert parsed.subject == "マイナンバー①"


def test_encoded_word_split_inside_a_character() -> None:
    data = "個人番号".encode()
    a, b = base64.b64encode(data[:4]).decode(), base64.b64encode(data[4:]).decode()
    assert decode_header_value(f"=?UTF-8?B?{a}?=\r\n =?UTF-8?B?{b}?=") == "個人番号"


def attachment_message(disposition: str) -> bytes:
    return (
        "From: a@x.jp\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="BB"\r\n\r\n'
        "--BB\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n"
        f"--BB\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment;{disposition}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(b"hello").decode()
        + "\r\n--BB--\r\n"
    ).encode("ascii")


@pytest.mark.parametrize(
    "disposition",
    [
        " filename*=UTF-8''%E5%90%8D%E7%B0%BF%E2%91%A0.csv",
        " filename*=ISO-2022-JP''" + "".join(f"%{b:02X}" for b in cp50220("名簿①")) + ".csv",
        " filename*=Shift_JIS''" + "".join(f"%{b:02X}" for b in "名簿①".encode("cp932")) + ".csv",
        "\r\n filename*0*=UTF-8''%E5%90%8D%E7%B0;\r\n filename*1*=%BF%E2%91%A0;\r\n filename*2=.csv",
        ' filename="=?ISO-2022-JP?B?' + base64.b64encode(cp50220("名簿①")).decode() + '?=.csv"',
        ' filename="=?UTF-8?B?' + base64.b64encode("名簿①.csv".encode()).decode() + '?="',
    ],
)
def test_attachment_file_names(disposition: str) -> None:
    parsed = parse_message(attachment_message(disposition))
    (att,) = parsed.attachments
    assert att.filename == "名簿①.csv"
    assert att.data == b"hello"
    assert att.location == "attachment:名簿①.csv"


def test_raw_8bit_shift_jis_file_name() -> None:
    raw = attachment_message(' filename="X.csv"').replace(b"X.csv", "名簿①.csv".encode("cp932"))
    (att,) = parse_message(raw).attachments
    assert att.filename == "名簿①.csv"


def test_nested_message_rfc822_is_an_attachment_with_the_parsed_message() -> None:
    inner = EmailMessage()
    inner["Subject"] = "転送: マイナンバー"
    inner.set_content("個人番号 621498320257")
    outer = EmailMessage()
    outer["Subject"] = "Fwd"
    outer.set_content("see below")
    outer.add_attachment(inner)
    parsed = parse_message(outer.as_bytes())
    (att,) = parsed.attachments
    assert att.is_message and att.content_type == "message/rfc822"
    nested = parse_message(att.data, prefix="attachment:fwd.eml/")
    texts = {c.location: c.text for c in nested.chunks}
    assert texts["attachment:fwd.eml/header:Subject"] == "転送: マイナンバー"
    assert "621498320257" in texts["attachment:fwd.eml/body:text/plain"]


def test_multipart_alternative_reads_both_bodies() -> None:
    m = EmailMessage()
    m["Subject"] = "x"
    m.set_content("plain 個人番号")
    m.add_alternative("<p>html <b>個人番号</b></p>", subtype="html")
    locs = [c.location for c in parse_message(m.as_bytes()).chunks]
    assert "body:text/plain" in locs and "body:text/html" in locs


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x01\x02garbage",
        b"Subject: no body",
        b'Content-Type: multipart/mixed; boundary="X"\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\nno end boundary 621498320257',
        b'Content-Type: multipart/mixed; boundary="X"\r\n\r\nno boundary at all',
        b"Content-Type: text/plain; charset=bogus-9\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nYWJj\r\nZA",
        b"Content-Type: text/plain; charset=\r\nContent-Transfer-Encoding: x-weird\r\n\r\nabc",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(b"Subject: inner\r\n\r\n621498320257"),
        b"Subject: =?utf-8?B?!!!?= =?x-unknown?Q?abc?=\r\n\r\nbody",
        b"Content-Type: multipart/mixed; boundary=A\r\n\r\n"
        + b"--A\r\nContent-Type: multipart/mixed; boundary=A\r\n\r\n" * 200,
    ],
)
def test_broken_mime_never_raises(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert isinstance(parsed.defects, tuple)


def test_defects_are_recorded() -> None:
    raw = b'Content-Type: multipart/mixed; boundary="X"\r\n\r\nno boundary at all'
    assert parse_message(raw).defects
    bad64 = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\xe5\x80\x8b\xe4\xba\xba 621498320257"
    parsed = parse_message(bad64)
    assert any("not base64" in d for d in parsed.defects)
    assert "621498320257" in parsed.chunks[0].text  # read as sent


def test_base64_with_junk_characters_is_also_read_as_a_mail_client_decodes_it() -> None:
    """RFC 2045 6.8: a decoder ignores characters outside the base64 alphabet, so
    junk sprinkled into real base64 hides nothing from the recipient - nor from us."""
    text = "個人番号: 621498320257\r\n".encode()
    clean = base64.b64encode(text).decode()
    junked = "!".join(clean[i : i + 4] for i in range(0, len(clean), 4))
    for ctype, name in (
        ("text/plain", ""),
        ("text/html", ""),
        ("application/octet-stream", "a.txt"),
    ):
        disposition = f'Content-Disposition: attachment; filename="{name}"\r\n' if name else ""
        raw = (
            f"Content-Type: {ctype}; charset=utf-8\r\n{disposition}"
            f"Content-Transfer-Encoding: base64\r\n\r\n{junked}\r\n"
        ).encode()
        parsed = parse_message(raw)
        assert any("not base64" in d for d in parsed.defects)
        if name:
            decoded = [a for a in parsed.attachments if a.filename == "a.txt (base64 decoded)"]
            assert [a.data for a in decoded] == [text]
        else:
            assert any("621498320257" in c.text for c in parsed.chunks), ctype


def test_base64_rfc822_is_decoded() -> None:
    raw = (
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(b"Subject: inner\r\n\r\n621498320257")
    )
    (att,) = parse_message(raw).attachments
    assert att.data.startswith(b"Subject: inner")


def test_base64_with_a_footer_appended_is_still_decoded() -> None:
    body = base64.encodebytes("個人番号 621498320257".encode())
    raw = raw_message(
        body + b"\r\n-- \r\nMailing list footer: https://lists.example.jp/\r\n",
        "text/plain; charset=utf-8",
        "base64",
    )
    assert "個人番号 621498320257" in body_text(raw)


def test_malformed_content_type_keeps_only_the_media_type() -> None:
    raw = (
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        b'Content-Type: application/pdf name="invoice_302232133150612.pdf"\r\n\r\n%PDF-1.4\r\n--B--\r\n'
    )
    parsed = parse_message(raw)
    (att,) = parsed.attachments
    assert att.content_type == "application/pdf"
    assert any("malformed Content-Type" in d for d in parsed.defects)


def test_raw_iso2022jp_and_mixed_headers() -> None:
    raw = (
        b"Subject: " + cp50220("マイナンバー①") + b"\r\n"
        b"From: "
        + "山田".encode()
        + b" =?UTF-8?B?"
        + base64.b64encode("太郎".encode())
        + b"?= <a@x.jp>\r\n\r\nbody\r\n"
    )
    heads = {c.location: c.text for c in parse_message(raw).chunks}
    assert heads["header:Subject"] == "マイナンバー①"
    assert heads["header:From"] == "山田 太郎 <a@x.jp>"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("; format=flowed; delsp=yes", "個人番号: 621498320257"),
        ('; format="Flowed"; DelSp="Yes"', "個人番号: 621498320257"),
        ("; format=flowed", "個人番号: 621498 320257"),
        ("", "個人番号: 621498 \n320257"),  # not flowed: the break stays
    ],
)
def test_format_flowed_bodies_are_read_as_a_client_shows_them(params: str, expected: str) -> None:
    """RFC 3676: a line ending in a space joins the next; with delsp=yes the space
    goes too, so the recipient sees one number where the source has two lines."""
    for cte, body in (("8bit", "個人番号: 621498 \r\n320257".encode()), ("7bit", None)):
        if body is None:  # the ASCII fast path
            body, expected = b"No: 621498 \r\n320257", expected.replace("個人番号", "No")
        raw = (
            f"Content-Type: text/plain; charset=utf-8{params}\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n\r\n"
        ).encode() + body
        text = parse_message(raw).chunks[0].text.replace("\r\n", "\n")
        assert text.rstrip("\n") == expected


def test_format_flowed_keeps_quote_depths_and_the_signature_apart() -> None:
    raw = (
        b"Content-Type: text/plain; format=flowed; delsp=yes\r\n\r\n"
        b"> quoted 6214 \r\n> 9832\r\nmine \r\n-- \r\nsig\r\n"
    )
    lines = parse_message(raw).chunks[0].text.split("\n")
    assert lines[:4] == [">quoted 62149832", "mine", "-- ", "sig"]
