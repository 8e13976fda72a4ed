"""Archives: ZIP, gzip, bzip2, xz and tar give up their files as members.

The scanner sends every member back through the registry one level deeper,
so nesting depth (and ``droste.zip``, a ZIP that contains itself) is bounded
by ``max_depth`` there; nothing here recurses.

Limits, checked *before* inflating a member: ``max_members``, the declared
size against ``max_file_bytes`` and what is left of ``max_total_bytes``, and
the declared ratio against ``max_ratio``.  The read itself is capped too (a
lying header cannot make it return more), and overlapping members — the
"better zip bomb" that points many entries at one compressed stream — are
refused outright.  Members are checked, not spent: the registry spends each
one when the scanner hands it back.

ZIP member names without the UTF-8 flag are decoded as UTF-8 if valid, else
CP932 (what Japanese Windows writes), else CP437 as the format says.  Names
are labels only — nothing is ever written to disk, so ``../../x`` is harmless.

Encrypted members (ZipCrypto, WinZip AES, PKWARE strong encryption — the
Japanese "PPAP" habit) make the archive ``encrypted``; the other members are
still returned and scanned.  7z, RAR, LZH and CAB are recognised and reported
``unsupported`` — or ``encrypted`` when a 7z/RAR header says so (sevenzip.py).
"""

from __future__ import annotations

import bz2
import io
import lzma
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field

from dlp.extract import zipparts
from dlp.extract.base import Budget, BudgetExceeded, Extracted, Member
from dlp.extract.limits import check_member_count
from dlp.extract.sevenzip import rar_encrypted, sevenzip_encrypted
from dlp.model import AttachmentStatus

_UNREAD = {
    b"7z\xbc\xaf\x27\x1c": "7z",
    b"Rar!\x1a\x07": "rar",
    b"MSCF\x00\x00\x00\x00": "cab",
}
# Worst first: the status an archive gets when several members could not be read.
_SEVERITY = (
    AttachmentStatus.ENCRYPTED,
    AttachmentStatus.TOO_LARGE,
    AttachmentStatus.TIMEOUT,
    AttachmentStatus.ERROR,
    AttachmentStatus.UNSUPPORTED,
)


@dataclass
class _Result:
    kind: str
    members: list[Member] = field(default_factory=list)
    problems: dict[AttachmentStatus, list[str]] = field(default_factory=dict)
    defects: list[str] = field(default_factory=list)
    total: int = 0

    def problem(self, status: AttachmentStatus, what: str) -> None:
        self.problems.setdefault(status, []).append(what)

    def done(self) -> Extracted:
        status = AttachmentStatus.SCANNED
        detail = ""
        for s in _SEVERITY:
            if s in self.problems:
                status = s
                break
        if self.problems:
            detail = "; ".join(
                f"{len(v)} {s.value}: {', '.join(v[:3])}{'…' if len(v) > 3 else ''}"
                for s, v in self.problems.items()
            )
        return Extracted(
            kind=self.kind,
            status=status,
            members=tuple(self.members),
            detail=detail[:300],
            defects=tuple(self.defects),
        )

    def room(self, budget: Budget) -> int:
        """Bytes a further member may still have."""
        return min(budget.max_file_bytes, budget.max_total_bytes - budget.spent_bytes - self.total)

    def add(self, budget: Budget, name: str, payload: bytes, container: bytes) -> None:
        if payload == container:
            self.defects.append(f"archive contains itself ({name}); not followed")
            return
        check_member_count(budget, len(self.members))
        self.total += len(payload)
        self.members.append(Member(name, payload))


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    for magic, kind in _UNREAD.items():
        if data.startswith(magic):
            locked = {"7z": sevenzip_encrypted, "rar": rar_encrypted}.get(kind)
            if locked is not None and locked(data):
                return Extracted(
                    kind=kind,
                    status=AttachmentStatus.ENCRYPTED,
                    detail=f"password-protected {kind} archive",
                )
            return Extracted(
                kind=kind, status=AttachmentStatus.UNSUPPORTED, detail=f"{kind} archive not read"
            )
    if len(data) > 7 and data[2:4] == b"-l" and data[6:7] == b"-":
        return Extracted(
            kind="lzh", status=AttachmentStatus.UNSUPPORTED, detail="lzh archive not read"
        )
    if data.startswith(b"\x1f\x8b"):
        return _stream(data, filename, budget, "gzip")
    if data.startswith(b"BZh"):
        return _stream(data, filename, budget, "bzip2")
    if data.startswith(b"\xfd7zXZ\x00"):
        return _stream(data, filename, budget, "xz")
    if data.startswith(b"PK") or b"PK\x05\x06" in data[-66_000:]:
        return _zip(data, budget)
    return _tar(data, budget)


