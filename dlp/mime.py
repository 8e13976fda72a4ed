"""Raw message bytes → the texts and files the scanner reads.

Parses with the ``email`` package (policy ``default``) — for well-formed mail
through ``dlp.mimetree``, which builds the identical tree without the feed
parser's line-by-line pass — walks the whole MIME tree, and returns:

* text chunks for the human-readable headers (Subject, From, To, Cc …,
  RFC 2047 decoded with our charset rules) and for every ``text/plain`` and
  ``text/html`` body (base64/QP decoded, charset decoded, HTML made text);
* every other leaf part as an attachment (its decoded bytes, file name with
  RFC 2231 / RFC 2047 decoded, declared type and charset) — including nested
  ``message/rfc822`` parts, which the scanner hands back to us one level deeper;
* the defects the parser found.  Broken input is read as far as it goes and
  never raises (bad input must never take the gateway down).

Header values are decoded from the raw header lines ourselves rather than
through the ``email`` header registry: the registry's codecs reject CP50220
and CP932 extensions (①, ㈱) that Japanese clients write, and its parsers can
raise on garbage.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.header
import email.policy
import itertools
import mimetypes
import quopri
import re
import urllib.parse
from dataclasses import dataclass, field
from email import _encoded_words  # type: ignore[attr-defined]  # get_payload's own decoder
from email.errors import (
    InvalidBase64PaddingDefect,
    MessageDefect,
    MissingHeaderBodySeparatorDefect,
)
from email.message import Message

import pybase64

from dlp.extract.html import html_to_text, sniff_charset
from dlp.extract.text import _PERMISSIVE, decode_text  # _PERMISSIVE: see _decode_body
from dlp.mimetree import MIN_FAST_BYTES, fast_tree, transfer_encoding
from dlp.model import TextChunk

__all__ = [
    "HUMAN_HEADERS",
    "MimeAttachment",
    "ParsedMessage",
    "decode_header_value",
    "parse_message",
]

HUMAN_HEADERS = (
    "Subject",
    "From",
    "To",
    "Cc",
    "Bcc",
    "Reply-To",
    "Sender",
    "Comments",
    "Keywords",
    "Organization",
    "Thread-Topic",
    "Content-Description",
)
_HUMAN = {h.lower(): h for h in HUMAN_HEADERS}

_MAX_PARTS = 5000
"""Leaf parts read per message; the rest is reported unread, not a hang."""

_MAX_REREADS = 8
"""Extra readings of ambiguous parts per message (duplicate Content-Type …)."""


@dataclass(frozen=True, slots=True)
class MimeAttachment:
    """A leaf part that is not a readable body (or is a forwarded message)."""

    filename: str
    """Decoded file name; ``part<N>.<ext>`` when the part has none."""
    content_type: str
    data: bytes
    charset: str | None
    location: str
    is_message: bool = False
    named: bool = True
    message: Message | None = None
    """The already parsed forwarded message, so it is not parsed twice."""
    encrypted: str = ""
    """Non-empty (the scheme) for S/MIME or OpenPGP encrypted content."""
    unreadable: str = ""
    """Non-empty (why) for a part that could not be read at all: it becomes an
    attachment with status ``error``, which policy sees, not only a defect."""


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    chunks: tuple[TextChunk, ...]
    attachments: tuple[MimeAttachment, ...]
    defects: tuple[str, ...]
    subject: str = ""
    message_id: str = ""
    header_from: str = ""
    unread: tuple[str, ...] = ()
    """What was not read, or could be read more than one way: the scanner
    puts it in the report, where policy acts on it (never only a defect)."""


@dataclass
class _Walk:
    prefix: str
    chunks: list[TextChunk] = field(default_factory=list)
    attachments: list[MimeAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)
    parts: int = 0
    rereads: int = 0
    body_seen: dict[str, int] = field(default_factory=dict)
    parent_types: list[str] = field(default_factory=list)
    keywords: tuple[str, ...] = ()


def parse_message(
    raw: bytes | Message, prefix: str = "", keywords: tuple[str, ...] = ()
) -> ParsedMessage:
    """Parse ``raw`` (or walk an already parsed message); ``prefix`` is
    prepended to every location (nested messages).  ``keywords``: ``[scan]
    extra_keywords``, which label a number split over HTML table cells in a body
    as the built-in words do."""
    w = _Walk(prefix, keywords=keywords)
    if isinstance(raw, Message):
        msg = raw
    else:
        parsed = _parse_bytes(raw, w)
        if parsed is None:
            return _unparsed(raw, w)
        msg = parsed
    headers = _headers(msg, w)
    try:
        _walk(msg, w, depth=0, path="1")
    except RecursionError:
        w.unread.append("MIME structure nested too deeply; the parts below were not read")
    return ParsedMessage(
        chunks=tuple(w.chunks),
        attachments=tuple(w.attachments),
        defects=tuple(w.defects),
        subject=headers.get("subject", ""),
        message_id=headers.get("message-id", ""),
        header_from=headers.get("from", ""),
        unread=tuple(w.unread),
    )


def _parse_bytes(raw: bytes, w: _Walk) -> Message | None:
    """The message tree, or None when no parser can build one.

    Big well-formed mail takes dlp/mimetree.py (the same tree without the feed
    parser's line-by-line pass), the rest the ``email`` package.  Its default
    policy parses structured headers and gives up on some (a Content-Type
    comment nested a few thousand deep raises RecursionError); ``compat32``
    keeps headers as strings, and our own header reading does the rest."""
    raw = _tame_parameters(raw, w)
    raw = _cap_parts(raw, w)
    try:
        fast = fast_tree(raw) if len(raw) >= MIN_FAST_BYTES else None
        msg = fast or email.message_from_bytes(raw, policy=email.policy.default)
        if _headers_cut_short(msg):
            # Read again with the obsolete space before a colon read away; only mail
            # whose header block the parser ended early pays for the second parse.
            again = email.message_from_bytes(_obsolete_colons(raw), policy=email.policy.default)
            if not _headers_cut_short(again):
                return again
        return msg
    except Exception as exc:  # includes RecursionError
        w.defects.append(f"message parser gave up ({type(exc).__name__}); parsed again leniently")
    try:
        return email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:
        return None


_MAX_DELIMITERS = 2 * _MAX_PARTS
"""Boundary lines read: a part's delimiter and, for a multipart, its close."""
_RAW_BOUNDARY = re.compile(rb'(?i)boundary\s*=\s*("[^"\r\n]{1,200}"|[^\s;"]{1,200})')
_TOO_MANY_PARTS = f"more than {_MAX_PARTS} MIME parts; the rest was not read"


def _cap_parts(raw: bytes, w: _Walk) -> bytes:
    """``raw`` for scanning, cut before its boundary line number ``_MAX_DELIMITERS``
    when it has more, and the cut named in ``unread``.  The ``email`` package parses
    every part before our walk can stop at ``_MAX_PARTS``: 200,000 one-line parts took
    longer than the scan budget on every retry, so the message was tempfailed for good
    (a review of 3 Dec 2026); cut, it is read up to the limit and held as incomplete.
    The message relayed is never changed; this copy is only read."""
    if raw.count(b"\n--") <= _MAX_DELIMITERS:
        return raw  # the usual case: one count, in C
    boundaries = {b"\n--" + m.group(1).strip(b'"') for m in _RAW_BOUNDARY.finditer(raw[: 1 << 20])}
    if not boundaries:
        return raw  # lines that start with "--" (SQL comments, signatures): no parts
    delimiter = re.compile(
        b"|".join(re.escape(b) for b in sorted(boundaries, key=len, reverse=True))
    )
    for n, m in enumerate(delimiter.finditer(raw), 1):
        if n > _MAX_DELIMITERS:
            w.unread.append(_TOO_MANY_PARTS)
            return raw[: m.start() + 1]
    return raw


_OBSOLETE_COLON = re.compile(rb"(?m)^([!-9;-~]+)[ \t]+:")


def _headers_cut_short(msg: Message) -> bool:
    """A header block of the tree ended at a line that is no field."""
    return any(
        isinstance(d, MissingHeaderBodySeparatorDefect)
        for part in msg.walk()
        for d in getattr(part, "defects", ())
    )


def _obsolete_colons(raw: bytes) -> bytes:
    """``Content-Type : text/csv`` read as ``Content-Type: text/csv``: RFC 5322 4.5.1's
    obsolete white space before a field's colon, which mail clients accept and the
    email package ends the header block at.  Only this copy, read by the scanner, is
    changed; a body line of that shape (``Note : …``) reads the same either way."""
    return _OBSOLETE_COLON.sub(rb"\1:", raw)


MAX_PARAMETERS = 100
"""Parameters read in one Content-Type or Content-Disposition field.  The ``email``
package parses a field again for every accessor, several hundred microseconds a
parameter (RFC 2231 continuations): a 170 KB field of them took 1.8 s, and a message
that small is scanned in the serving process.  A real field has a handful (a long
Japanese file name split into RFC 2231 sections: a few dozen)."""

_STRUCTURED_FIELD = re.compile(
    rb"(?im)^(content-(?:type|disposition)[ \t]*:)([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)"
)


def _tame_parameters(raw: bytes, w: _Walk) -> bytes:
    """``raw`` for scanning, with every Content-Type or Content-Disposition field of more
    than ``MAX_PARAMETERS`` parameters cut after them, and the cut named in ``unread``
    (what follows may be a boundary or a file name: the structure was not fully read).
    The message relayed is never changed; this copy is only read."""
    if _few_semicolons(raw):
        return raw  # the usual case: no search

    def cut(m: re.Match[bytes]) -> bytes:
        value = m.group(2)
        if value.count(b";") <= MAX_PARAMETERS:
            return m.group(0)
        at = -1
        for _ in range(MAX_PARAMETERS + 1):
            at = value.index(b";", at + 1)
        name = m.group(1)[:-1].strip().decode("ascii", "replace")
        w.unread.append(
            f"{name} field with {value.count(b';')} parameters; only the first "
            f"{MAX_PARAMETERS} were read"
        )
        return m.group(1) + value[:at]

    return _STRUCTURED_FIELD.sub(cut, raw)


def _few_semicolons(raw: bytes) -> bool:
    """``raw.count(b";") <= MAX_PARAMETERS``, mostly without counting: ``find`` is a
    memchr (0.2 us on 20 KB where ``count`` takes 6), and plain mail has a few dozen
    semicolons at most, in its headers."""
    at = -1
    for _ in range(_FEW):
        at = raw.find(b";", at + 1)
        if at < 0:
            return True
    return raw.count(b";") <= MAX_PARAMETERS


_FEW = 32


def _unparsed(raw: bytes, w: _Walk) -> ParsedMessage:
    """No MIME tree: read the bytes as text and decode every base64 block in
    them as a file, and say so — the report must not look like a clean read."""
    text, _ = decode_text(raw)
    w.chunks.append(TextChunk(text, w.prefix + "body"))
    _salvage(text, w, "message")
    w.unread.append(
        "message could not be parsed as MIME; read as plain text, base64 blocks decoded"
    )
    return ParsedMessage(
        tuple(w.chunks), tuple(w.attachments), tuple(w.defects), unread=tuple(w.unread)
    )


_B64_BLOCK = re.compile(r"(?:^[ \t]*[A-Za-z0-9+/]{16,}={0,2}[ \t]*(?:\r?\n|\Z))+", re.MULTILINE)


def _salvage(text: str, w: _Walk, where: str) -> None:
    """Every run of three or more base64 lines in ``text`` becomes an attachment."""
    for i, m in enumerate(_B64_BLOCK.finditer(text), 1):
        blob = re.sub(r"\s+", "", m.group(0))
        if len(blob) < 32:  # a long word, not a file
            continue
        try:
            data = base64.b64decode(blob + "=" * (-len(blob) % 4))
        except (binascii.Error, ValueError):
            continue
        name = f"{where}-block{i}.bin"
        w.attachments.append(
            MimeAttachment(
                name,
                "application/octet-stream",
                data,
                None,
                f"{w.prefix}attachment:{name}",
                named=False,
            )
        )


def _headers(msg: Message, w: _Walk) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        items = list(msg.raw_items())
    except Exception:
        items = []
    for name, value in items:
        key = str(name).lower()
        if key == "message-id":
            found.setdefault(key, _unfold(str(value)).strip())
            continue
        if key not in _HUMAN:
            continue
        text = decode_header_value(str(value))
        found.setdefault(key, text)
        w.chunks.append(TextChunk(text, f"{w.prefix}header:{_HUMAN[key]}"))
    for d in getattr(msg, "defects", ()):
        w.defects.append(f"headers: {type(d).__name__}")
    return found


_MEDIA_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_FOLD = re.compile(r"\r?\n[ \t]")


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
"""An 8-bit byte kept as a surrogate escape (a regex: a generator over every
character of every header cost more than the rest of the header reading)."""


def _unfold(value: str) -> str:
    return _FOLD.sub(" ", value).replace("\r", "").replace("\n", "")


def decode_header_value(value: str) -> str:
    """Decode a raw header value: 8-bit bytes by our charset rules, then RFC 2047 words."""
    value = _unfold(value)
    if "\x1b" in value or _ESCAPED_BYTE.search(value):
        # Raw 8-bit or raw ISO-2022-JP header (no encoded-words): recover the
        # bytes and detect the charset.
        value, _ = decode_text(value.encode("utf-8", "surrogateescape"))
    if "=?" not in value:
        return value.strip()
    try:
        pieces = email.header.decode_header(value)
    except Exception:
        return value.strip()
    out: list[str] = []
    for data, charset in pieces:
        if isinstance(data, str):
            out.append(data)
        else:
            # Unencoded text comes back as raw-unicode-escape bytes (it may
            # already be non-ASCII after the 8-bit decoding above).
            out.append(
                decode_text(data, charset)[0]
                if charset
                else data.decode("raw-unicode-escape", "replace")
            )
    return "".join(out).strip()


def _walk(part: Message, w: _Walk, depth: int, path: str) -> None:
    w.parts += 1
    if w.parts > _MAX_PARTS:
        if w.parts == _MAX_PARTS + 1 and _TOO_MANY_PARTS not in w.unread:
            w.unread.append(_TOO_MANY_PARTS)
        return
    for d in getattr(part, "defects", ()):
        if depth > 0:
            w.defects.append(f"part {path}: {type(d).__name__}")
        if isinstance(d, MissingHeaderBodySeparatorDefect):
            # A stray line ends the header block here (the obsolete space before a
            # colon is read away first: _obsolete_colons); a lenient client may read
            # on, and see the structure (the attachments) the lines after it describe.
            w.unread.append(
                f"part {path}: a line in the headers is not a header field; the headers "
                "after it are read as text here, a mail client may read them as headers"
            )
    readings = _readings(part)
    if readings and w.rereads < _MAX_REREADS:
        # Two Content-Type (or transfer encoding, disposition) headers or two
        # boundaries: mail clients differ in which they take.  Read it every
        # way, and tell policy the structure was ambiguous.
        w.unread.append(
            f"part {path}: ambiguous MIME structure ({readings[0]}); every reading was scanned"
        )
        for i, alt in enumerate(readings[1], 1):
            w.rereads += 1
            _walk(alt, w, depth + 1, f"{path}~{i}")
        return
    if readings:
        w.unread.append(
            f"part {path}: ambiguous MIME structure ({readings[0]}); not read every way"
        )
    ctype = _content_type(part, w, path)
    if part.is_multipart() and ctype != "message/rfc822":
        _outside_parts(part, w, path)
        payload = part.get_payload()
        if isinstance(payload, list):
            w.parent_types.append(ctype)
            for i, sub in enumerate(payload, 1):
                if isinstance(sub, Message):
                    _walk(sub, w, depth + 1, f"{path}.{i}")
            w.parent_types.pop()
        return
    try:
        _leaf(part, ctype, w, path)
    except Exception as exc:  # one bad part must not lose the rest of the message
        w.defects.append(f"part {path}: unreadable ({type(exc).__name__})")
        name = f"part{path}.bin"
        raw = part.get_payload(decode=False)
        w.attachments.append(
            MimeAttachment(
                name,
                ctype,
                raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b"",
                None,
                f"{w.prefix}attachment:{name}",
                named=False,
                unreadable=f"part could not be read ({type(exc).__name__})",
            )
        )


_BOILERPLATE = re.compile(
    r"this is a (?:multi-?part )?message in mime format\.?|"
    r"--> this message is in mime format.*",
    re.IGNORECASE,
)


def _outside_parts(part: Message, w: _Walk, path: str) -> None:
    """Text before the first and after the last boundary.  Clients hide it,
    unless they read the boundaries differently (a second ``boundary``
    parameter): then it is the message.  Read it, base64 blocks included."""
    for where, text in (("preamble", part.preamble), ("epilogue", part.epilogue)):
        if not text or not text.strip() or _BOILERPLATE.fullmatch(text.strip()):
            continue
        if _ESCAPED_BYTE.search(text):
            text = decode_text(text.encode("utf-8", "surrogateescape"))[0]
        w.chunks.append(TextChunk(text, f"{w.prefix}{where}:{path}"))
        _salvage(text, w, f"{where}{path}")


_AMBIGUOUS_HEADERS = ("content-type", "content-transfer-encoding", "content-disposition")
_BOUNDARY = re.compile(r";\s*boundary\s*=\s*(\"[^\"]*\"|[^;\s]*)", re.IGNORECASE)


def _readings(part: Message) -> tuple[str, list[Message]] | None:
    """The part read every way a client could, when its headers leave a choice.

    Returns (what is ambiguous, the alternative readings) — each reading is
    the part re-parsed with one value for every duplicated header (and one
    ``boundary`` where there are several) — or None when there is one reading."""
    try:
        items = list(part.raw_items())
    except Exception:
        return None
    choices: dict[str, list[str]] = {}
    for k, v in items:
        key = str(k).lower()
        if key in _AMBIGUOUS_HEADERS:
            choices.setdefault(key, []).append(_unfold(str(v)))
    why = [f"{len(v)} {k} headers" for k, v in choices.items() if len(v) > 1]
    types: list[str] = []
    for value in choices.get("content-type", []):
        bounds = _BOUNDARY.findall(value)
        if len(bounds) > 1:
            why.append(f"{len(bounds)} boundary parameters")
            base = _BOUNDARY.sub("", value)
            types.extend(f"{base}; boundary={b}" for b in dict.fromkeys(bounds))
        else:
            types.append(value)
    if not why:
        return None
    if types:
        choices["content-type"] = list(dict.fromkeys(types))
    body = _body_bytes(part)
    others = [(k, v) for k, v in items if str(k).lower() not in _AMBIGUOUS_HEADERS]
    readings: list[Message] = []
    for combo in itertools.product(*choices.values()):
        head = "".join(f"{k}: {v}\r\n" for k, v in others)
        head += "".join(f"{k}: {v}\r\n" for k, v in zip(choices, combo, strict=True))
        raw = head.encode("utf-8", "surrogateescape") + b"\r\n" + body
        try:
            readings.append(email.message_from_bytes(raw, policy=email.policy.default))
        except Exception:
            readings.append(email.message_from_bytes(raw, policy=email.policy.compat32))
        if len(readings) >= _MAX_REREADS:
            break
    return ", ".join(why), readings


def _body_bytes(part: Message) -> bytes:
    """The part's body as it was sent (what follows its header block)."""
    raw = _as_bytes(part)
    for sep in (b"\r\n\r\n", b"\n\n"):
        _head, found, body = raw.partition(sep)
        if found:
            return body
    return b""


_FILE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",  # TIFF
    b"MM\x00*",
    b"%PDF-",
    b"PK\x03\x04",  # ZIP, Office, OpenDocument
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # OLE: .doc .xls .msg
    b"\x1f\x8b",  # gzip
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
)
"""Starts of files that are never text, whatever the part's Content-Type says."""


