"""Is a 7z or RAR archive encrypted?  (They are not opened; this only picks the status.)

No maintained pure-Python reader opens 7z/RAR within hard limits, so their
members are not scanned and the archive is ``unsupported`` — unless it is
password-protected, the "PPAP" case policy treats differently, which the
headers tell without decrypting anything:

- 7z: the AES-256 coder (ID 06F10701) appears among the coders of the header
  (``-mhe``: the header itself is encrypted) or, after the header is
  LZMA/LZMA2-decoded with a hard output cap, among the folders' coders.
- RAR 5: an archive encryption header, or a file header with an encryption
  extra record; RAR 4: the archive's "password" flag or a file's.
"""

from __future__ import annotations

import lzma
import struct

_AES = b"\x06\xf1\x07\x01"
_HEADER_CAP = 16 << 20


def _number(buf: bytes, pos: int) -> tuple[int, int]:
    """7z's variable-length NUMBER."""
    first = buf[pos]
    pos += 1
    mask = 0x80
    value = 0
    for i in range(8):
        if not first & mask:
            return value | ((first & (mask - 1)) << (8 * i)), pos
        value |= buf[pos] << (8 * i)
        pos += 1
        mask >>= 1
    return value, pos


def sevenzip_encrypted(data: bytes) -> bool:
    try:
        offset, size = struct.unpack_from("<QQ", data, 12)
        start = 32 + offset
        header = data[start : start + min(size, _HEADER_CAP)]
        if not header:
            return False
        if header[0] == 0x01:  # plain Header
            return _AES in header
        if header[0] == 0x17:  # EncodedHeader: its own coder says how it is stored
            if _AES in header:
                return True  # the header itself is encrypted
            decoded = _decode_header(data, header)
            return decoded is not None and _AES in decoded
    except (struct.error, IndexError, lzma.LZMAError, ValueError):
        return False
    return False


def _decode_header(data: bytes, enc: bytes) -> bytes | None:
    """Decode an LZMA/LZMA2-packed 7z header (one folder, one coder: what 7-Zip writes)."""
    pos = 1
    if enc[pos] != 0x06:  # PackInfo
        return None
    pack_pos, pos = _number(enc, pos + 1)
    n_streams, pos = _number(enc, pos)
    if n_streams != 1 or enc[pos] != 0x09:
        return None
    pack_size, pos = _number(enc, pos + 1)
    while enc[pos] != 0x00:  # optional CRC digests
        pos += 1
    pos += 1
    if enc[pos : pos + 2] != b"\x07\x0b":  # UnPackInfo, Folder
        return None
    n_folders, pos = _number(enc, pos + 2)
    if n_folders != 1 or enc[pos] != 0:
        return None
    n_coders, pos = _number(enc, pos + 1)
    if n_coders != 1:
        return None
    flags = enc[pos]
    id_size = flags & 0x0F
    coder_id = enc[pos + 1 : pos + 1 + id_size]
    pos += 1 + id_size
    if flags & 0x10:
        return None  # complex coder: not how a header is packed
    props = b""
    if flags & 0x20:
        n, pos = _number(enc, pos)
        props = enc[pos : pos + n]
        pos += n
    if enc[pos] != 0x0C:
        return None
    unpack_size, pos = _number(enc, pos + 1)
    packed = data[32 + pack_pos : 32 + pack_pos + pack_size]
    if coder_id == b"\x03\x01\x01" and len(props) == 5:
        lc_lp_pb = props[0]
        filt = {
            "id": lzma.FILTER_LZMA1,
            # the header is capped at 16 MB, so no distance can exceed 64 MB: a hostile
            # 4 GB dictionary is not allocated
            "dict_size": min(struct.unpack_from("<I", props, 1)[0], 1 << 26),
            "lc": lc_lp_pb % 9,
            "lp": (lc_lp_pb // 9) % 5,
            "pb": lc_lp_pb // 45,
        }
    elif coder_id == b"\x21" and len(props) == 1:
        bits = props[0]
        dict_size = 0xFFFFFFFF if bits >= 40 else (2 | (bits & 1)) << (bits // 2 + 11)
        filt = {"id": lzma.FILTER_LZMA2, "dict_size": min(dict_size, 1 << 26)}
    else:
        return None
    dec = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=[filt])
    return dec.decompress(packed, min(unpack_size, _HEADER_CAP))


# --- RAR --------------------------------------------------------------------------------------


def _vint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("vint too long")


def rar_encrypted(data: bytes) -> bool:
    try:
        if data.startswith(b"Rar!\x1a\x07\x01\x00"):
            return _rar5(data)
        if data.startswith(b"Rar!\x1a\x07\x00"):
            return _rar4(data)
    except (struct.error, IndexError, ValueError):
        return False
    return False


def _rar5(data: bytes) -> bool:
    pos = 8
    for _ in range(10_000):
        if pos + 7 > len(data):
            return False
        size, p = _vint(data, pos + 4)  # after the CRC32
        body = p
        htype, p = _vint(data, p)
        if htype == 4:  # archive encryption header: everything is encrypted
            return True
        hflags, p = _vint(data, p)
        extra_size = data_size = 0
        if hflags & 0x01:
            extra_size, p = _vint(data, p)
        if hflags & 0x02:
            data_size, p = _vint(data, p)
        end = body + size
        if htype in (2, 3) and extra_size:  # file / service header with extra records
            q = end - extra_size
            while q < end:
                rec_size, r = _vint(data, q)
                rec_type, _ = _vint(data, r)
                if rec_type == 0x01:  # file encryption record
                    return True
                q = r + rec_size
        if htype == 5:  # end of archive
            return False
        pos = end + data_size
    return False


def _rar4(data: bytes) -> bool:
    pos = 7
    for _ in range(10_000):
        if pos + 7 > len(data):
            return False
        _crc, htype, flags, size = struct.unpack_from("<HBHH", data, pos)
        if htype == 0x73 and flags & 0x0080:  # main header: headers encrypted
            return True
        add = 0
        if htype == 0x74:  # file header
            if flags & 0x0004:
                return True
            add = struct.unpack_from("<I", data, pos + 7)[0]
        elif flags & 0x8000:
            add = struct.unpack_from("<I", data, pos + 7)[0]
        if htype == 0x7B or size < 7:
            return False
        pos += size + add
    return False
