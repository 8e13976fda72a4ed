"""RTF via striprtf, with the code page taken from the document.

Japanese RTF carries text either as ``\\uN`` escapes or as CP932 byte pairs
(``\\'8c\\'c2``); the pairs only decode with the document's ``\\ansicpg``
(or, lacking one, CP932 when a font declares ``\\fcharset128``).  Embedded
pictures and OLE objects are long hex runs that striprtf would crawl through
character by character (1.2 s for a 3 MB photo), so they are cut out first.

Embedded objects (``{\\object … {\\*\\objdata <hex>}}`` — an Excel sheet or a
file pasted into a Word document or an Outlook RTF mail) are OLE 1.0
streams: their native data (a compound file, or a "Package" holding the
original file) is returned as a member.
"""

from __future__ import annotations

import codecs
import re
import struct

from striprtf.striprtf import rtf_to_text

from dlp.extract.base import Budget, Extracted, Member
from dlp.extract.limits import check_member_count
from dlp.model import AttachmentStatus, TextChunk

_ANSICPG = re.compile(r"\\ansicpg(\d{3,5})")
# Eight or more source lines of nothing but 32+ hex digits: picture / object data.
# Anchored at a line start: unanchored, every position of one long hex line was
# a start that scanned to its end (40 KB without a line break took 11 s).
_HEX_BLOCK = re.compile(r"(?m)^(?:[0-9a-fA-F]{32,}[ \t]*\r?\n){8,}")


def codepage(head: str) -> str:
    m = _ANSICPG.search(head)
    if m:
        name = f"cp{m.group(1)}"
        try:
            codecs.lookup(name)
            return name
        except LookupError:
            pass
    if "\\fcharset128" in head:
        return "cp932"
    return "cp1252"


_SHOWN_DESTINATIONS = re.compile(
    r"(?:\\\*)?\\(?:header[lrf]?|footer[lrf]?|footnote|annotation|shpinst|shptxt|shp)(?![a-z])"
)
"""Groups striprtf drops as destinations though a reader sees them: headers and
footers, footnotes, comments, a shape's text.  Made ordinary groups (a paragraph
mark), so their text is read."""

_OBJDATA = re.compile(r"\\\*\\objdata\b\s*([0-9a-fA-F\s]+)")


def _ole1_native(blob: bytes) -> tuple[str, bytes] | None:
    """[MS-OLEDS] 2.2.4 ObjectHeader + native data: (class name, payload)."""
    try:
        pos = 8  # OLEVersion, FormatID
        (n,) = struct.unpack_from("<I", blob, pos)
        class_name = blob[pos + 4 : pos + 4 + n].rstrip(b"\x00").decode("latin-1")
        pos += 4 + n
        for _ in range(2):  # topic name, item name
            (n,) = struct.unpack_from("<I", blob, pos)
            pos += 4 + n
        (size,) = struct.unpack_from("<I", blob, pos)
        native = blob[pos + 4 : pos + 4 + size]
    except struct.error:
        return None
    if len(native) != size or not native:
        return None
    if class_name == "Package":
        from dlp.extract.legacy import ole10native_member

        # the \x01Ole10Native stream is this native data behind a 4-byte size
        member = ole10native_member(struct.pack("<I", len(native)) + native)
        if member is not None:
            return member.name, member.data
    return class_name or "object", native


def _objects(source: str, budget: Budget) -> list[Member]:
    members: list[Member] = []
    for m in _OBJDATA.finditer(source):
        budget.check_time()
        hexdigits = re.sub(r"\s+", "", m.group(1))
        if len(hexdigits) // 2 > budget.max_file_bytes:
            continue
        try:
            blob = bytes.fromhex(hexdigits[: len(hexdigits) // 2 * 2])
        except ValueError:
            continue
        got = _ole1_native(blob)
        if got is not None:
            check_member_count(budget, len(members))
            members.append(Member(got[0], got[1]))
    return members


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    source = data.decode("latin-1")
    encoding = codepage(source[:8192])
    members = _objects(source, budget) if "\\objdata" in source else []
    source = _HEX_BLOCK.sub("", source)
    source = _SHOWN_DESTINATIONS.sub(r"\\par ", source)
    budget.check_time()
    text = rtf_to_text(source, encoding=encoding, errors="replace")
    budget.check_time()
    chunks = (TextChunk(text=text, location=location),) if text.strip() else ()
    return Extracted(
        kind="rtf", status=AttachmentStatus.SCANNED, chunks=chunks, members=tuple(members)
    )
