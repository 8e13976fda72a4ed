"""Legacy binary Office (.doc, .ppt), encrypted OOXML, and other OLE2 compound files.

No maintained Python library reads .doc or .ppt text, but the text itself is
easy to reach, so it is read directly from the streams (olefile):

- Word 97–2003 ([MS-DOC] §2.4.1): the piece table (CLX) in the table stream
  maps character positions to runs of CP1252 or UTF-16 bytes in the
  WordDocument stream.  All stories (body, footnotes, headers, comments, text
  boxes) are in that one sequence.  Field instructions (between 0x13 and 0x14)
  are dropped, their results kept.
- PowerPoint 97–2003 ([MS-PPT]): every TextCharsAtom (UTF-16) and
  TextBytesAtom (8-bit) record in the "PowerPoint Document" stream.

An OLE2 file holding ``EncryptedPackage`` is a password-protected
docx/xlsx/pptx: it is tried once with Excel's default key (officecrypto.py)
and otherwise reported ``encrypted``; so are .doc/.ppt with the encryption
flag.  A generic OLE object (what ``word/embeddings/oleObject1.bin`` is) gives
up its payload (``\\x01Ole10Native``, ``Package``, ``CONTENTS``) as a member.
"""

from __future__ import annotations

import io
import struct

import olefile

from dlp.extract.base import Budget, BudgetExceeded, Extracted, Member
from dlp.extract.limits import check_member_count
from dlp.extract.officecrypto import decrypt_default, is_encrypted_ole
from dlp.model import AttachmentStatus, TextChunk

_MAX_PIECES = 1_000_000


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
    except Exception as exc:
        return Extracted(
            kind="ole",
            status=AttachmentStatus.ERROR,
            detail=f"damaged OLE2 file ({type(exc).__name__})",
        )
    try:
        if ole.exists("EncryptedPackage"):
            return _encrypted_package(data, filename)
        if ole.exists("WordDocument"):
            return _doc(ole, data, location, budget)
        if ole.exists("PowerPoint Document"):
            return _ppt(ole, data, location, budget)
        return _ole_object(ole, filename, budget)
    finally:
        ole.close()


# --- encrypted OOXML --------------------------------------------------------------------------


def _encrypted_package(data: bytes, filename: str) -> Extracted:
    plain = decrypt_default(data)
    if plain is None:
        return Extracted(
            kind="encrypted-office",
            status=AttachmentStatus.ENCRYPTED,
            detail="password-protected Office document",
        )
    return Extracted(
        kind="encrypted-office",
        status=AttachmentStatus.SCANNED,
        members=(Member(filename or "decrypted", plain),),
        defects=("decrypted with Excel's default password (write-protected document)",),
    )


# --- Word 97-2003 -----------------------------------------------------------------------------


def _doc(ole: olefile.OleFileIO, data: bytes, location: str, budget: Budget) -> Extracted:
    word = ole.openstream("WordDocument").read()
    if len(word) < 0x1AA or struct.unpack_from("<H", word, 0)[0] != 0xA5EC:
        return Extracted(kind="doc", status=AttachmentStatus.ERROR, detail="not a Word 97+ FIB")
    n_fib = struct.unpack_from("<H", word, 2)[0]
    flags = struct.unpack_from("<H", word, 0x0A)[0]
    if flags & 0x0100 or flags & 0x8000 or is_encrypted_ole(data):
        return Extracted(
            kind="doc", status=AttachmentStatus.ENCRYPTED, detail="password-protected Word document"
        )
    if n_fib < 0x00C1:
        return Extracted(
            kind="doc", status=AttachmentStatus.UNSUPPORTED, detail="Word 95 or older document"
        )
    table_name = "1Table" if flags & 0x0200 else "0Table"
    if not ole.exists(table_name):
        return Extracted(kind="doc", status=AttachmentStatus.ERROR, detail="table stream missing")
    table = ole.openstream(table_name).read()
    fc_clx, lcb_clx = struct.unpack_from("<II", word, 0x01A2)
    clx = table[fc_clx : fc_clx + lcb_clx]
    text = _doc_text(word, clx, budget)
    if text is None:
        return Extracted(kind="doc", status=AttachmentStatus.ERROR, detail="damaged piece table")
    text = _clean_doc_text(text)
    chunks = (TextChunk(text=text, location=location),) if text.strip() else ()
    # objects pasted into the document (a workbook, a packaged file) live in ObjectPool
    members = _payloads(ole, ["ObjectPool"], budget) if ole.exists("ObjectPool") else []
    return Extracted(
        kind="doc", status=AttachmentStatus.SCANNED, chunks=chunks, members=tuple(members)
    )