def _leaf(part: Message, ctype: str, w: _Walk, path: str) -> None:
    filename = _filename(part)
    disposition = _disposition(part)
    charset = _charset(part)
    if ctype == "message/rfc822" or ctype == "message/global":
        data = _message_bytes(part, w, path)
        name = filename or f"part{path}.eml"
        # Hand over the already parsed message so it is not parsed twice
        # (unless it had to be transfer-decoded first).
        payload = part.get_payload()
        cte = _cte(part)
        inner = None
        if cte not in ("base64", "quoted-printable") and isinstance(payload, list) and payload:
            inner = payload[0] if isinstance(payload[0], Message) else None
        w.attachments.append(
            MimeAttachment(
                name, ctype, data, None, f"{w.prefix}attachment:{name}", True, bool(filename), inner
            )
        )
        return
    is_body = ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename
    flowed = is_body and ctype == "text/plain" and _flowed(part)
    if is_body and ctype == "text/plain":
        text = _ascii_as_sent(part, charset, w, path)
        if text is not None:
            _body_chunk(w, ctype, _unflow(text, flowed) if flowed else text)
            return
    # A declared-base64 part that was not clean base64 is read both ways: as sent
    # (a mislabelled plain-text part) and decoded (``_payload``).
    data, second = _payload(part, w, path)
    for reading, label in ((data, ""), (second, " (base64 decoded)")):
        if label and not reading:
            continue
        if is_body and not reading.startswith(_FILE_MAGIC):
            text = _body_text(reading, ctype, charset, w)
            _body_chunk(w, ctype, _unflow(text, flowed) if flowed else text)
            continue
        # Not text (or a picture, PDF, archive or Office file labelled as a text
        # body): read by its bytes like any attachment (OCR, unpacking), not as
        # mojibake.
        kind = "application/octet-stream" if is_body else ctype
        name = filename or f"part{path}{mimetypes.guess_extension(kind) or '.bin'}"
        w.attachments.append(
            MimeAttachment(
                name + label,
                kind,
                reading,
                charset,
                f"{w.prefix}attachment:{name}{label}",
                False,
                bool(filename),
                encrypted=_encryption(part, kind, w.parent_types),
            )
        )


