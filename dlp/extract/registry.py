"""Pick the extractor for a file by its bytes, and run it without ever raising.

``sniff`` looks at magic bytes and, for the two container families that hide
many formats (ZIP and OLE2 compound files), at the member / stream names.  The
file name and the declared Content-Type are deliberately ignored for the
decision (a ``.txt`` that is really a workbook must be read as a workbook);
the name is only a tie-breaker between ``text`` and ``csv``, which go to the
same module anyway.

``extract`` dispatches by kind to ``dlp.extract.<module>.extract`` and turns
every failure into a status: ``BudgetExceeded`` → its status, anything else →
``error`` with a short reason whose digits are masked (an exception message
may quote file content, and no digits of a number may reach a log: the filter
keeps no My Numbers).

Byte accounting: ``extract`` charges ``len(data)`` of every file it is given
to the budget (``Budget.spend``), so every attachment and every archive member
(which the scanner sends back through here) counts once.  Containers only
*check* their members against the limits while decompressing them (they do
not spend them), and do not call ``Budget.add_member`` either — the scanner
counts members as it recurses — but they refuse to collect more than
``max_members`` (dlp/extract/limits.py).  Office packages check their internal
parts against ``max_ratio`` and what is left of ``max_total_bytes``.

A container whose status is not ``scanned`` (an archive with one encrypted
member) still returns the members it could read; they must be scanned too.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable

from dlp.extract import smime
from dlp.extract.base import Budget, BudgetExceeded, Extracted, Member
from dlp.extract.text import STRAY_CONTROLS, unmarked_wide
from dlp.model import AttachmentStatus

__all__ = ["KINDS", "extract", "safe_reason", "sniff"]

Extractor = Callable[[bytes, str, str, Budget], Extracted]

# kind -> (module under dlp.extract, content type implied by the bytes)
KINDS: dict[str, tuple[str, str]] = {
    "text": ("text", "text/plain"),
    "csv": ("text", "text/csv"),
    "html": ("html", "text/html"),
    "xlsx": ("spreadsheet", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "xlsb": ("spreadsheet", "application/vnd.ms-excel.sheet.binary.macroEnabled.12"),
    "xls": ("spreadsheet", "application/vnd.ms-excel"),
    "ods": ("spreadsheet", "application/vnd.oasis.opendocument.spreadsheet"),
    "docx": ("ooxml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "pptx": ("ooxml", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    "odt": ("opendoc", "application/vnd.oasis.opendocument.text"),
    "odp": ("opendoc", "application/vnd.oasis.opendocument.presentation"),
    "doc": ("legacy", "application/msword"),
    "ppt": ("legacy", "application/vnd.ms-powerpoint"),
    "encrypted-office": ("legacy", "application/x-ms-encrypted-office"),
    "ole": ("legacy", "application/x-ole-storage"),
    "pdf": ("pdf", "application/pdf"),
    "rtf": ("rtf", "application/rtf"),
    "message": ("", "message/rfc822"),
    "msg": ("outlook", "application/vnd.ms-outlook"),
    "tnef": ("outlook", "application/ms-tnef"),
    "pkcs7": ("smime", "application/pkcs7-mime"),
    "zip": ("archive", "application/zip"),
    "gzip": ("archive", "application/gzip"),
    "bzip2": ("archive", "application/x-bzip2"),
    "xz": ("archive", "application/x-xz"),
    "tar": ("archive", "application/x-tar"),
    "7z": ("archive", "application/x-7z-compressed"),
    "rar": ("archive", "application/vnd.rar"),
    "lzh": ("archive", "application/x-lzh-compressed"),
    "cab": ("archive", "application/vnd.ms-cab-compressed"),
    "image": ("", "image/*"),
    "binary": ("", "application/octet-stream"),
}

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_TNEF_MAGIC = b"\x78\x9f\x3e\x22"
_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "image/jp2"),
)
_ISO_BMFF_IMAGE = (b"heic", b"heix", b"mif1", b"msf1", b"avif", b"heim", b"heis")

# Header names that only a mail message starts with (a CSV or log does not).
_MAIL_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "received",
        "return-path",
        "content-type",
        "reply-to",
        "sender",
        "delivered-to",
        "x-mailer",
        "dkim-signature",
        "authentication-results",
        "references",
        "in-reply-to",
        "content-transfer-encoding",
        "user-agent",
        "thread-topic",
        "x-ms-has-attach",
    }
)
_HEADER_LINE = re.compile(rb"^([!-9;-~]+)[ \t]*:[ \t]*(.*)$")  # RFC 5322 obs-optional WSP
_HTML_START = re.compile(
    rb"^(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|meta|title|table|div|p|style|script|!--)[\s>/]",
    re.IGNORECASE | re.DOTALL,
)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def sniff(data: bytes, filename: str = "") -> str:
    """Return the format kind of ``data`` (see ``KINDS``); never raises."""
    try:
        return _sniff(data, filename)
    except Exception:  # a sniffer bug must not take a scan down
        return "binary"


def _sniff(data: bytes, filename: str) -> str:
    head = data[:16]
    if head.startswith(b"PK\x03\x04") or head.startswith((b"PK\x05\x06", b"PK\x07\x08")):
        return _sniff_zip(data)
    if head.startswith(_OLE_MAGIC):
        return _sniff_ole(data)
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"Rar!\x1a\x07"):
        return "rar"
    if head.startswith(b"BZh") and len(head) > 3 and head[3:4] in b"123456789":
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"MSCF\x00\x00\x00\x00"):
        return "cab"
    if len(data) > 7 and data[2:4] == b"-l" and data[6:7] == b"-" and data[4:5] in b"hz":
        return "lzh"  # LHA: "-lh5-" at offset 2; still common in Japanese offices
    if head.startswith(_TNEF_MAGIC):
        return "tnef"
    if head[:1] == b"\x30" and smime.sniff(data[:64]):
        return "pkcs7"
    if data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")[:5] == b"{\\rtf":
        return "rtf"
    if _is_tar(data):
        return "tar"
    if _is_image(data):
        return "image"
    if head.startswith((b"MZ", b"\x7fELF", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe")):
        return _embedded_zip(data) or "binary"
    kind = _sniff_text(data, filename)
    if kind == "binary":
        return _embedded_zip(data) or "binary"
    return kind


def _embedded_zip(data: bytes) -> str:
    """Self-extracting or padded ZIP: a central directory at the end of other bytes."""
    if b"PK\x05\x06" not in data[-66_000:]:
        return ""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            zf.namelist()
    except Exception:
        return ""
    return "zip"


# --- ZIP-based formats ------------------------------------------------------------------------


def _sniff_zip(data: bytes) -> str:
    # OpenDocument puts an uncompressed "mimetype" member first (ODF 1.2 §3.3).
    if data[30:38] == b"mimetype":
        odf = _odf_kind(data[38 : 38 + 80])
        if odf:
            return odf
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            if "mimetype" in names:
                info = zf.getinfo("mimetype")
                if info.file_size < 200 and info.compress_size < 400:
                    odf = _odf_kind(zf.read(info))
                    if odf:
                        return odf
    except Exception:
        # Truncated or damaged: the central directory is gone, but the local
        # headers still name the members, which is enough to know the format;
        # failing that, [Content_Types].xml (always written first) names the main part.
        names = _local_header_names(data)
        kind = _ooxml_kind(names, damaged=True)
        return kind if kind != "zip" else _content_types_kind(data)
    return _ooxml_kind(names)


_MAIN_PART_TYPES = (
    (b"spreadsheetml.sheet.main", "xlsx"),
    (b"ms-excel.sheet.macroEnabled.main", "xlsx"),
    (b"ms-excel.sheet.binary.macroEnabled.main", "xlsb"),
    (b"wordprocessingml.document.main", "docx"),
    (b"ms-word.document.macroEnabled.main", "docx"),
    (b"presentationml.presentation.main", "pptx"),
    (b"ms-powerpoint.presentation.macroEnabled.main", "pptx"),
)


def _content_types_kind(data: bytes) -> str:
    if data[30:49] != b"[Content_Types].xml":
        return "zip"
    method, csize = struct.unpack_from("<H", data, 8)[0], struct.unpack_from("<I", data, 18)[0]
    name_len, extra_len = struct.unpack_from("<HH", data, 26)
    start = 30 + name_len + extra_len
    raw = data[start : start + (csize or 65_536)]
    try:
        xml = zlib.decompressobj(-15).decompress(raw, 1_000_000) if method == 8 else raw
    except zlib.error:
        return "zip"
    for marker, kind in _MAIN_PART_TYPES:
        if marker in xml:
            return kind
    return "zip"


def _odf_kind(mimetype: bytes) -> str:
    for suffix, kind in (
        (b"opendocument.spreadsheet", "ods"),
        (b"opendocument.text", "odt"),
        (b"opendocument.presentation", "odp"),
    ):
        if mimetype.startswith(b"application/vnd.oasis." + suffix):
            return kind
    return ""


def _ooxml_kind(names: list[str], damaged: bool = False) -> str:
    nameset = set(names)
    if "xl/workbook.xml" in nameset:
        return "xlsx"
    if "xl/workbook.bin" in nameset:
        return "xlsb"
    if "word/document.xml" in nameset:
        return "docx"
    if "ppt/presentation.xml" in nameset:
        return "pptx"
    # Some writers use a non-default main part name; [Content_Types].xml plus
    # the folder still tells the family.
    # A damaged file may have lost [Content_Types].xml (writers put it first or last).
    package = damaged and any(n.startswith(("_rels/", "docProps/")) for n in names)
    if "[Content_Types].xml" in nameset or package:
        for prefix, kind in (("xl/", "xlsx"), ("word/", "docx"), ("ppt/", "pptx")):
            if any(n.startswith(prefix) for n in names):
                return kind
    return "zip"


def _local_header_names(data: bytes, limit: int = 2000) -> list[str]:
    names: list[str] = []
    pos = 0
    while len(names) < limit:
        pos = data.find(b"PK\x03\x04", pos)
        if pos < 0 or pos + 30 > len(data):
            break
        name_len, extra_len = struct.unpack_from("<HH", data, pos + 26)
        names.append(data[pos + 30 : pos + 30 + name_len].decode("cp437", "replace"))
        pos += 30 + name_len + extra_len
    return names


# --- OLE2 compound files ----------------------------------------------------------------------

_OLE_KINDS: tuple[tuple[bytes, str], ...] = (
    ("EncryptedPackage".encode("utf-16-le"), "encrypted-office"),
    ("__substg1.0_".encode("utf-16-le"), "msg"),
    ("__properties_version1.0".encode("utf-16-le"), "msg"),
    ("Workbook".encode("utf-16-le"), "xls"),
    ("Book".encode("utf-16-le"), "xls"),
    ("WordDocument".encode("utf-16-le"), "doc"),
    ("PowerPoint Document".encode("utf-16-le"), "ppt"),
)


def _sniff_ole(data: bytes) -> str:
    try:
        import olefile

        ole = olefile.OleFileIO(io.BytesIO(data))
        try:
            streams = {"/".join(p) for p in ole.listdir(streams=True, storages=True)}
        finally:
            ole.close()
        tops = {s.split("/")[0] for s in streams}
        if "EncryptedPackage" in tops:
            return "encrypted-office"
        if any(s.startswith("__substg1.0_") for s in tops) or "__properties_version1.0" in tops:
            return "msg"
        if "Workbook" in tops or "Book" in tops:
            return "xls"
        if "WordDocument" in tops:
            return "doc"
        if "PowerPoint Document" in tops:
            return "ppt"
        return "ole"
    except Exception:
        # Damaged directory: directory entries are UTF-16LE names; look for them.
        for needle, kind in _OLE_KINDS:
            if needle in data:
                return kind
        return "ole"


# --- small magic checks -----------------------------------------------------------------------


def _is_tar(data: bytes) -> bool:
    if len(data) < 512:
        return False
    if data[257:262] == b"ustar":
        return True
    # Pre-POSIX (v7) tar has no magic: verify the header checksum instead.
    field = data[148:156].replace(b"\x00", b" ").strip()
    if not field or not all(48 <= c <= 55 for c in field):
        return False
    stored = int(field, 8)
    header = data[:148] + b" " * 8 + data[156:512]
    return stored == sum(header) and data[0] != 0


def _is_image(data: bytes) -> bool:
    if any(data.startswith(m) for m, _ in _IMAGE_MAGIC):
        return True
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return True
    if data[4:8] == b"ftyp" and data[8:12] in _ISO_BMFF_IMAGE:
        return True
    if data[:2] == b"BM" and len(data) >= 26:
        size = struct.unpack_from("<I", data, 2)[0]
        reserved = struct.unpack_from("<I", data, 6)[0]
        return reserved == 0 and abs(size - len(data)) <= 16
    return False


# --- text family ------------------------------------------------------------------------------


def _sniff_text(data: bytes, filename: str) -> str:
    sample = data[:8192]
    if not sample:
        return "text"
    utf16 = sample.startswith((b"\xff\xfe", b"\xfe\xff"))
    wide = "" if utf16 else unmarked_wide(sample)
    if not utf16 and not wide and _looks_like_message(sample):
        return "message"  # a mail may carry raw 8-bit or binary parts after its header
    if not utf16 and not wide and not _looks_textual(sample):
        # Text with a stray NUL, end-of-file or bell byte (no editor shows them) is
        # still text: as "unsupported" a roster CSV with one NUL went out unread.
        cleaned = sample.translate(None, STRAY_CONTROLS)
        if not _text_once_cleaned(cleaned):
            return "binary"
        sample = cleaned
    if utf16 or wide:
        text_head = sample.decode(wide or "utf-16", "replace").encode("utf-8", "replace")
    else:
        text_head = sample[3:] if sample.startswith(_BOMS[0]) else sample
    if _looks_like_message(text_head):
        return "message"
    stripped = text_head.lstrip()
    if _HTML_START.match(stripped[:4096]) or b"<html" in stripped[:1024].lower():
        return "html"
    if _looks_like_table(text_head) or filename.lower().endswith((".csv", ".tsv")):
        return "csv"
    return "text"


def _text_once_cleaned(cleaned: bytes) -> bool:
    """What is left of a sample without its control bytes reads as text: UTF-8, or
    CP932/EUC-JP with hardly a bad byte (the rest of a program or an image does not)."""
    if len(cleaned) < 16:
        return False
    try:
        cleaned.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if exc.start >= len(cleaned) - 4:
            return True  # a character cut at the end of the sample
    for codec in ("cp932", "euc-jp"):
        text = cleaned.decode(codec, "replace")
        if text.count("\ufffd") * 200 <= len(text):
            return True
    return False


def _looks_textual(sample: bytes) -> bool:
    if b"\x00" in sample:
        return False
    # The control bytes are what is left once every other byte is deleted: one C
    # pass (a Python loop over the 8 KB sample cost 75 µs per attachment).
    controls = len(sample.translate(None, _NOT_CONTROL))
    return controls <= len(sample) // 100


_NOT_CONTROL = bytes(b for b in range(256) if not (b < 0x20 and b not in (9, 10, 12, 13, 0x1B)))


def _looks_like_message(sample: bytes) -> bool:
    lines = sample.lstrip().replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[0].startswith(b"From ") and not lines[0].startswith(b"From: "):
        lines = lines[1:]  # mbox separator line
    elif lines and lines[0].strip().isdigit():
        lines = lines[1:]  # Apple .emlx: byte count, then the message
    known = 0
    for i, line in enumerate(lines[:60]):
        if not line:
            break  # end of the header block
        if line[:1] in (b" ", b"\t") and i > 0:
            continue  # folded continuation
        m = _HEADER_LINE.match(line)
        if not m:
            return False
        name = m.group(1).decode("ascii", "replace").lower()
        if name in _MAIL_HEADERS:
            known += 1
            if name == "content-type" and m.group(2).lower().startswith(
                (b"multipart/", b"message/")
            ):
                known += 1  # a bare MIME entity
    return known >= 2


def _looks_like_table(sample: bytes) -> bool:
    lines = [ln for ln in sample.replace(b"\r\n", b"\n").split(b"\n")[:30] if ln.strip()]
    if len(lines) >= 100 or len(lines) < 2:
        return False
    if len(sample) == 8192:
        lines = lines[:-1]  # the last line may be cut
    for sep in (b"\t", b","):
        counts = [ln.count(sep) for ln in lines]
        if counts and counts[0] >= 1 and all(c == counts[0] for c in counts):
            return True
    return False


# --- dispatch ---------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d")


def safe_reason(exc: BaseException, limit: int = 120) -> str:
    """A short reason for status ``error`` that can never carry a number's digits."""
    msg = str(exc).replace("\n", " ").strip()
    msg = _DIGITS.sub("#", msg)
    if len(msg) > limit:
        msg = msg[: limit - 1] + "…"
    name = type(exc).__name__
    return f"{name}: {msg}" if msg else name