def _doc_text(word: bytes, clx: bytes, budget: Budget) -> str | None:
    pos = 0
    # skip Prc entries (property modifiers) until the Pcdt
    while pos < len(clx) and clx[pos] == 0x01:
        if pos + 3 > len(clx):
            return None
        pos += 3 + struct.unpack_from("<H", clx, pos + 1)[0]
    if pos + 5 > len(clx) or clx[pos] != 0x02:
        return None
    lcb = struct.unpack_from("<I", clx, pos + 1)[0]
    plc = clx[pos + 5 : pos + 5 + lcb]
    n = (len(plc) - 4) // 12
    if n <= 0 or n > _MAX_PIECES:
        return None
    cps = struct.unpack_from(f"<{n + 1}I", plc, 0)
    out: list[str] = []
    total = 0
    for i in range(n):
        if i % 1024 == 0:
            budget.check_time()
        pcd = plc[4 * (n + 1) + 8 * i : 4 * (n + 1) + 8 * i + 8]
        fc_raw = struct.unpack_from("<I", pcd, 2)[0]
        count = cps[i + 1] - cps[i]
        if count <= 0:
            continue
        total += count
        if total > len(word) * 2 + 16:  # more characters than the stream can hold
            return None
        if fc_raw & 0x40000000:
            start = (fc_raw & 0x3FFFFFFF) // 2
            out.append(word[start : start + count].decode("cp1252", "replace"))
        else:
            start = fc_raw & 0x3FFFFFFF
            out.append(word[start : start + 2 * count].decode("utf-16-le", "replace"))
    return "".join(out)


_DOC_CONTROLS = str.maketrans(
    {
        "\r": "\n",
        "\x07": "\t",  # table cell / row end
        "\x0b": "\n",
        "\x0c": "\n",
        "\x1e": "-",  # non-breaking hyphen
        "\x1f": "",  # optional hyphen
        "\x01": "",
        "\x08": "",
        "\x05": "",  # annotation reference
        "\x02": "",  # footnote reference
    }
)


def _clean_doc_text(text: str) -> str:
    """Drop field instructions (0x13 … 0x14), keep field results (0x14 … 0x15).

    A field without a result keeps its instruction: Word stores ruby (furigana)
    as an ``EQ \\o\\ad(…)`` field with no result, so the instruction is the
    only place the words are."""
    out: list[str] = []
    fields: list[list[str] | None] = []  # per open field: instruction buffer, None once in result
    for ch in text:
        if ch == "\x13":
            fields.append([])
        elif ch == "\x14":
            if fields:
                fields[-1] = None
        elif ch == "\x15":
            if fields:
                instr = fields.pop()
                if instr is not None:
                    (fields[-1] if fields and fields[-1] is not None else out).extend(instr)
        elif fields and fields[-1] is not None:
            fields[-1].append(ch)
        else:
            out.append(ch)
    for instr in fields:  # unterminated fields: keep what they hold
        if instr:
            out.extend(instr)
    return "".join(out).translate(_DOC_CONTROLS)


# --- PowerPoint 97-2003 -----------------------------------------------------------------------

_TEXT_CHARS = 0x0FA0
_TEXT_BYTES = 0x0FA8
_CRYPT_SESSION = 0x2F14