def _flowed(part: Message) -> str:
    """ "delsp" or "flowed" for a ``format=flowed`` text/plain part (RFC 3676), else ""."""
    header = _raw_header(part, "content-type")
    if "flowed" not in header.lower() or _param(header, "format").strip().lower() != "flowed":
        return ""
    return "delsp" if _param(header, "delsp").strip().lower() == "yes" else "flowed"


def _unflow(text: str, flowed: str) -> str:
    """A ``format=flowed`` body as a mail client shows it (RFC 3676 4.2): a line
    ending in a space (a soft break) joins the next line of the same quote depth,
    with that space deleted under ``delsp=yes``; ``621498 `` / ``320257`` is one
    number on the recipient's screen, so it is one number to the detectors."""
    out: list[str] = []
    joining: tuple[int, str] | None = None  # (quote depth, text so far) of a flowed line
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        body = line.lstrip(">")
        depth = len(line) - len(body)
        body = body.removeprefix(" ")  # space-stuffing (4.4)
        if joining is not None and (joining[0] != depth or body == "-- "):
            # A quote change or the signature separator (4.3) ends the paragraph.
            out.append(">" * joining[0] + joining[1])
            joining = None
        so_far = joining[1] if joining is not None else ""
        if body.endswith(" ") and body != "-- ":
            joining = (depth, so_far + (body[:-1] if flowed == "delsp" else body))
            continue
        out.append(">" * depth + so_far + body)
        joining = None
    if joining is not None:
        out.append(">" * joining[0] + joining[1])
    return "\n".join(out)


