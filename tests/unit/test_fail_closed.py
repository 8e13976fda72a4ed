"""Issue 11: what the scanner does not read is never a clean report.

Each message hides a roster of three My Numbers behind something that made an
earlier scanner read less; the report must either find them or say, in a field
policy acts on (``unread`` / an attachment status), what it did not read."""

from __future__ import annotations

import email
import email.policy

import pytest
from failclosed_support import (
    NUMBERS,
    ROSTER,
    archive_over_member_budget,
    broken_utf8,
    many_parts,
    nested_comment,
    two_boundaries,
    two_content_types,
    two_transfer_encodings,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp import mime
from dlp.config import ScanSettings
from dlp.extract.text import decode_text
from dlp.model import AttachmentStatus
from dlp.scanner import scan_message

SCAN = ScanSettings()


def test_a_content_type_comment_nested_thousands_deep_does_not_hide_the_attachment() -> None:
    r = scan_message(nested_comment(), SCAN)
    assert r.mynumber.high == 3
    assert [(a.filename, a.status) for a in r.attachments] == [
        ("meibo.csv", AttachmentStatus.SCANNED)
    ]
    assert any("RecursionError" in d for d in r.defects)


def test_parts_beyond_the_part_budget_are_reported_unread() -> None:
    r = scan_message(many_parts(), SCAN)
    assert r.mynumber.distinct == 0  # the roster is past the budget ...
    assert r.incomplete and any("5000 MIME parts" in u for u in r.unread)  # ... and it says so


def test_a_small_multipart_is_complete() -> None:
    r = scan_message(many_parts(3), SCAN)
    assert r.mynumber.high == 3 and not r.incomplete and r.unread == ()


@pytest.mark.parametrize("decoy_first", [True, False])
def test_two_boundary_parameters_are_read_both_ways(decoy_first: bool) -> None:
    r = scan_message(two_boundaries(decoy_first), SCAN)
    assert r.mynumber.high == 3
    assert r.incomplete and any("2 boundary parameters" in u for u in r.unread)


@pytest.mark.parametrize("build", [two_content_types, two_transfer_encodings])
def test_duplicate_content_headers_are_read_every_way(build) -> None:  # type: ignore[no-untyped-def]
    r = scan_message(build(), SCAN)
    assert r.mynumber.high == 3
    assert r.incomplete and any("ambiguous MIME structure" in u for u in r.unread)


def test_one_bad_byte_in_utf8_costs_one_character_not_the_keyword() -> None:
    r = scan_message(broken_utf8(), SCAN)
    assert r.mynumber.high == 3 and not r.incomplete


def test_archive_members_past_the_member_budget_mark_the_archive() -> None:
    r = scan_message(archive_over_member_budget(3), ScanSettings(max_members=4))
    top = next(a for a in r.attachments if a.filename == "docs.zip")
    assert top.status is AttachmentStatus.TOO_LARGE
    assert "members not read" in top.detail
    assert r.incomplete and r.mynumber.distinct == 0
    # with room for all members the same archive is read to the roster
    full = scan_message(archive_over_member_budget(3), SCAN)
    assert full.mynumber.high == 3 and not full.incomplete


def test_unparseable_message_is_read_as_text_with_its_base64_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No parser available at all (both email policies fail): the fallback must
    # still decode the base64 roster and must say the structure was not read.
    def refuse(*_a: object, **_k: object) -> None:
        raise RecursionError

    monkeypatch.setattr(mime.email, "message_from_bytes", refuse)
    monkeypatch.setattr(mime, "fast_tree", lambda _raw: None)
    r = scan_message(two_transfer_encodings(), SCAN)
    assert r.mynumber.high == 3
    assert r.incomplete and any("could not be parsed as MIME" in u for u in r.unread)
    assert [a.filename for a in r.attachments] == ["message-block1.bin"]


def test_epilogue_text_is_read() -> None:
    raw = many_parts(1) + b"\r\n" + ("個人番号 " + NUMBERS[0] + "\r\n").encode()
    r = scan_message(raw, SCAN)
    assert r.mynumber.distinct == 3  # the roster, and the number after the closing boundary
    assert any("epilogue" in f.location for f in r.findings)


def test_boilerplate_preamble_adds_nothing() -> None:
    raw = many_parts(1).replace(
        b"\r\n\r\n--b1", b"\r\n\r\nThis is a multi-part message in MIME format.\r\n--b1", 1
    )
    parsed = mime.parse_message(raw)
    assert not any("preamble" in c.location for c in parsed.chunks)
    assert email.message_from_bytes(raw, policy=email.policy.default).preamble


# -- decoding degrades per character, never per part -------------------------------------------

_JAPANESE = st.text(
    alphabet=st.sampled_from("あいうえおかきくけこ漢字番号氏名住所"), min_size=20, max_size=200
)


@settings(max_examples=200, deadline=None)
@given(prefix=_JAPANESE, suffix=_JAPANESE, cut=st.integers(min_value=1, max_value=2))
def test_a_cut_character_in_declared_utf8_keeps_the_rest(
    prefix: str, suffix: str, cut: int
) -> None:
    data = prefix.encode() + "字".encode()[:-cut] + ("個人番号" + suffix).encode()
    text, charset = decode_text(data, "utf-8")
    assert charset == "utf-8"
    assert text.startswith(prefix) and text.endswith("個人番号" + suffix)


@settings(max_examples=100, deadline=None)
@given(text=_JAPANESE, junk=st.binary(min_size=1, max_size=1).filter(lambda b: b[0] >= 0x80))
def test_a_stray_byte_in_declared_shift_jis_keeps_the_rest(text: str, junk: bytes) -> None:
    good = text.encode("cp932")
    got, _ = decode_text(good[:10] + junk + good[10:] + "個人番号".encode("cp932"), "shift_jis")
    assert got.endswith("個人番号")


def test_stray_8bit_byte_in_iso2022jp_keeps_the_rest() -> None:
    data = "個人番号の一覧です".encode("iso2022_jp") + b"\xa0\r\n" + NUMBERS[0].encode()
    text, charset = decode_text(data, "iso-2022-jp")
    assert charset == "iso-2022-jp" and "個人番号" in text and NUMBERS[0] in text


def test_undeclared_short_cp932_is_not_taken_for_damaged_utf8() -> None:
    assert decode_text("名簿①.csv".encode("cp932"))[0] == "名簿①.csv"


def test_roster_is_what_the_tricks_hide() -> None:
    assert all(n.encode() in ROSTER for n in NUMBERS)


def test_a_file_labelled_as_a_text_body_is_read_as_a_file() -> None:
    """A ZIP (or picture, PDF …) sent as a nameless text/plain part was decoded
    as text and never unpacked: it is read by its bytes like any attachment."""
    import base64
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("meibo.csv", ROSTER)
    raw = (
        "From: a@example.lg.jp\r\nTo: b@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(buf.getvalue()).decode()
        + "\r\n--b--\r\n"
    ).encode()
    r = scan_message(raw, SCAN)
    assert r.mynumber.high == 3
    assert [a.filename for a in r.attachments][:1] == ["part1.1.bin"]


def _many_parameters(ctype: str, n: int, body: str) -> bytes:
    params = "".join(f";\r\n name*{i}*=utf-8''%E5%80%8B" for i in range(n))
    return (
        "From: a@example.lg.jp\r\nTo: b@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: {ctype}{params}\r\n\r\n{body}"
    ).encode()


@pytest.mark.timeout(30)  # a hang guard: the email package took seconds on such a field
def test_a_field_of_thousands_of_parameters_is_cut_and_named() -> None:
    """Thousands of RFC 2231 parameters in one Content-Type: the first hundred are
    read, the cut is named in ``unread`` (so the message is incomplete and held for
    outside recipients), and the body is still scanned."""
    raw = _many_parameters("text/plain; charset=utf-8", 8000, "個人番号 123456789018\r\n")
    report = scan_message(raw, ScanSettings())
    assert report.summaries["mynumber"].high == 1
    assert report.incomplete
    assert any(
        f"only the first {mime.MAX_PARAMETERS} were read" in u and "8001 parameters" in u
        for u in report.unread
    ), report.unread


@pytest.mark.timeout(30)
def test_a_boundary_behind_the_cut_leaves_the_structure_unread() -> None:
    body = "--b\r\nContent-Type: text/plain\r\n\r\n個人番号 123456789018\r\n--b--\r\n"
    raw = _many_parameters("multipart/mixed", 500, body).replace(
        b"\r\n\r\n--b", b';\r\n boundary="b"\r\n\r\n--b', 1
    )
    report = scan_message(raw, ScanSettings())
    assert report.incomplete
    assert any("Content-Type field with 501 parameters" in u for u in report.unread)


def test_a_few_parameters_are_read_whole() -> None:
    raw = _many_parameters("text/plain; charset=utf-8", 20, "個人番号 123456789018\r\n")
    report = scan_message(raw, ScanSettings())
    assert not report.unread and report.summaries["mynumber"].high == 1


def _csv_mail(content_type: str = "Content-Type:", stray: str = "", cte: str = "base64") -> bytes:
    import base64

    csv = base64.b64encode(ROSTER).decode()
    return (
        "From: a@example.lg.jp\r\nTo: x@gmail.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
        f'{stray}{content_type} multipart/mixed; boundary="BB"\r\n\r\n--BB\r\n'
        "Content-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n--BB\r\n"
        'Content-Type: text/csv; name="a.csv"\r\nContent-Disposition: attachment; filename="a.csv"\r\n'
        f"Content-Transfer-Encoding: {cte}\r\n\r\n{csv}\r\n--BB--\r\n"
    ).encode()


@pytest.mark.parametrize(
    "cte",
    ["base64 ", "base64 (a comment)", "(x)base64", "\r\n base64", '"base64"', "base64;", "BASE64"],
)
def test_a_transfer_encoding_every_client_decodes_is_decoded(cte: str) -> None:
    """A trailing space, a comment (RFC 2045 allows them), a fold: the attachment is
    base64 to every client, and was left encoded here - unread, yet "scanned" (a
    review of 3 Dec 2026 sent My Numbers to gmail.com so)."""
    r = scan_message(_csv_mail(cte=cte), SCAN)
    assert r.mynumber.high == 3 and not r.unread


def test_the_obsolete_space_before_a_colon_is_read_as_clients_read_it() -> None:
    """``Content-Type : multipart/mixed`` (RFC 5322 4.5.1): mail clients read the field,
    the email package ended the headers there and read the attachment as text."""
    r = scan_message(_csv_mail("Content-Type :"), SCAN)
    assert r.mynumber.high == 3 and not r.unread


@pytest.mark.parametrize("stray", ["X-Mailer-Info\r\n", ">From a\r\n"])
def test_headers_ended_by_a_line_that_is_no_field_are_incomplete(stray: str) -> None:
    """A stray line ends the header block for the parser, which reads the rest as text;
    a lenient client may read on and show the attachment.  Not read as the recipient
    may see it: incomplete, so policy holds it for outside."""
    r = scan_message(_csv_mail(stray=stray), SCAN)
    assert any("not a header field" in u for u in r.unread)


def test_a_file_uuencoded_into_a_text_body_is_an_attachment() -> None:
    """Old mailers uuencode files into the body, and mail clients show them as
    attachments (Thunderbird does): read as one (a review of 3 Dec 2026)."""
    import binascii

    lines = "".join(
        binascii.b2a_uu(ROSTER[i : i + 45]).decode().rstrip("\n") + "\r\n"
        for i in range(0, len(ROSTER), 45)
    )
    raw = (
        "From: a@example.lg.jp\r\nTo: x@gmail.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n送ります。\r\n\r\n"
        f"begin 644 meibo.csv\r\n{lines}`\r\nend\r\n"
    ).encode()
    r = scan_message(raw, SCAN)
    assert r.mynumber.high == 3
    assert [(a.filename, a.status) for a in r.attachments] == [
        ("meibo.csv", AttachmentStatus.SCANNED)
    ]
    text = "begin 644 is how the line starts\r\nnot uuencode\r\nend\r\n"
    plain = scan_message(
        f"From: a@example.lg.jp\r\nSubject: t\r\n\r\n{text}".encode(), SCAN
    )  # prose that looks like it: no attachment, no error
    assert plain.attachments == () and plain.error == ""
