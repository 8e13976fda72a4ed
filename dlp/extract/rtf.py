"""RTF via striprtf, with the code page taken from the document.

Japanese RTF carries text either as ``\\uN`` escapes or as CP932 byte pairs
(``\\'8c\\'c2``); the pairs only decode with the document's ``\\ansicpg``
(or, lacking one, CP932 when a font declares ``\\fcharset128``).  Embedded
pictures and OLE objects are long hex runs that striprtf would crawl through
character by character (1.2 s for a 3 MB photo), so they are cut out first.
"""

from __future__ import annotations

import codecs
import re

from striprtf.striprtf import rtf_to_text

from dlp.extract.base import Budget, Extracted
from dlp.model import AttachmentStatus, TextChunk

_ANSICPG = re.compile(r"\\ansicpg(\d{3,5})")
# Eight or more source lines of nothing but 32+ hex digits: picture / object data.
_HEX_BLOCK = re.compile(r"(?:[0-9a-fA-F]{32,}[ \t]*\r?\n){8,}")


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


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    source = data.decode("latin-1")
    encoding = codepage(source[:8192])
    source = _HEX_BLOCK.sub("", source)
    budget.check_time()
    text = rtf_to_text(source, encoding=encoding, errors="replace")
    budget.check_time()
    chunks = (TextChunk(text=text, location=location),) if text.strip() else ()
    return Extracted(kind="rtf", status=AttachmentStatus.SCANNED, chunks=chunks)
