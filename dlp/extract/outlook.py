"""Outlook .msg (OLE2 property streams, read with olefile) and TNEF winmail.dat (tnefparse).

.msg is read directly from its ``__substg1.0_*`` property streams rather
than through extract-msg: extract-msg decodes non-Unicode (ANSI) messages as
CP1252 and returns mojibake for Japanese (corpus testMSG_chinese.msg shows
the same for Big5), whereas the message's own PR_MESSAGE_CODEPAGE /
PR_INTERNET_CPID property says CP932.  Subject, sender and recipient display
names, plain, HTML and (compressed) RTF bodies are returned as text;
attachments as members; an attached .msg (an embedded message storage) is
read in place, its attachments named ``inner.msg/…``, to a depth of
``max_depth``.
"""

from __future__ import annotations

import io
import re
import struct

import olefile

from dlp.extract.base import Budget, BudgetExceeded, Extracted, Member
from dlp.extract.html import html_to_text
from dlp.extract.limits import check_member_count
from dlp.model import AttachmentStatus, TextChunk

_TEXT_PROPS = (
    ("0037", "subject"),
    ("0C1A", "sender"),
    ("0E04", "to"),
    ("0E03", "cc"),
    ("1000", "body"),
)
_PR_MESSAGE_CODEPAGE = 0x3FFD
_PR_INTERNET_CPID = 0x3FDE
_ATTACH_DIR = re.compile(r"^__attach_version1\.0_#[0-9A-Fa-f]{8}$")


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    if data.startswith(b"\x78\x9f\x3e\x22"):
        return _tnef(data, location, budget)
    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
    except Exception as exc:
        return Extracted(
            kind="msg", status=AttachmentStatus.ERROR, detail=f"damaged .msg ({type(exc).__name__})"
        )
    walk = _Walk(ole, budget)
    try:
        walk.message([], location, "", depth=0)
    except BudgetExceeded as exc:
        return walk.result(exc.status, exc.detail)
    except Exception as exc:
        from dlp.extract.registry import safe_reason

        return walk.result(AttachmentStatus.ERROR, f"damaged .msg ({safe_reason(exc, 80)})")
    finally:
        ole.close()
    if walk.unreadable:
        return walk.result(
            AttachmentStatus.UNSUPPORTED, "not read: " + ", ".join(walk.unreadable[:3])
        )
    return walk.result(AttachmentStatus.SCANNED, "")


class _Walk:
    """One pass over a .msg: the message, its attachments, attached messages in place."""

    def __init__(self, ole: olefile.OleFileIO, budget: Budget) -> None:
        self.ole = ole
        self.budget = budget
        self.streams = {tuple(p) for p in ole.listdir(streams=True, storages=False)}
        self.chunks: list[TextChunk] = []
        self.members: list[Member] = []
        self.unreadable: list[str] = []

    def result(self, status: AttachmentStatus, detail: str) -> Extracted:
        return Extracted(
            kind="msg",
            status=status,
            chunks=tuple(self.chunks),
            members=tuple(self.members),
            detail=detail,
        )

    def _children(self, base: list[str]) -> tuple[set[str], set[str]]:
        n = len(base)
        inside = [p for p in self.streams if len(p) > n and list(p[:n]) == base]
        return {p[n] for p in inside if len(p) == n + 1}, {p[n] for p in inside if len(p) > n + 1}

    def message(self, base: list[str], location: str, prefix: str, depth: int) -> None:
        self.budget.check_time()
        ole = self.ole
        here, storages = self._children(base)
        codepage = _codepage(ole, base, top=not base)
        texts: dict[str, str] = {}
        for prop, label in _TEXT_PROPS:
            text = _string(ole, base, here, prop, codepage)
            if text and text.strip():
                texts[label] = text
                self.chunks.append(TextChunk(text=text, location=f"{location}!{label}"))
        if "body" not in texts:
            body = _html_body(ole, base, here, codepage, self.budget.keywords) or _rtf_body(
                ole, base, here
            )
            if body.strip():
                self.chunks.append(TextChunk(text=body, location=f"{location}!body"))
        for storage in sorted(s for s in storages if _ATTACH_DIR.match(s)):
            self.attachment([*base, storage], location, prefix, depth)

    def attachment(self, path: list[str], location: str, prefix: str, depth: int) -> None:
        ole, budget = self.ole, self.budget
        here, storages = self._children(path)
        codepage = _codepage(ole, path, top=False)
        name = (
            _string(ole, path, here, "3707", codepage)
            or _string(ole, path, here, "3704", codepage)
            or _string(ole, path, here, "3001", codepage)
            or "attachment"
        )
        name = "".join(ch for ch in name if ch >= " ")[:255] or "attachment"
        embedded = "__substg1.0_3701000D"
        if embedded in storages:
            inner = [*path, embedded]
            if "__properties_version1.0" not in self._children(inner)[0]:
                # ATTACH_OLE: an OLE object kept as a sub-storage, not a file to hand on
                self.unreadable.append(f"{name} (embedded OLE object)")
                return
            if depth + 1 >= budget.max_depth:
                raise BudgetExceeded(
                    AttachmentStatus.TOO_DEEP, "attached messages nested too deeply"
                )
            self.message(inner, f"{location}/{name}", f"{prefix}{name}/", depth + 1)
            return
        stream = "__substg1.0_37010102"
        if stream in here:
            size = ole.get_size("/".join([*path, stream]))
            if size > budget.max_file_bytes:
                raise BudgetExceeded(
                    AttachmentStatus.TOO_LARGE, "attachment exceeds max_file_bytes"
                )
            check_member_count(budget, len(self.members))
            payload = ole.openstream([*path, stream]).read()
            mime = _string(ole, path, here, "370E", codepage) or ""
            self.members.append(Member(prefix + name, payload, mime))