def _ppt(ole: olefile.OleFileIO, data: bytes, location: str, budget: Budget) -> Extracted:
    stream = ole.openstream("PowerPoint Document").read()
    if is_encrypted_ole(data):
        return Extracted(
            kind="ppt", status=AttachmentStatus.ENCRYPTED, detail="password-protected presentation"
        )
    texts: list[str] = []
    stack = [(0, len(stream))]
    steps = 0
    while stack:
        pos, end = stack.pop()
        while pos + 8 <= end:
            steps += 1
            if steps % 4096 == 0:
                budget.check_time()
            ver_inst, rec_type, rec_len = struct.unpack_from("<HHI", stream, pos)
            body = pos + 8
            if body + rec_len > end:
                break
            if rec_type == _CRYPT_SESSION:
                return Extracted(
                    kind="ppt", status=AttachmentStatus.ENCRYPTED, detail="encrypted presentation"
                )
            if ver_inst & 0x000F == 0x000F and rec_len:
                # container: walk its children after the rest of this level
                stack.append((body + rec_len, end))
                end = body + rec_len
                pos = body
                continue
            if rec_type == _TEXT_CHARS:
                texts.append(stream[body : body + rec_len].decode("utf-16-le", "replace"))
            elif rec_type == _TEXT_BYTES:
                texts.append(stream[body : body + rec_len].decode("latin-1"))
            pos = body + rec_len
    text = "\n".join(t.replace("\r", "\n").replace("\x0b", "\n") for t in texts)
    chunks = (TextChunk(text=text, location=location),) if text.strip() else ()
    return Extracted(kind="ppt", status=AttachmentStatus.SCANNED, chunks=chunks)


# --- generic OLE objects ----------------------------------------------------------------------


def _payloads(ole: olefile.OleFileIO, prefix: list[str], budget: Budget) -> list[Member]:
    """Files carried by OLE objects under ``prefix`` (an object, or a .doc's ObjectPool)."""
    members: list[Member] = []
    for path in ole.listdir(streams=True, storages=False):
        if path[: len(prefix)] != prefix or len(path) > len(prefix) + 2:
            continue
        leaf = path[-1]
        if leaf not in ("\x01Ole10Native", "Package", "CONTENTS"):
            continue
        budget.check_time()
        if ole.get_size("/".join(path)) > budget.max_file_bytes:
            raise BudgetExceeded(
                AttachmentStatus.TOO_LARGE, "embedded object exceeds max_file_bytes"
            )
        check_member_count(budget, len(members))
        raw = ole.openstream(path).read()
        if leaf == "\x01Ole10Native":
            member = ole10native_member(raw)
            if member is not None:
                members.append(member)
        else:
            members.append(
                Member(leaf.lower() if len(path) == 1 else f"{path[-2]}.{leaf.lower()}", raw)
            )
    return members


def _ole_object(ole: olefile.OleFileIO, filename: str, budget: Budget) -> Extracted:
    members = _payloads(ole, [], budget)
    if members:
        return Extracted(kind="ole", status=AttachmentStatus.SCANNED, members=tuple(members))
    return Extracted(
        kind="ole",
        status=AttachmentStatus.UNSUPPORTED,
        detail="OLE2 file of an unknown application",
    )


def ole10native_member(native: bytes) -> Member | None:
    """[MS-OLEDS] 2.3.6 OLE1.0 native data: size, label, paths, then the embedded file."""
    try:
        pos = 6
        end = native.index(b"\x00", pos)
        label = native[pos:end].decode("cp932", "replace")
        pos = native.index(b"\x00", end + 1) + 1  # original path
        pos += 4  # type marker
        (path_len,) = struct.unpack_from("<I", native, pos)
        pos += 4 + path_len
        (size,) = struct.unpack_from("<I", native, pos)
        pos += 4
        payload = native[pos : pos + size]
        if len(payload) != size:
            return None
        return Member(label or "ole10native", payload)
    except (ValueError, struct.error):
        return None
