"""Encrypted Office, legacy .doc field handling, RTF, Outlook .msg and TNEF."""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import pytest
from extract_support import N1, N2, budget, numbers_found, run, text_of, walk

from dlp.extract.legacy import _clean_doc_text
from dlp.model import AttachmentStatus

pytestmark = pytest.mark.timeout(60)


def _encrypted_docx(password: str) -> bytes:
    import docx
    from msoffcrypto.format.ooxml import OOXMLFile

    d = docx.Document()
    d.add_paragraph(f"個人番号 {N2}")
    plain = io.BytesIO()
    d.save(plain)
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(plain.getvalue())).encrypt(password, out)
    return out.getvalue()


def test_password_protected_docx_is_encrypted() -> None:
    ex = run(_encrypted_docx("himitsu"), "秘.docx")
    assert ex.kind == "encrypted-office"
    assert ex.status is AttachmentStatus.ENCRYPTED
    assert ex.members == ()


def test_default_password_docx_is_decrypted_and_scanned() -> None:
    nodes = walk(_encrypted_docx("VelvetSweatshop"), "ro.docx", budget())
    assert nodes[0].result.status is AttachmentStatus.SCANNED
    inner = nodes[1].result
    assert inner.kind == "docx"
    assert N2 in text_of(inner)


def test_doc_fields_keep_results_and_resultless_instructions() -> None:
    raw = '\x13 HYPERLINK "x" \x14リンク\x15 と \x13EQ \\o\\ad(\\s\\up 10(とうきょう),東京)\x15\r次\x07'
    assert _clean_doc_text(raw) == "リンク と EQ \\o\\ad(\\s\\up 10(とうきょう),東京)\n次\t"


def test_rtf_cp932_pairs_and_unicode_escapes() -> None:
    rtf = (
        b"{\\rtf1\\ansi\\ansicpg932{\\fonttbl{\\f0\\fcharset128 MS Mincho;}}\\f0 "
        b"\\'8c\\'c2\\'90\\'6c\\'94\\'d4\\'8d\\'86 " + N1.encode() + b"\\par "
        b"\\u12510?\\u12452?\\u12490?\\u12531?\\u12496?\\u12540? " + N2.encode() + b"\\par}"
    )
    ex = run(rtf, "a.rtf")
    assert ex.kind == "rtf" and ex.status is AttachmentStatus.SCANNED
    assert f"個人番号 {N1}" in text_of(ex)
    assert f"マイナンバー {N2}" in text_of(ex)
    found = numbers_found(ex.chunks)
    assert set(found) == {N1, N2}


def test_rtf_with_a_large_picture_is_fast() -> None:
    blob = (b"0123456789abcdef" * 8 + b"\r\n") * 40_000  # ≈5 MB of hex picture data
    rtf = b"{\\rtf1\\ansi {\\pict\\pngblip\r\n" + blob + b"} " + N1.encode() + b"}"
    t0 = time.monotonic()
    ex = run(rtf, "pic.rtf")
    assert time.monotonic() - t0 < 1.5
    assert N1 in text_of(ex)


CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_msg_embedded_message_and_attachments() -> None:
    data = (CORPUS / "email-tika" / "testMSG_att_msg.msg").read_bytes()
    ex = run(data, "outer.msg")
    assert ex.kind == "msg" and ex.status is AttachmentStatus.SCANNED
    locations = [c.location for c in ex.chunks]
    assert "attachment:outer.msg!subject" in locations
    assert any("/Test Attachment!body" in loc for loc in locations)
    assert [m.name for m in ex.members] == ["smbprn.00009008.KdcPjl.pdf"]
    assert run(ex.members[0].data).kind == "pdf"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_ansi_msg_decoded_with_its_code_page() -> None:
    data = (CORPUS / "email-tika" / "testMSG_chinese.msg").read_bytes()
    ex = run(data, "big5.msg")
    subject = next(c for c in ex.chunks if c.location.endswith("!subject"))
    assert "格式測試" in subject.text


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_tnef_body_and_attachments() -> None:
    data = (CORPUS / "email-tika" / "testWINMAIL.dat").read_bytes()
    nodes = walk(data, "winmail.dat", budget())
    top = nodes[0].result
    assert top.kind == "tnef" and top.status is AttachmentStatus.SCANNED
    assert "five files" in text_of(top)
    kinds = {n.path.rsplit("/", 1)[-1]: n.result.kind for n in nodes[1:]}
    assert kinds["quick.doc"] == "doc" and kinds["quick.pdf"] == "pdf"


def _ole1(class_name: bytes, native: bytes) -> bytes:
    def lp(b: bytes) -> bytes:
        return struct.pack("<I", len(b)) + b

    return struct.pack("<II", 0x0501, 2) + lp(class_name + b"\0") + lp(b"") + lp(b"") + lp(native)


def _package(name: str, payload: bytes) -> bytes:
    label = name.encode("cp932") + b"\0"
    path = b"C:\\tmp\\" + label
    return (
        b"\x02\x00"
        + label
        + path
        + struct.pack("<I", 0x00030000)
        + struct.pack("<I", len(path))
        + path
        + struct.pack("<I", len(payload))
        + payload
    )


def test_rtf_embedded_objects_become_members() -> None:
    csv = f"氏名,個人番号\r\n山田,{N1}\r\n".encode("cp932")
    package = _ole1(b"Package", _package("名簿.csv", csv))
    sheet = _ole1(b"Excel.Sheet.8", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)

    def hexlines(b: bytes) -> bytes:
        h = b.hex().encode()
        return b"\r\n".join(h[i : i + 128] for i in range(0, len(h), 128))

    rtf = (
        b"{\\rtf1\\ansi\\ansicpg932 before "
        b"{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata " + hexlines(package) + b"}}"
        b"{\\object\\objemb{\\*\\objclass Excel.Sheet.8}{\\*\\objdata\r\n" + hexlines(sheet) + b"}}"
        b" after}"
    )
    ex = run(rtf, "with-objects.rtf")
    assert ex.status is AttachmentStatus.SCANNED
    assert "before" in text_of(ex) and "after" in text_of(ex)
    assert [m.name for m in ex.members] == ["名簿.csv", "Excel.Sheet.8"]
    assert ex.members[0].data == csv
    assert ex.members[1].data.startswith(b"\xd0\xcf\x11\xe0")


def test_ole10native_stream_gives_the_packaged_file() -> None:
    from dlp.extract.legacy import ole10native_member

    native = _package("扶養控除.csv", b"a,b\r\n")
    member = ole10native_member(struct.pack("<I", len(native)) + native)
    assert member is not None
    assert (member.name, member.data) == ("扶養控除.csv", b"a,b\r\n")
    assert ole10native_member(b"\x00\x01") is None
