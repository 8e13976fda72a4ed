"""Bounded access to the parts of a ZIP file (OOXML / OpenDocument packages, ZIP archives).

A ZIP's central directory *declares* each member's size; a bomb declares
small sizes or huge ratios.  Everything here checks the declared figures
against the budget before inflating anything, and then reads with a hard cap
(CPython's ``zipfile`` never returns more than the declared size and fails
the CRC check when the data would be longer), so memory stays bounded even
when the declared sizes lie.
"""

from __future__ import annotations

import io
import zipfile

from dlp.extract.base import Budget, BudgetExceeded
from dlp.model import AttachmentStatus

_CHUNK = 1 << 20
SMALL_PART = 1 << 20
"""Parts below this size are exempt from the ratio check: short repetitive XML
(styles, empty sheets) legitimately compresses far better than max_ratio."""


def xml_cap(budget: Budget) -> int:
    """Largest XML part parsed into a tree (docx/pptx/odt): half of ``max_file_bytes``.

    lxml needs several times the text in memory; a 25 MB document.xml is already
    a 2 000-page document, so a larger part is a bomb, not a report."""
    return max(SMALL_PART, budget.max_file_bytes // 2)


class EncryptedMember(Exception):
    """A ZIP member is encrypted (ZipCrypto, WinZip AES or PKWARE strong encryption)."""


def open_zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def is_encrypted(info: zipfile.ZipInfo) -> bool:
    # bit 0: encrypted; bit 6: strong encryption; method 99: WinZip AES.
    return bool(info.flag_bits & 0x1) or bool(info.flag_bits & 0x40) or info.compress_type == 99


def ratio_too_high(info: zipfile.ZipInfo, max_ratio: int) -> bool:
    if info.file_size <= SMALL_PART:
        return False
    return info.file_size > max_ratio * max(info.compress_size, 1)


def check_package(zf: zipfile.ZipFile, budget: Budget) -> None:
    """Refuse a package whose declared part sizes or ratios break the budget.

    For an office document the parts are not separate files for the user, so
    they are bounded by what is left of ``max_total_bytes`` and by
    ``max_ratio``, not by ``max_file_bytes`` (a 10 MB workbook routinely holds
    an 80 MB sheet XML)."""
    total = 0
    for info in zf.infolist():
        if ratio_too_high(info, budget.max_ratio):
            raise BudgetExceeded(
                AttachmentStatus.TOO_LARGE,
                f"part compressed more than max_ratio {budget.max_ratio}:1 (zip bomb?)",
            )
        total += info.file_size
    if budget.spent_bytes + total > budget.max_total_bytes:
        raise BudgetExceeded(
            AttachmentStatus.TOO_LARGE,
            f"package expands to {total} bytes, beyond max_total_bytes {budget.max_total_bytes}",
        )


def read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, budget: Budget) -> bytes:
    """Read one member, never more than ``cap`` bytes and never past the ratio limit."""
    if is_encrypted(info):
        raise EncryptedMember(info.filename)
    if info.file_size > cap:
        raise BudgetExceeded(
            AttachmentStatus.TOO_LARGE, f"member of {info.file_size} bytes exceeds the limit {cap}"
        )
    if ratio_too_high(info, budget.max_ratio):
        raise BudgetExceeded(
            AttachmentStatus.TOO_LARGE,
            f"member compressed more than max_ratio {budget.max_ratio}:1 (zip bomb?)",
        )
    limit = min(cap, max(SMALL_PART, budget.max_ratio * max(info.compress_size, 1)))
    out = bytearray()
    with zf.open(info) as fh:
        while True:
            block = fh.read(min(_CHUNK, limit + 1 - len(out)))
            if not block:
                break
            out += block
            if len(out) > limit:
                raise BudgetExceeded(
                    AttachmentStatus.TOO_LARGE, "member inflates beyond its limit (zip bomb?)"
                )
            budget.check_time()
    return bytes(out)


def salvage(data: bytes, budget: Budget, cap: int, limit: int = 10_000) -> list[tuple[str, bytes]]:
    """Members of a ZIP whose central directory is gone (a truncated attachment).

    Walks the local headers from the start and inflates each member with a hard
    cap; stops at the first member that cannot be read.  Names are decoded like
    ``zipfile`` would (UTF-8 when flagged, else CP437 — callers re-decode)."""
    import struct
    import zlib

    out: list[tuple[str, bytes]] = []
    pos = 0
    total = 0
    while len(out) < limit and data.startswith(b"PK\x03\x04", pos):
        budget.check_time()
        if pos + 30 > len(data):
            break
        flags, method = struct.unpack_from("<HH", data, pos + 6)
        csize = struct.unpack_from("<I", data, pos + 18)[0]
        name_len, extra_len = struct.unpack_from("<HH", data, pos + 26)
        raw_name = data[pos + 30 : pos + 30 + name_len]
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        start = pos + 30 + name_len + extra_len
        if flags & 0x1:
            raise EncryptedMember(name)
        if flags & 0x8 and csize == 0:
            break  # size only in a trailing data descriptor: cannot delimit safely
        body = data[start : start + csize]
        room = min(cap, budget.max_total_bytes - budget.spent_bytes - total)
        if method == 0:
            content = body[: room + 1]
        elif method == 8:
            d = zlib.decompressobj(-15)
            try:
                content = d.decompress(body, room + 1)
            except zlib.error:
                break
        else:
            break
        if len(content) > room or len(content) > max(
            SMALL_PART, budget.max_ratio * max(len(body), 1)
        ):
            raise BudgetExceeded(AttachmentStatus.TOO_LARGE, "member inflates beyond its limit")
        total += len(content)
        out.append((name, content))
        if len(body) < csize:
            break  # this member was cut off; it is the last readable one
        pos = start + csize
    return out