# --- ZIP --------------------------------------------------------------------------------------


def member_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            raw = name.encode("cp437")
        except UnicodeEncodeError:
            raw = b""
        if raw:
            # Japanese Windows writes CP932; GB18030 covers Chinese partners' GBK
            name = _decode_name(raw, ("utf-8", "cp932", "gb18030"), name)
    return _printable(name)


def _decode_name(raw: bytes, encodings: tuple[str, ...], fallback: str) -> str:
    """``raw`` in the first of ``encodings`` that decodes it strictly, else ``fallback``."""
    for enc in encodings:
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return fallback


def _printable(name: str) -> str:
    return "".join(ch for ch in name if ch >= " " and ch != "\x7f")[:255] or "unnamed"


def _zip(data: bytes, budget: Budget) -> Extracted:
    res = _Result("zip")
    try:
        zf = zipparts.open_zip(data)
    except Exception as exc:
        return _zip_salvage(data, budget, res, exc)
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if _overlapping(infos):
            return Extracted(
                kind="zip",
                status=AttachmentStatus.TOO_LARGE,
                detail="members overlap in the archive (zip bomb)",
            )
        try:
            for info in infos:
                budget.check_time()
                name = member_name(info)
                if zipparts.is_encrypted(info):
                    res.problem(AttachmentStatus.ENCRYPTED, name)
                    continue
                if zipparts.ratio_too_high(info, budget.max_ratio):
                    res.problem(AttachmentStatus.TOO_LARGE, f"{name} (ratio)")
                    continue
                room = res.room(budget)
                if info.file_size > room:
                    if room < budget.max_file_bytes:  # the message total is used up
                        raise BudgetExceeded(
                            AttachmentStatus.TOO_LARGE,
                            f"message exceeds max_total_bytes {budget.max_total_bytes} decompressed",
                        )
                    res.problem(AttachmentStatus.TOO_LARGE, name)
                    continue
                try:
                    payload = zipparts.read_capped(zf, info, room, budget)
                except BudgetExceeded as exc:
                    if exc.status is AttachmentStatus.TIMEOUT:
                        raise
                    res.problem(AttachmentStatus.TOO_LARGE, name)
                    continue
                except NotImplementedError:
                    res.problem(AttachmentStatus.UNSUPPORTED, f"{name} (compression method)")
                    continue
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
                    res.problem(AttachmentStatus.ERROR, f"{name} ({type(exc).__name__})")
                    continue
                res.add(budget, name, payload, data)
        except BudgetExceeded as exc:
            res.problem(exc.status, exc.detail)
    return res.done()


def _overlapping(infos: list[zipfile.ZipInfo]) -> bool:
    spans = sorted((i.header_offset, i.header_offset + 30 + i.compress_size) for i in infos)
    return any(spans[k][1] > spans[k + 1][0] for k in range(len(spans) - 1))


def _zip_salvage(data: bytes, budget: Budget, res: _Result, exc: Exception) -> Extracted:
    res.defects.append(f"damaged ZIP ({type(exc).__name__}); members read from local headers")
    try:
        parts = zipparts.salvage(data, budget, res.room(budget), limit=budget.max_members)
    except zipparts.EncryptedMember as enc:
        res.problem(AttachmentStatus.ENCRYPTED, _printable(str(enc)))
        return res.done()
    except BudgetExceeded as over:
        res.problem(over.status, over.detail)
        return res.done()
    for raw_name, payload in parts:
        if raw_name.endswith("/"):
            continue
        info = zipfile.ZipInfo(raw_name)
        res.add(budget, member_name(info), payload, data)
    res.problem(AttachmentStatus.ERROR, "damaged or truncated ZIP")
    return res.done()


