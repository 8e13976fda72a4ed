"""Archives: names, encryption, bombs, nesting, traversal — right status, bounded time and memory."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import time
import tracemalloc
import zipfile

import pytest
from extract_support import N1, N2, budget, run, walk

from dlp.config import ScanSettings
from dlp.model import AttachmentStatus
from dlp.scanner import scan_file

pytestmark = pytest.mark.timeout(60)

CSV = f"氏名,個人番号\r\n山田,{N1}\r\n佐藤,{N2}\r\n".encode("cp932")


class _Cp932Name(zipfile.ZipInfo):
    """What Japanese Windows' Explorer writes: CP932 bytes, no UTF-8 flag (bit 11)."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("cp932"), self.flag_bits


def _zip(
    members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED, cp932: bool = False
) -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", method) as z:
        for name, data in members.items():
            info = _Cp932Name(name) if cp932 else zipfile.ZipInfo(name)
            info.compress_type = method
            z.writestr(info, data)
    return bio.getvalue()


def test_cp932_member_names_without_utf8_flag() -> None:
    data = _zip({"名簿/職員一覧.csv": CSV, "表だよ.txt": b"x"}, cp932=True)
    raw = zipfile.ZipFile(io.BytesIO(data)).infolist()[0]
    assert not raw.flag_bits & 0x800  # really unflagged
    ex = run(data, "送付.zip")
    assert ex.kind == "zip" and ex.status is AttachmentStatus.SCANNED
    assert [m.name for m in ex.members] == ["名簿/職員一覧.csv", "表だよ.txt"]
    assert ex.members[0].data == CSV


def test_aes_zip_is_encrypted_and_plain_members_still_returned() -> None:
    import pyzipper

    bio = io.BytesIO()
    with pyzipper.AESZipFile(bio, "w", compression=pyzipper.ZIP_DEFLATED) as z:
        z.setpassword(b"pass1234")
        z.setencryption(pyzipper.WZ_AES, nbits=256)
        z.writestr("名簿.csv", CSV)
    ex = run(bio.getvalue(), "ppap.zip")
    assert ex.status is AttachmentStatus.ENCRYPTED
    assert ex.members == ()
    # one encrypted member among plain ones: encrypted, but the plain ones are read
    with pyzipper.AESZipFile(bio2 := io.BytesIO(), "w") as z:
        z.writestr("readme.txt", b"hello")
        z.setpassword(b"pass1234")
        z.setencryption(pyzipper.WZ_AES)
        z.writestr("secret.csv", CSV)
    ex = run(bio2.getvalue(), "mixed.zip")
    assert ex.status is AttachmentStatus.ENCRYPTED
    assert [m.name for m in ex.members] == ["readme.txt"]
    assert "secret.csv" in ex.detail


def test_zipcrypto_from_the_corpus(corpus_dir: object) -> None:
    from pathlib import Path

    path = (
        Path(str(corpus_dir))
        / "zip-libarchive"
        / "test_read_format_zip_traditional_encryption_data.zip"
    )
    assert run(path.read_bytes(), "z.zip").status is AttachmentStatus.ENCRYPTED


def test_path_traversal_names_are_only_labels(tmp_path: object) -> None:
    data = _zip({"../../../../tmp/evil.csv": CSV, "/etc/passwd": b"root", "a\\..\\b.txt": b"x"})
    before = set(os.listdir("/tmp"))
    ex = run(data, "t.zip")
    assert ex.status is AttachmentStatus.SCANNED
    assert ex.members[0].name == "../../../../tmp/evil.csv"
    assert ex.members[0].data == CSV
    assert "evil.csv" not in set(os.listdir("/tmp")) - before


def _bomb_layer(payload: bytes, copies: int) -> bytes:
    return _zip({f"{i}.zip": payload for i in range(copies)})


def test_42_zip_style_bomb_stops_within_budget() -> None:
    # innermost: 50 MB of zeros (≈50 KB deflated, ratio ≈ 1000:1), then 3 layers of 8 copies
    inner = _zip({"zeros.bin": b"\0" * 50_000_000})
    bomb = inner
    for _ in range(3):
        bomb = _bomb_layer(bomb, 8)
    assert len(bomb) < 2_000_000
    tracemalloc.start()
    t0 = time.monotonic()
    nodes = walk(bomb, "42.zip", budget(timeout=20))
    elapsed = time.monotonic() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    statuses = {n.result.status for n in nodes}
    assert AttachmentStatus.TOO_LARGE in statuses
    assert elapsed < 20
    assert peak < 60_000_000, peak  # never near the 50 MB x 512 it would expand to