def _body_text(data: bytes, ctype: str, charset: str | None, w: _Walk) -> str:
    """A text/plain or text/html body's bytes as the text a reader sees."""
    if ctype == "text/html":
        text, _ = decode_text(data, charset or sniff_charset(data))
        return html_to_text(text, w.keywords)
    return _decode_body(data, charset)


def _body_chunk(w: _Walk, ctype: str, text: str) -> None:
    n = w.body_seen.get(ctype, 0) + 1
    w.body_seen[ctype] = n
    loc = f"{w.prefix}body:{ctype}" + (f"#{n}" if n > 1 else "")
    w.chunks.append(TextChunk(text, loc))
    if ctype == "text/plain" and "begin " in text:
        _uuencoded_files(text, w)


_UU_BEGIN = re.compile(r"(?m)^begin [0-7]{3,4} ([^\r\n]+)\r?\n")
_UU_END = re.compile(r"(?m)^end[ \t\r]*$")


def _uuencoded_files(text: str, w: _Walk) -> None:
    """A file uuencoded into a plain-text body (``begin 644 meibo.csv`` … ``end``), as
    old mailers send them and mail clients show them: as an attachment."""
    for m in _UU_BEGIN.finditer(text):
        end = _UU_END.search(text, m.end())
        if end is None:
            continue
        data = bytearray()
        try:
            for line in text[m.end() : end.start()].splitlines():
                if line.strip():
                    data += binascii.a2b_uu(line)
        except (binascii.Error, ValueError):
            continue  # not uuencode after all: the text is read as it is
        name = m.group(1).strip()
        w.attachments.append(
            MimeAttachment(
                name, "application/octet-stream", bytes(data), None,
                f"{w.prefix}attachment:{name}", named=True,
            )
        )  # fmt: skip