# --- gzip / bzip2 / xz ------------------------------------------------------------------------


def _stream(data: bytes, filename: str, budget: Budget, kind: str) -> Extracted:
    res = _Result(kind)
    cap = min(res.room(budget), max(zipparts.SMALL_PART, budget.max_ratio * len(data)))
    out = bytearray()
    complete = False
    try:
        rest = data
        while rest:  # concatenated streams (gzip members, pbzip2 blocks) follow each other
            budget.check_time()
            complete = False
            dec = _decompressor(kind)
            # max_length >= 1 always (0 would mean "unlimited" to zlib)
            out += dec.decompress(rest, cap + 1 - len(out))
            if len(out) > cap:
                over = "max_ratio" if cap < res.room(budget) else "size limit"
                return Extracted(
                    kind=kind,
                    status=AttachmentStatus.TOO_LARGE,
                    detail=f"{kind} stream inflates beyond its {over} (bomb?)",
                )
            if not dec.eof:
                break  # input ended inside the stream: truncated
            complete = True
            rest = dec.unused_data.lstrip(b"\x00")
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        res.defects.append(f"{kind} stream damaged ({type(exc).__name__})")
    name = _stream_name(data, filename, kind)
    if out:
        res.add(budget, name, bytes(out), data)
    if not complete:
        res.problem(AttachmentStatus.ERROR, f"truncated or damaged {kind} stream")
    return res.done()


def _decompressor(kind: str) -> zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor:
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor()


def _stream_name(data: bytes, filename: str, kind: str) -> str:
    if kind == "gzip" and len(data) > 10 and data[3] & 0x08:  # FNAME present
        pos = 10
        if data[3] & 0x04:  # FEXTRA
            pos += 2 + int.from_bytes(data[10:12], "little")
        end = data.find(b"\x00", pos, pos + 1024)
        if end > pos:
            raw = data[pos:end]
            name = _decode_name(raw, ("utf-8", "cp932"), raw.decode("latin-1"))
            return _printable(name.replace("\\", "/").rsplit("/", 1)[-1])
    base = filename.rsplit("/", 1)[-1]
    for suffix, repl in (
        (".tgz", ".tar"),
        (".gz", ""),
        (".bz2", ""),
        (".xz", ""),
        (".tbz2", ".tar"),
    ):
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)] + repl
    return "data"


# --- tar --------------------------------------------------------------------------------------


def _tar(data: bytes, budget: Budget) -> Extracted:
    res = _Result("tar")
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:", errors="surrogateescape")  # noqa: SIM115
    except (tarfile.TarError, ValueError, OSError) as exc:
        return Extracted(
            kind="tar", status=AttachmentStatus.ERROR, detail=f"damaged tar ({type(exc).__name__})"
        )
    with tf:
        try:
            _tar_members(tf, data, budget, res)
        except BudgetExceeded as exc:
            res.problem(exc.status, exc.detail)
    return res.done()


def _tar_members(tf: tarfile.TarFile, data: bytes, budget: Budget, res: _Result) -> None:
    while True:
        budget.check_time()
        try:
            info = tf.next()
        except (tarfile.TarError, ValueError, OSError) as exc:
            res.problem(AttachmentStatus.ERROR, f"damaged tar ({type(exc).__name__})")
            return
        if info is None:
            return
        if not info.isfile():
            continue
        name = _tar_name(info.name)
        # a sparse member can declare far more than the archive holds: the cap bounds it
        if info.size > res.room(budget):
            res.problem(AttachmentStatus.TOO_LARGE, name)
            continue
        fh = tf.extractfile(info)
        if fh is None:
            continue
        try:
            payload = fh.read(info.size)
        except (tarfile.TarError, OSError):
            # tarfile raises on a short member rather than returning less; the
            # members before it are still good and must be scanned.
            res.problem(AttachmentStatus.ERROR, f"{name} (truncated)")
            return
        res.add(budget, name, payload, data)


def _tar_name(name: str) -> str:
    raw = name.encode("utf-8", "surrogateescape")
    return _printable(_decode_name(raw, ("utf-8", "cp932"), raw.decode("latin-1")))
