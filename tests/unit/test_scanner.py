"""dlp.scanner: budgets, depth, context across parts, and what may leave it."""

from __future__ import annotations

import io
import pickle
import zipfile
from email.message import EmailMessage

from dlp.config import ScanSettings
from dlp.model import AttachmentStatus, Confidence
from dlp.scanner import scan_file, scan_message

SCAN = ScanSettings()
NUMBER = "621498320257"


def message(body: str = "こんにちは", subject: str = "ご連絡") -> EmailMessage:
    m = EmailMessage()
    m["From"] = "a@example.lg.jp"
    m["To"] = "b@example.com"
    m["Subject"] = subject
    m.set_content(body)
    return m


def test_report_fields_and_no_digits_in_metadata() -> None:
    m = message(f"個人番号 {NUMBER}", subject=f"マイナンバー {NUMBER}")
    m["Message-ID"] = f"<{NUMBER}@example.lg.jp>"
    m.add_attachment(b"x" * 300, maintype="text", subtype="plain", filename=f"{NUMBER}.txt")
    r = scan_message(m.as_bytes(), SCAN, "test")
    assert r.source == "test" and r.size > 0 and r.error == ""
    # the body, the Subject and the attachment's file name: one number, three places
    assert r.mynumber.distinct == 1 and r.mynumber.high == 1 and r.mynumber.total == 3
    dumped = repr(r) + str(r.to_json())
    assert NUMBER not in dumped and NUMBER[:8] not in dumped
    assert r.subject == "マイナンバー ************"
    assert r.attachments[0].filename == "************.txt"
    pickle.loads(pickle.dumps(r))  # reports cross the worker-pool boundary


def test_message_id_keeps_queue_ids_and_timestamps_for_the_audit_trail() -> None:
    m = message()
    m["Message-ID"] = "<20261126101010.4F2A1C0DE@mail.example.lg.jp>"
    r = scan_message(m.as_bytes(), SCAN, "test")
    assert r.message_id == "<20261126101010.4F2A1C0DE@mail.example.lg.jp>"


def test_subject_keyword_raises_attachment_numbers_to_medium() -> None:
    m = message(subject="マイナンバーの件")
    m.add_attachment(
        f"{NUMBER}\n".encode() + b" " * 300, maintype="text", subtype="plain", filename="a.txt"
    )
    r = scan_message(m.as_bytes(), SCAN)
    (f,) = r.findings
    assert f.location == "attachment:a.txt" and f.confidence is Confidence.MEDIUM
    plain = message(subject="ご連絡")
    plain.add_attachment(
        f"{NUMBER}\n".encode() + b" " * 300, maintype="text", subtype="plain", filename="a.txt"
    )
    assert scan_message(plain.as_bytes(), SCAN).findings[0].confidence is Confidence.LOW


def test_subject_keyword_raises_body_numbers_to_medium() -> None:
    far = "あ" * 400 + NUMBER
    assert (
        scan_message(message(far, "マイナンバー提出").as_bytes(), SCAN).findings[0].confidence
        is Confidence.MEDIUM
    )
    assert (
        scan_message(message(far, "ご連絡").as_bytes(), SCAN).findings[0].confidence
        is Confidence.LOW
    )


def test_file_name_keyword_raises_to_medium() -> None:
    r = scan_file(f"{NUMBER}\n".encode(), "マイナンバー一覧.txt", SCAN, "f")
    assert r.findings[0].confidence is Confidence.MEDIUM


def test_small_file_with_one_number_gets_no_hash() -> None:
    r = scan_file(f"{NUMBER}\n".encode(), "n.txt", SCAN, "f")
    assert r.attachments[0].sha256 == "" and "withheld" in r.attachments[0].detail
    clean = scan_file(b"hello\n", "n.txt", SCAN, "f")
    assert len(clean.attachments[0].sha256) == 64
    two = scan_file(f"個人番号\n{NUMBER}\n983205673214\n".encode(), "n.csv", SCAN, "f")
    assert len(two.attachments[0].sha256) == 64
    big = scan_file(f"個人番号 {NUMBER}\n".encode() + "あ".encode() * 200, "n.txt", SCAN, "f")
    assert len(big.attachments[0].sha256) == 64


def test_nested_archives_stop_at_max_depth() -> None:
    data = f"個人番号\n{NUMBER}\n".encode()
    name = "a.csv"
    for i in range(4):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(name, data)
        data, name = buf.getvalue(), f"z{i}.zip"
    shallow = scan_file(data, name, SCAN, "f")
    assert shallow.mynumber.high == 1
    deep = scan_file(data, name, ScanSettings(max_depth=2), "f")
    assert deep.mynumber.total == 0
    assert any(a.status is AttachmentStatus.TOO_DEEP for a in deep.attachments)