def _ascii_as_sent(part: Message, charset: str | None, w: _Walk, path: str) -> str | None:
    """The text of a plain-text body sent as ASCII without a transfer encoding
    (what smtp-source and many scripts send), or None for any other body.

    It is the stored payload itself: what ``_payload`` and ``_decode_body`` would
    return is its bytes (no base64, quoted-printable or uuencode to undo) decoded
    back as ASCII (no 8-bit byte, no ESC, no charset label that reads ASCII
    otherwise) — the same string after two 2 MB copies.  ``str.isascii`` is a
    flag, not a scan.  Bodies that start like a file go the long way (_FILE_MAGIC)."""
    raw = getattr(part, "_payload", None)
    if not isinstance(raw, str) or not raw.isascii() or part.is_multipart():
        return None
    cte = _cte(part)
    if cte in ("base64", "quoted-printable") or cte in _UUENCODE:
        return None
    label = (charset or "").strip().strip('"').lower()
    if (label and label not in _PERMISSIVE) or "\x1b" in raw:
        return None
    if raw[:8].encode("ascii").startswith(_FILE_MAGIC):
        return None
    for d in getattr(part, "defects", ()):  # as _payload records them
        name = type(d).__name__
        if "Base64" in name and f"part {path}: {name}" not in w.defects:
            w.defects.append(f"part {path}: {name}")
    return raw


