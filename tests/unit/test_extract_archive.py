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


# Made with p7zip 16.02 here: `7z a -pSECRET manyenc.7z many/` (40 small files, so the header is
# LZMA-packed and the AES coder only shows after decoding it), the same without -p, and
# `7z a -pSECRET -mhe=on hdr.7z meibo.csv` (the header itself encrypted).
SEVENZIP = {
    "manyenc": bytes.fromhex(
        "377abcaf271c000467e01c2bf8010000000000002200000000000000d8fb67e206478e4a8a3ec97094dffa6f"
        "c1ce7449dd20ed8fd85815b84df351add264866c366ef1de882d76f57a9d0f997b83520d69110ab5c9ce817c"
        "196466346183407db0fc28c0742e1fe393ea9e022707ee492b755d756e40aaac930538d584e9aa8700008133"
        "07ae0fd38fe3fd40bb94643b39a47ae76a20fb88a8b7408a793abbd2844879be2993a36d485f802b8215abc0"
        "224d61c3c73fc15c9e6f8f3abe4593fa87756dd9fd9f65798cd06f4f7f07b6d6854b4d553c6ea0971d2cc9e8"
        "5f94d2edc0079cee3b4cbafa1dea3932c6d888c3c5d4157d9ea70c9f950451669929e3f7798226942f657aac"
        "09384dfc10353d639ad1c755a60302cd8b48c5b910ace6b915c052395f70ac2ec2ccdc276b94776f3d093107"
        "4399bf8102eed9009affefcc6bd88e25a332904c4a32bf5a9236f7e306efee9a82827f5ffe23d25abd7748bb"
        "8686d82cf672a965e265b2dbc4cc8b7270303433d0520f7b7a7b14a7f8abb45962c749f836e0692261e8ce0d"
        "04f6a310390aa0c61e0f38dbff3ed61ff5f35228e680e080c0a0cbb360afcbc8ec09754dc14d0f4201114293"
        "e480b72196f191f64cf02fc36f45de0f228c84c1685d7c99c1edc9901f83575a326f9d0d7d53cb48b9be636e"
        "9d9411be1e113859757098688cc6d044d1561fe8e8095bc64eaf202858e63fdd5587ef6b03d61590350cdea7"
        "9b29efad030000001706600109819800070b01000123030101055d001000000c87160a01228f271c0000"
    ),
    "manyplain": bytes.fromhex(
        "377abcaf271c00042e61bca5d60100000000000022000000000000005deea935e0010e004e5d00391bcb5020"
        "a8043ca199c006e0013e514016a2a6ef9c787f469538c38b007476502534bb86dbaea2993867ac10504f8f96"
        "4cdd393ebe2172d98022502aecfd4691366b72c40ff9f555ebbc7cd500000000813307ae0fd30edb7d40c090"
        "d2ff7d694d8f30814e41ebd935b573d066e1dfd067e5e34ae400b59704d18c7a6a4d53f9389fb012f40b54e1"
        "3455eb564817aadcfac690f32f1a7bba12bccc2ab3b99c1a450946934b449bda228c24372d2887df24ddd43e"
        "ce0bac44cbcbe8e0943493a19eff04f528a111fa6f123288563f0dd29474aa032e47c45021c6c0c85e848ee1"
        "747c8040f4849045920e13688cf9da412126bfe33278ab1449ce9a4b4617b9031d93f5ded45e2e54cce66e97"
        "d9e58dc915914f1b022e29dea1e9da517a7eec8ed3b7f594ef27a316b4f2350df0757159d9eaef40fec38177"
        "ce01aac32abf59ca84cc58b5f413115bb85517a20a29daa2ff8549417f63e2fa7392b9ed581ac6923b37d2d5"
        "06e96278933564a55485cda330721cf09b771a0acb3bc5696b0aa1068ce07728b75078d3b4e28bb69ea54bc2"
        "6054bc9ccd160c98687c26fe0679544510b28e1cf3f06d3b12768543ac67a4a19f27bf73d4ff71c2051ed28b"
        "66ceac2689e0c7fe662bdef5be4d4c0000001706560109818000070b01000123030101055d001000000c8706"
        "0a013dd7530d0000"
    ),
    "hdr": bytes.fromhex(
        "377abcaf271c0004ffd2c982a0000000000000002e000000000000006bde71705bb4f867d6a71f7959bf9dd8"
        "e9e48ce0cd81d6fe75c6fc4aaf957ff88a6e6545645a122200d9af630e4100b27d43ada9e8e118b14f21e0ff"
        "382ed775ddab43d0d63cbe45d46610a63be403045089d4195f8bb0639cd4e85250fb895fb157c805a0e3d676"
        "6b98be2be27f7ed16467ce276955e2d3c2ba124ed6d9091e14bc486fffd697e434ea4baa35c6778729067316"
        "e1bf0a5d6efbaeffc7bddefd0aa1114417063001097000070b0100012406f1070112530fb833584bff071a38"
        "6d93ef1341fa34220c6a0a01c1e531970000"
    ),
}


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("manyenc", AttachmentStatus.ENCRYPTED),
        ("hdr", AttachmentStatus.ENCRYPTED),
        ("manyplain", AttachmentStatus.UNSUPPORTED),
    ],
)
def test_7z_encryption_is_told_from_the_headers(name: str, status: AttachmentStatus) -> None:
    ex = run(SEVENZIP[name], f"{name}.7z")
    assert (ex.kind, ex.status) == ("7z", status)


def _vint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _rar5_block(htype: int, body: bytes = b"", extra: bytes = b"") -> bytes:
    flags = 0x01 if extra else 0
    inner = _vint(htype) + _vint(flags) + (_vint(len(extra)) if extra else b"") + body + extra
    return b"\0\0\0\0" + _vint(len(inner)) + inner


@pytest.mark.parametrize("encrypted", [True, False])
def test_rar5_file_encryption_record(encrypted: bool) -> None:
    record = _vint(1) + b"\0" * 8  # type 1: file encryption
    if not encrypted:
        record = _vint(2) + b"\0" * 8  # type 2: file hash
    extra = _vint(len(record)) + record
    rar = (
        b"Rar!\x1a\x07\x01\x00"
        + _rar5_block(1, _vint(0))
        + _rar5_block(2, b"\0" * 6, extra)
        + _rar5_block(5, _vint(0))
    )
    want = AttachmentStatus.ENCRYPTED if encrypted else AttachmentStatus.UNSUPPORTED
    assert run(rar, "a.rar").status is want


def test_rar5_encrypted_headers_and_rar4_password_flag() -> None:
    assert run(b"Rar!\x1a\x07\x01\x00" + _rar5_block(4, b"\0" * 20), "h.rar").status is (
        AttachmentStatus.ENCRYPTED
    )
    main = struct.pack("<HBHH", 0, 0x73, 0x0080, 13) + b"\0" * 6
    assert run(b"Rar!\x1a\x07\x00" + main, "old.rar").status is AttachmentStatus.ENCRYPTED
    plain = struct.pack("<HBHH", 0, 0x73, 0, 13) + b"\0" * 6
    assert run(b"Rar!\x1a\x07\x00" + plain, "old.rar").status is AttachmentStatus.UNSUPPORTED