def test_forwarded_messages_nest_and_stop_at_max_depth() -> None:
    inner = message(f"個人番号 {NUMBER}")
    for _ in range(3):
        outer = message("fwd")
        outer.add_attachment(inner)
        inner = outer
    r = scan_message(inner.as_bytes(), SCAN)
    assert r.mynumber.high == 1
    assert r.findings[0].location.count("attachment:") == 3
    deep = scan_message(inner.as_bytes(), ScanSettings(max_depth=2))
    assert deep.mynumber.total == 0
    assert any(a.status is AttachmentStatus.TOO_DEEP for a in deep.attachments)


def test_timeout_is_reported_as_error() -> None:
    m = message(f"個人番号 {NUMBER}")
    for i in range(3):
        m.add_attachment(b"data" * 100, maintype="text", subtype="plain", filename=f"{i}.txt")
    r = scan_message(m.as_bytes(), ScanSettings(timeout_seconds=1e-9))
    assert r.error.startswith("timeout")


def test_byte_budget_marks_attachments_too_large() -> None:
    m = message()
    m.add_attachment(b"a" * 5000, maintype="text", subtype="plain", filename="big.txt")
    m.add_attachment(b"b" * 5000, maintype="text", subtype="plain", filename="big2.txt")
    r = scan_message(m.as_bytes(), ScanSettings(max_total_bytes=6000))
    assert [a.status for a in r.attachments] == [
        AttachmentStatus.SCANNED,
        AttachmentStatus.TOO_LARGE,
    ]


def test_garbage_never_raises() -> None:
    for data in (b"", b"\x00" * 100, bytes(range(256)) * 10, b"PK\x03\x04" + b"\xff" * 100):
        assert scan_message(data, SCAN).error == ""
        assert scan_file(data, "x.bin", SCAN, "x").error == ""


def test_findings_are_capped_but_counts_are_not() -> None:
    from dlp.detect.mynumber import check_digit

    rows = []
    for i in range(1200):
        base = f"{i + 10**10:011d}"
        rows.append(base + str(check_digit(base)))
    data = ("個人番号\n" + "\n".join(rows)).encode()
    r = scan_file(data, "list.csv", SCAN, "f")
    assert r.mynumber.distinct == 1200 and len(r.findings) == 1000
    assert any("first 1000" in d for d in r.defects)
    assert r.reportable_scale


def test_smime_and_pgp_encrypted_parts_are_encrypted_attachments() -> None:
    smime = (
        b"From: a@example.lg.jp\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQA=\r\n"
    )
    (a,) = scan_message(smime, SCAN).attachments
    assert a.status is AttachmentStatus.ENCRYPTED and "S/MIME" in a.detail
    pgp = (
        b"From: a@example.lg.jp\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
        b'--B\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n'
        b"-----BEGIN PGP MESSAGE-----\r\nhQEMA...\r\n-----END PGP MESSAGE-----\r\n--B--\r\n"
    )
    atts = scan_message(pgp, SCAN).attachments
    assert [a.status for a in atts] == [AttachmentStatus.SCANNED, AttachmentStatus.ENCRYPTED]
    signed = (
        b"From: a@example.lg.jp\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\n\xe5\x80\x8b\xe4\xba\xba\xe7\x95\xaa\xe5\x8f\xb7 621498320257\r\n"
        b'--B\r\nContent-Type: application/pkcs7-signature; name="smime.p7s"\r\n\r\nMIAGCSqG\r\n--B--\r\n'
    )
    r = scan_message(signed, SCAN)
    assert r.mynumber.high == 1  # a signed message is read
    assert all(a.status is not AttachmentStatus.ENCRYPTED for a in r.attachments)


def test_a_part_that_cannot_be_read_is_an_error_attachment_policy_sees(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Fault injection: whatever bug makes one part unreadable, the part must not
    # vanish into the defects list, where policy never looks.
    import dlp.mime

    real_leaf = dlp.mime._leaf

    def leaf(part, ctype, w, path):  # type: ignore[no-untyped-def]
        if ctype == "text/csv":
            raise ValueError("boom")
        return real_leaf(part, ctype, w, path)

    monkeypatch.setattr(dlp.mime, "_leaf", leaf)
    m = message()
    m.add_attachment(
        f"個人番号\n{NUMBER}\n".encode(), maintype="text", subtype="csv", filename="a.csv"
    )
    r = scan_message(m.as_bytes(), SCAN, "test")
    assert [a.status for a in r.attachments] == [AttachmentStatus.ERROR]
    assert "ValueError" in r.attachments[0].detail
    assert any("unreadable" in d for d in r.defects)