def _decode_body(data: bytes, charset: str | None) -> str:
    """``decode_text`` with its pure-ASCII case first: ``isascii`` is a C loop,
    while ``decode_text`` looks for 8-bit bytes with a regex (6 ms on 2 MB).
    Same result: ASCII without ESC (no ISO-2022-JP) under no or a permissive
    label is what ``decode_text`` decodes as ASCII too."""
    label = (charset or "").strip().strip('"').lower()
    if (not label or label in _PERMISSIVE) and data.isascii() and b"\x1b" not in data:
        return data.decode("ascii")
    return decode_text(data, charset)[0]


_SMIME_TYPES = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})


def _encryption(part: Message, ctype: str, parents: list[str]) -> str:
    """Which encryption makes this part unreadable, if any (policy acts on it)."""
    if ctype in _SMIME_TYPES:
        smime = _param(_raw_header(part, "content-type"), "smime-type").strip().lower()
        # Missing smime-type: treat as encrypted; we cannot tell and cannot read it.
        if smime in ("", "enveloped-data", "authenveloped-data"):
            return "S/MIME"
    in_pgp = bool(parents) and parents[-1] == "multipart/encrypted"
    if ctype == "application/pgp-encrypted":
        return "" if in_pgp else "OpenPGP"  # inside: only the "Version: 1" control part
    if in_pgp:
        return "OpenPGP"
    return ""


_B64_JUNK = re.compile(r"[^A-Za-z0-9+/=\s]")


_B64_OUTSIDE = re.compile(r"[^A-Za-z0-9+/]+")


def _lenient_base64(payload: str) -> bytes:
    """``payload`` decoded as base64 with every character outside the alphabet
    ignored (RFC 2045 6.8) up to the first padding ``=``; empty when nothing is left.
    A lone trailing sextet (a length of 4n+1) cannot make a byte and is dropped."""
    kept = _B64_OUTSIDE.sub("", payload.split("=", 1)[0])
    kept = kept[: len(kept) - (len(kept) % 4 == 1)]
    if not kept:
        return b""
    try:
        return base64.b64decode(kept + "=" * (-len(kept) % 4))
    except (binascii.Error, ValueError):
        return b""


def _not_base64(payload: str) -> bool:
    """The first line is not base64.  Only the start is judged: a mailing
    list footer appended after real base64 must not make us skip decoding."""
    for line in payload[:4096].splitlines():
        if line.strip():
            return _B64_JUNK.search(line) is not None
    return False