def test_member_with_lying_sizes_is_capped() -> None:
    data = bytearray(_zip({"a.csv": b"1," * 5_000_000}))
    # claim 100 bytes uncompressed in both headers: the read is capped, the CRC fails
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.find(sig)
        struct.pack_into("<I", data, pos + off, 100)
    tracemalloc.start()
    ex = run(bytes(data), "liar.zip")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert ex.status in (AttachmentStatus.ERROR, AttachmentStatus.TOO_LARGE)
    assert peak < 20_000_000


def test_overlapping_members_bomb_is_refused() -> None:
    data = _zip({"a.txt": b"A" * 100_000})
    z = zipfile.ZipFile(io.BytesIO(data))
    info = z.infolist()[0]
    cd_start = data.index(b"PK\x01\x02")
    eocd = data.index(b"PK\x05\x06")
    entry = data[cd_start:eocd]
    # a second central-directory entry pointing at the same compressed data
    entry2 = entry.replace(b"a.txt", b"b.txt")
    cd = entry + entry2
    eocd_rec = bytearray(data[eocd:])
    struct.pack_into("<HHII", eocd_rec, 8, 2, 2, len(cd), cd_start)
    bomb = data[:cd_start] + cd + bytes(eocd_rec)
    assert len(zipfile.ZipFile(io.BytesIO(bomb)).infolist()) == 2 and info.file_size
    ex = run(bomb, "overlap.zip")
    assert ex.status is AttachmentStatus.TOO_LARGE
    assert "overlap" in ex.detail


def test_too_many_members() -> None:
    data = _zip({f"{i}.txt": b"" for i in range(300)}, method=zipfile.ZIP_STORED)
    ex = run(data, "many.zip", budget(max_members=100))
    assert ex.status is AttachmentStatus.TOO_LARGE
    assert len(ex.members) == 100


def test_deeply_nested_archive_through_the_scanner() -> None:
    data = _zip({"名簿.csv": CSV})
    for i in range(12):
        data = _zip({f"level{i}.zip": data})
    report = scan_file(data, "nested.zip", ScanSettings(max_depth=5), "nested.zip")
    statuses = [a.status for a in report.attachments]
    assert AttachmentStatus.TOO_DEEP in statuses
    assert len(report.attachments) <= 8


def test_droste_zip_terminates(corpus_dir: object) -> None:
    from pathlib import Path

    data = (Path(str(corpus_dir)) / "zip-tika" / "droste.zip").read_bytes()
    ex = run(data, "droste.zip")
    assert any("contains itself" in d for d in ex.defects)
    t0 = time.monotonic()
    report = scan_file(data, "droste.zip", ScanSettings(), "droste.zip")
    assert time.monotonic() - t0 < 10
    assert report.attachments


def test_gzip_member_name_bomb_and_truncation() -> None:
    bio = io.BytesIO()
    with gzip.GzipFile(filename="名簿.csv", mode="wb", fileobj=bio, mtime=0) as g:
        g.write(CSV)
    ex = run(bio.getvalue(), "x.gz")
    assert ex.kind == "gzip" and ex.status is AttachmentStatus.SCANNED
    assert ex.members[0].data == CSV
    bomb = gzip.compress(b"\0" * 60_000_000)
    ex = run(bomb, "bomb.gz")
    assert ex.status is AttachmentStatus.TOO_LARGE and ex.members == ()
    whole = gzip.compress(CSV * 100)
    cut = run(whole[: len(whole) - 12], "cut.csv.gz")  # trailer and some data gone
    assert cut.status is AttachmentStatus.ERROR
    assert cut.members and cut.members[0].name == "cut.csv"


def test_tar_and_tar_gz() -> None:
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.GNU_FORMAT, encoding="cp932") as t:
        info = tarfile.TarInfo("名簿.csv")
        info.size = len(CSV)
        t.addfile(info, io.BytesIO(CSV))
    tar = bio.getvalue()
    ex = run(tar, "a.tar")
    assert ex.kind == "tar" and [m.name for m in ex.members] == ["名簿.csv"]
    nodes = walk(gzip.compress(tar), "a.tar.gz", budget())
    assert [n.result.kind for n in nodes] == ["gzip", "tar", "csv"]


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "7z"),
        (b"Rar!\x1a\x07\x01\x00", "rar"),
        (b"Rar!\x1a\x07\x00", "rar"),
    ],
)
def test_7z_and_rar_are_unsupported(head: bytes, kind: str) -> None:
    ex = run(head + os.urandom(200), "x")
    assert (ex.kind, ex.status) == (kind, AttachmentStatus.UNSUPPORTED)
