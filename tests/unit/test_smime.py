"""S/MIME files as a mail client shows them (dlp/extract/smime.py): opaque-signed
content is read (a content review of 3 Dec 2026 got a My Number out inside one as an
"unsupported" attachment), a detached signature is no unreadable attachment (every
signed mail was tagged for it), enveloped data is encrypted.  The files are made with
the cryptography package's own CMS builders."""

from __future__ import annotations

import datetime
from email.message import EmailMessage

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from dlp.config import ScanSettings
from dlp.model import AttachmentStatus, Confidence
from dlp.scanner import scan_message

N = "621498320257"
INNER = f"Content-Type: text/plain; charset=utf-8\r\n\r\n個人番号 {N}\r\n".encode()


@pytest.fixture(scope="module")
def signer() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "taro@example.lg.jp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _signed(signer: tuple[x509.Certificate, rsa.RSAPrivateKey], detached: bool = False) -> bytes:
    cert, key = signer
    options = [pkcs7.PKCS7Options.Binary]
    if detached:
        options.append(pkcs7.PKCS7Options.DetachedSignature)
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(INNER)
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, options)
    )


def _mail(part_type: str, params: dict[str, str], payload: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "taro@example.lg.jp", "a@client.co.jp", "signed"
    maintype, subtype = part_type.split("/")
    msg.set_content(payload, maintype=maintype, subtype=subtype, params=params,
                    filename="smime.p7m")  # fmt: skip
    return msg.as_bytes()


def _scan(raw: bytes):  # type: ignore[no-untyped-def]
    return scan_message(raw, ScanSettings(), "smime")


def test_opaque_signed_content_is_read(signer) -> None:  # type: ignore[no-untyped-def]
    der = _signed(signer)
    raw = _mail("application/pkcs7-mime", {"smime-type": "signed-data"}, der)
    report = _scan(raw)
    highs = [f for f in report.findings if f.confidence is Confidence.HIGH]
    assert highs and highs[0].detector == "mynumber", report.findings
    assert all(a.status is AttachmentStatus.SCANNED for a in report.attachments)


def test_a_detached_signature_is_no_unreadable_attachment(signer) -> None:  # type: ignore[no-untyped-def]
    der = _signed(signer, detached=True)
    raw = _mail("application/pkcs7-signature", {}, der)
    report = _scan(raw)
    (att,) = report.attachments
    assert att.status is AttachmentStatus.SCANNED and "detached signature" in att.detail


def test_enveloped_data_sent_as_a_file_is_encrypted(signer) -> None:  # type: ignore[no-untyped-def]
    cert, _ = signer
    der = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(INNER)
        .add_recipient(cert)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    raw = _mail("application/octet-stream", {}, der)
    (att,) = _scan(raw).attachments
    assert att.status is AttachmentStatus.ENCRYPTED


def test_damaged_structures_are_errors_not_crashes() -> None:
    from dlp.extract.base import Budget
    from dlp.extract.smime import extract

    for data in (bytes.fromhex("3080060 92a864886f70d010702a080".replace(" ", "")), b"\x30\x84\xff\xff\xff\xff\x06\x09"):
        got = extract(data, "x.p7m", "x", Budget.from_settings(ScanSettings()))
        assert got.status in (AttachmentStatus.ERROR, AttachmentStatus.SCANNED)


def _to_indefinite_ber(der: bytes) -> bytes:
    """``der`` re-encoded the way streaming S/MIME writers do: every constructed
    element with an indefinite length, every OCTET STRING in 16-byte pieces."""

    def element(pos: int) -> tuple[bytes, int]:
        tag = der[pos]
        first = der[pos + 1]
        if first & 0x80:
            n = first & 0x7F
            length = int.from_bytes(der[pos + 2 : pos + 2 + n], "big")
            start = pos + 2 + n
        else:
            length, start = first, pos + 2
        end = start + length
        if tag & 0x20:
            inner = b""
            p = start
            while p < end:
                piece, p = element(p)
                inner += piece
            return bytes([tag, 0x80]) + inner + b"\x00\x00", end
        if tag == 0x04 and length > 16:
            body = der[start:end]
            pieces = b"".join(
                bytes([0x04, len(body[i : i + 16])]) + body[i : i + 16]
                for i in range(0, len(body), 16)
            )
            return b"\x24\x80" + pieces + b"\x00\x00", end
        return der[pos:end], end

    out, _ = element(0)
    return out


def test_streamed_ber_with_indefinite_lengths_is_read(signer) -> None:  # type: ignore[no-untyped-def]
    der = _signed(signer)
    ber = _to_indefinite_ber(der)
    assert ber != der and b"\x30\x80" in ber[:2]
    raw = _mail("application/pkcs7-mime", {"smime-type": "signed-data"}, ber)
    assert any(f.confidence is Confidence.HIGH for f in _scan(raw).findings)