def _cte(part: Message) -> str:
    """The transfer encoding as a mail client reads the field, lowercase: unfolded, its
    comments (RFC 2045 allows them) and anything after the one token dropped, so that
    ``base64 ``, ``base64 (x)``, ``(x)base64``, ``"base64"`` and a folded ``base64`` are
    base64, as every client decodes them (the email package compares the raw value
    and would leave such a part encoded: unread, yet "scanned")."""
    value = transfer_encoding(part) or ""
    if _SIMPLE_TOKEN.fullmatch(value):
        return value.lower()
    token = _SIMPLE_TOKEN.search(_CTE_COMMENT.sub(" ", value))  # quotes, NUL, ";" dropped
    return token.group().lower() if token else ""


_SIMPLE_TOKEN = re.compile(r"[A-Za-z0-9-]+")
_CTE_COMMENT = re.compile(r"\([^()]*\)")


def _payload(part: Message, w: _Walk, path: str) -> tuple[bytes, bytes]:
    """The part's bytes, and a second reading where it has one (else b"")."""
    cte = _cte(part)
    # The stored payload (8-bit bytes kept as surrogate escapes); get_payload()
    # would already have decoded it with the declared charset.
    raw = getattr(part, "_payload", None)
    if cte == "base64" and isinstance(raw, str) and _not_base64(raw):
        # Declared base64 but not clean base64: read the bytes as they are (a
        # mislabelled plain-text part) - and, as a second reading, decoded the way
        # RFC 2045 6.8 tells every decoder to, ignoring the characters outside the
        # alphabet: that is what the recipient's mail client shows when they are
        # junk sprinkled into real base64 to hide its text from a scanner.
        w.defects.append(f"part {path}: Content-Transfer-Encoding base64 but payload is not base64")
        return raw.encode("ascii", "surrogateescape"), _lenient_base64(raw)
    try:
        data = _decode_base64(part, raw) if cte == "base64" else _decode_other(part, raw)
    except (binascii.Error, ValueError) as exc:
        # Read as sent (the encoded text), which is not what a client shows.
        w.unread.append(f"part {path}: undecodable transfer encoding ({type(exc).__name__})")
        data = None
    if isinstance(data, bytes):
        for d in getattr(part, "defects", ()):
            name = type(d).__name__
            if "Base64" in name and f"part {path}: {name}" not in w.defects:
                w.defects.append(f"part {path}: {name}")
        return data, b""
    if isinstance(raw, str):
        return raw.encode("ascii", "surrogateescape"), b""
    return b"", b""


def _decode_base64(part: Message, raw: object) -> bytes | None:
    """``part.get_payload(decode=True)`` for a base64 part, with its result and
    defects, minus its cost: it splits the payload into lines and joins them
    again (3.5 ms per 2 MB) where deleting CR and LF gives the same bytes
    (0.8 ms).  The decoding is the email package's own ``decode_b`` (``_decode_b``:
    the same result from a faster decoder where valid base64 makes them agree)."""
    if not isinstance(raw, str) or part.is_multipart():
        return _as_payload_bytes(part.get_payload(decode=True))
    joined = raw.encode("ascii", "surrogateescape").translate(None, b"\r\n")
    value, defects = _decode_b(joined)
    for defect in defects:
        part.policy.handle_defect(part, defect)
    return value if isinstance(value, bytes) else None


_UUENCODE = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})


def _decode_other(part: Message, raw: object) -> bytes | None:
    """``part.get_payload(decode=True)`` for a part that is not base64, with its
    steps for a stored string: the bytes it stands for, quoted-printable decoded
    when the field says so (``_cte``: read as a mail client reads it).  Minus its second
    look-up of the field and its UTF-8 encoding of the whole payload to test for
    surrogates; uuencode and anything unusual are left to it."""
    cte = _cte(part)
    if isinstance(raw, str) and cte not in _UUENCODE and not part.is_multipart():
        try:
            data = raw.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:  # text that never came from bytes
            return _as_payload_bytes(part.get_payload(decode=True))
        return quopri.decodestring(data) if cte == "quoted-printable" else data
    return _as_payload_bytes(part.get_payload(decode=True))


def _decode_b(encoded: bytes) -> tuple[bytes, list[MessageDefect]]:
    """``email._encoded_words.decode_b``, with its first try — strict decoding after
    padding the length to a multiple of four — done by pybase64 (SIMD: 0.3 ms for
    2 MB where binascii takes 4-5 ms).  Only where the two cannot differ: the
    padded text is base64 characters with at most two ``=`` at its very end, and
    pybase64 accepted it as valid.  Anything else is decode_b's own, defects and all."""
    pad_err = len(encoded) % 4
    padded = encoded + b"==="[: 4 - pad_err] if pad_err else encoded
    eq = padded.find(b"=")
    if len(padded) >= 4 and (eq < 0 or padded[eq:] in (b"=", b"==")):
        try:
            value = pybase64.b64decode(padded, validate=True)
        except ValueError:  # binascii.Error: not strictly valid, decode_b reads it
            pass
        else:
            return value, [InvalidBase64PaddingDefect()] if pad_err else []
    decoded: tuple[bytes, list[MessageDefect]] = _encoded_words.decode_b(encoded)
    return decoded