def _codepage(ole: olefile.OleFileIO, base: list[str], top: bool) -> str:
    """The code page of 8-bit string properties, from the fixed-size property stream."""
    path = [*base, "__properties_version1.0"]
    if not ole.exists("/".join(path)):
        return ""
    raw = ole.openstream(path).read()
    header = 32 if top else (24 if base and base[-1].startswith("__substg1.0_3701") else 8)
    found: dict[int, int] = {}
    for pos in range(header, len(raw) - 15, 16):
        tag = struct.unpack_from("<I", raw, pos)[0]
        prop_id, prop_type = tag >> 16, tag & 0xFFFF
        if prop_type == 0x0003 and prop_id in (_PR_MESSAGE_CODEPAGE, _PR_INTERNET_CPID):
            found[prop_id] = struct.unpack_from("<i", raw, pos + 8)[0]
    for key in (_PR_MESSAGE_CODEPAGE, _PR_INTERNET_CPID):
        name = _cp_name(found.get(key, 0))
        if name:
            return name
    return ""


def _cp_name(cp: int) -> str:
    if cp in (65001,):
        return "utf-8"
    if cp in (50220, 50221, 50222):
        return "iso2022_jp"
    if cp == 51932:
        return "euc_jp"
    if cp == 932:
        return "cp932"
    if 0 < cp < 100000:
        import codecs

        try:
            codecs.lookup(f"cp{cp}")
            return f"cp{cp}"
        except LookupError:
            return ""
    return ""


def _decode8(raw: bytes, codepage: str) -> str:
    raw = raw.rstrip(b"\x00")
    if codepage:
        return raw.decode(codepage, "replace")
    # No code page recorded: a Japanese office's ANSI Outlook wrote CP932.
    for enc in ("utf-8", "cp932"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("cp1252", "replace")


def _string(
    ole: olefile.OleFileIO, base: list[str], here: set[str], prop: str, codepage: str
) -> str:
    for suffix, unicode in (("001F", True), ("001E", False)):
        name = f"__substg1.0_{prop}{suffix}"
        if name in here:
            raw = ole.openstream([*base, name]).read()
            if unicode:
                return raw.decode("utf-16-le", "replace").rstrip("\x00")
            return _decode8(raw, codepage)
    return ""


def _html_body(
    ole: olefile.OleFileIO,
    base: list[str],
    here: set[str],
    codepage: str,
    keywords: tuple[str, ...],
) -> str:
    for name in ("__substg1.0_10130102", "__substg1.0_1013001F", "__substg1.0_1013001E"):
        if name in here:
            raw = ole.openstream([*base, name]).read()
            if name.endswith("001F"):
                html = raw.decode("utf-16-le", "replace")
            else:
                html = _decode8(raw, codepage)
            return html_to_text(html, keywords)
    return ""


def _rtf_body(ole: olefile.OleFileIO, base: list[str], here: set[str]) -> str:
    name = "__substg1.0_10090102"
    if name not in here:
        return ""
    try:
        import compressed_rtf

        rtf = compressed_rtf.decompress(ole.openstream([*base, name]).read())
    except Exception:
        return ""
    return rtf_text(rtf)


def rtf_text(rtf: bytes) -> str:
    from striprtf.striprtf import rtf_to_text

    from dlp.extract.rtf import codepage

    source = rtf.decode("latin-1")
    return str(rtf_to_text(source, encoding=codepage(source[:8192]), errors="replace"))


# --- TNEF (winmail.dat) -----------------------------------------------------------------------


def _tnef_codepage(value: object) -> str:
    """tnefparse gives "cp1252"-style names or numbers; default to CP932."""
    import codecs

    if isinstance(value, int):
        return _cp_name(value) or "cp932"
    if isinstance(value, str) and value:
        try:
            codecs.lookup(value)
            return value
        except LookupError:
            pass
    return "cp932"


def _tnef(data: bytes, location: str, budget: Budget) -> Extracted:
    import tnefparse

    try:
        tnef = tnefparse.TNEF(data)
    except Exception as exc:
        return Extracted(
            kind="tnef",
            status=AttachmentStatus.ERROR,
            detail=f"damaged TNEF ({type(exc).__name__})",
        )
    chunks: list[TextChunk] = []
    members: list[Member] = []
    codepage = _tnef_codepage(getattr(tnef, "codepage", None))
    body = tnef.body
    if body:
        text = body if isinstance(body, str) else _decode8(body, codepage)
        chunks.append(TextChunk(text=text, location=f"{location}!body"))
    elif tnef.htmlbody:
        html = tnef.htmlbody
        text = html_to_text(
            html if isinstance(html, str) else _decode8(html, codepage), budget.keywords
        )
        chunks.append(TextChunk(text=text, location=f"{location}!body"))
    elif tnef.rtfbody:
        chunks.append(TextChunk(text=rtf_text(tnef.rtfbody), location=f"{location}!body"))
    try:
        for att in tnef.attachments:
            budget.check_time()
            payload = att.data or b""
            if len(payload) > budget.max_file_bytes:
                raise BudgetExceeded(
                    AttachmentStatus.TOO_LARGE, "attachment exceeds max_file_bytes"
                )
            name = att.long_filename() or att.name or "attachment"
            if isinstance(name, bytes):
                name = _decode8(name, codepage)
            check_member_count(budget, len(members))
            members.append(Member(str(name), payload))
    except BudgetExceeded as exc:
        return Extracted(
            kind="tnef",
            status=exc.status,
            chunks=tuple(chunks),
            members=tuple(members),
            detail=exc.detail,
        )
    return Extracted(
        kind="tnef", status=AttachmentStatus.SCANNED, chunks=tuple(chunks), members=tuple(members)
    )