def _load(module: str) -> Extractor:
    # imported on first use: a worker that never sees a PDF never loads pdfium
    fn: Extractor = importlib.import_module(f"dlp.extract.{module}").extract
    return fn


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    """Extract text and members of one file; never raises (bad input must not take the
    gateway down)."""
    kind = sniff(data, filename)
    module, content_type = KINDS.get(kind, ("", "application/octet-stream"))
    try:
        budget.spend(len(data))
        if kind == "message":
            return Extracted(
                kind="message",
                status=AttachmentStatus.SCANNED,
                members=(Member(filename, _strip_emlx_count(data), "message/rfc822"),),
                content_type=content_type,
            )
        if kind == "image":
            # OCR (dlp/extract/ocr.py), or status image saying why not
            result = _load("ocr")(data, filename, location, budget)
            return dataclasses.replace(result, content_type=_image_type(data))
        if not module:
            return Extracted(
                kind=kind,
                status=AttachmentStatus.UNSUPPORTED,
                detail="unrecognised binary format",
                content_type=content_type,
            )
        result = _load(module)(data, filename, location, budget)
        if not result.content_type:
            result = dataclasses.replace(result, content_type=content_type)
        return result
    except BudgetExceeded as exc:
        if kind == "image":
            content_type = _image_type(data)
        return Extracted(kind=kind, status=exc.status, detail=exc.detail, content_type=content_type)
    except RecursionError:
        return Extracted(
            kind=kind,
            status=AttachmentStatus.ERROR,
            detail="structure nested too deeply to parse",
            content_type=content_type,
        )
    except Exception as exc:  # a bad file is a status, never a crash of the gateway
        return Extracted(
            kind=kind,
            status=AttachmentStatus.ERROR,
            detail=safe_reason(exc),
            content_type=content_type,
        )


def _strip_emlx_count(data: bytes) -> bytes:
    first, sep, _rest = data[:32].partition(b"\n")
    if sep and first.strip().isdigit():
        return data[len(first) + 1 :]
    return data


def _image_type(data: bytes) -> str:
    for magic, ctype in _IMAGE_MAGIC:
        if data.startswith(magic):
            return ctype
    if data[:4] == b"RIFF":
        return "image/webp"
    if data[:2] == b"BM":
        return "image/bmp"
    return "image/heif"