def _as_payload_bytes(data: object) -> bytes | None:
    return data if isinstance(data, bytes) else None


def _message_bytes(part: Message, w: _Walk, path: str) -> bytes:
    cte = _cte(part)
    payload = part.get_payload()
    if cte in ("base64", "quoted-printable"):
        # Not allowed for message/rfc822 (RFC 2046 §5.2.1) but written anyway.
        w.defects.append(f"part {path}: message/rfc822 with {cte} transfer encoding")
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            body = payload[0].get_payload()
            if isinstance(body, str):
                encoded = body.encode("ascii", "surrogateescape")
                try:
                    if cte == "base64":
                        return binascii.a2b_base64(encoded)
                    return quopri.decodestring(encoded)
                except (binascii.Error, ValueError):
                    return _as_bytes(payload[0])
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return _as_bytes(payload[0])
    if isinstance(payload, str):
        return payload.encode("ascii", "surrogateescape")
    return b""


def _as_bytes(msg: Message) -> bytes:
    try:
        return msg.as_bytes(policy=email.policy.default.clone(linesep="\r\n", max_line_length=0))
    except Exception:
        try:
            return msg.as_bytes(policy=email.policy.compat32)
        except Exception:
            return str(msg).encode("utf-8", "surrogateescape")


# Content-Type, charset and disposition are read from the raw header lines
# with our own small parser: the ``email`` header registry re-parses a header
# on every access (a 3,000-part message spent seconds there) and may raise.


def _content_type(part: Message, w: _Walk, path: str) -> str:
    raw = _raw_header(part, "content-type")
    if not raw.strip():
        return part.get_default_type()  # text/plain, or message/rfc822 in a digest
    value = raw.split(";", 1)[0].strip().lower()
    m = _MEDIA_TYPE.match(value)
    if m is None or m.end() != len(value):
        # "application/pdf name=x.pdf" (a missing ';'): keep the type, drop the
        # rest, which is free text that may hold anything, numbers included.
        w.defects.append(f"part {path}: malformed Content-Type")
        return m.group(0) if m else "text/plain"
    return value


def _charset(part: Message) -> str | None:
    cs = _param(_raw_header(part, "content-type"), "charset").strip().lower()
    return cs or None


def _disposition(part: Message) -> str:
    raw = _raw_header(part, "content-disposition")
    return raw.split(";", 1)[0].strip().lower()


# --- file names: RFC 2231 and RFC 2047, decoded with our charset rules ---------------------------

_PARAM = re.compile(
    r";\s*([!#$%&'*+.0-9A-Za-z^_`|~-]+)\s*=\s*(\"(?:[^\"\\]|\\.)*\"?|[^;\s]*)", re.DOTALL
)


def _filename(part: Message) -> str:
    for header, key in (("content-disposition", "filename"), ("content-type", "name")):
        raw = _raw_header(part, header)
        if raw:
            name = _param(raw, key)
            if name:
                return _clean_name(name)
    return ""


def _raw_header(part: Message, name: str) -> str:
    try:
        for k, v in part.raw_items():
            if str(k).lower() == name:
                return _unfold(str(v))
    except Exception:
        return ""
    return ""


def _param(header: str, key: str) -> str:
    """Value of parameter ``key``: RFC 2231 (continuations, charsets) or plain / RFC 2047."""
    plain: str | None = None
    ext: dict[int, tuple[str, bool]] = {}
    for m in _PARAM.finditer(header):
        name = m.group(1).lower()
        value = m.group(2)
        if value.startswith('"'):
            value = re.sub(
                r"\\(.)",
                r"\1",
                value[1:-1] if value.endswith('"') and len(value) > 1 else value[1:],
            )
        if name == key:
            plain = value
        elif name.startswith(key + "*"):
            rest = name[len(key) + 1 :]
            encoded = rest.endswith("*") or rest == ""
            idx = rest.rstrip("*")
            # int() refuses more than 4300 digits; such an index is junk anyway,
            # and a ValueError here would drop the whole part unscanned.
            ext[int(idx) if idx.isdigit() and len(idx) <= 9 else 0] = (value, encoded)
    if ext:
        charset = None
        data = bytearray()
        first = min(ext)
        for i in sorted(ext):
            value, encoded = ext[i]
            if encoded:
                if i == first and value.count("'") >= 2:
                    charset, _lang, value = value.split("'", 2)
                data += urllib.parse.unquote_to_bytes(value)
            else:
                data += value.encode("ascii", "surrogateescape")
        return decode_text(bytes(data), charset or None)[0]
    if plain is None:
        return ""
    return decode_header_value(plain)


def _clean_name(name: str) -> str:
    # Keep the last path component; a name is shown to reviewers and in logs.
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if c >= " " and c != "\x7f").strip() or "unnamed"
