"""Every real third-party office, PDF, archive, .msg and TNEF file in ../shared/corpus extracts
without an exception and gets the status its SOURCES.md says it should."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from extract_support import budget, text_of

from dlp.extract import registry
from dlp.model import AttachmentStatus

pytestmark = pytest.mark.timeout(120)

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"

ENC = AttachmentStatus.ENCRYPTED
ERR = AttachmentStatus.ERROR
UNS = AttachmentStatus.UNSUPPORTED
OK = AttachmentStatus.SCANNED

# Passwords are noted in each folder's SOURCES.md; none is ever tried except Excel's
# published default "VelvetSweatshop" (poifs__protected_agile.docx is encrypted with it).
EXPECTED: dict[str, AttachmentStatus] = {
    "office-msoffcrypto/ecma376standard_password.docx": ENC,
    "office-msoffcrypto/example_password.docx": ENC,
    "office-msoffcrypto/example_password.xlsx": ENC,
    "office-msoffcrypto/rc4cryptoapi_password.doc": ENC,
    "office-msoffcrypto/rc4cryptoapi_password.ppt": ENC,
    "office-msoffcrypto/rc4cryptoapi_password.xls": ENC,
    "office-msoffcrypto/xor_password_123456789012345.xls": ENC,
    "office-msoffcrypto/plain.doc": OK,
    "office-msoffcrypto/plain.ppt": OK,
    "office-msoffcrypto/plain.xls": OK,
    "office-poi/document__bug53475-password-is-pass.docx": ENC,
    "office-poi/document__password_password_cryptoapi.doc": ENC,
    "office-poi/poifs__extenxls_pwd123.xlsx": ENC,
    "office-poi/poifs__protected_sha512.xlsx": ENC,
    "office-poi/poifs__protected_agile.docx": OK,
    "office-poi/slideshow__Password_Protected-hello.ppt": ENC,
    "office-poi/spreadsheet__password.xls": ENC,
    "office-poi/spreadsheet__protected_passtika.xlsb": ENC,
    "office-poi/spreadsheet__xor-encryption-abc.xls": ENC,
    "office-poi/document__truncated62886.docx": ERR,
    "office-poi/spreadsheet__clusterfuzz-testcase-minimized-XLSX2CSVFuzzer-5636439151607808.xlsx": ERR,
    "office-tika/testEXCEL_protected_passtika.xls": ENC,
    "office-tika/testEXCEL_protected_passtika.xlsx": ENC,
    "office-tika/testPPT_protected_passtika.ppt": ENC,
    "office-tika/testPPT_protected_passtika.pptx": ENC,
    "office-tika/testWORD_protected_passtika.doc": ENC,
    "office-tika/testWORD_protected_passtika.docx": ENC,
    "office-tika/testWORD_truncated.docx": ERR,
    "office-tika/testPDF_protected.pdf": OK,  # owner password only: readable by anyone
    "office-tika/testUnicodePassword.pdf": ENC,
    "pdf-pdfminer/encryption__aes-128-m.pdf": ENC,
    "pdf-pdfminer/encryption__aes-256-r6.pdf": ENC,
    "pdf-pdfminer/encryption__aes-256.pdf": ENC,
    "pdf-pdfminer/encryption__rc4-40.pdf": ENC,
    "pdf-pdfminer/zen_of_python_corrupted.pdf": OK,
    "pdf-pdfminer/simple3.pdf": OK,
    "zip-libarchive/test_read_format_7zip_encryption.7z": ENC,
    "zip-libarchive/test_read_format_cab_filename_cp932.cab": UNS,
    "zip-libarchive/test_read_format_lha_filename_cp932.lzh": UNS,
    "zip-libarchive/test_read_format_zip_ppmd8.zipx": UNS,
    "zip-libarchive/test_read_format_zip_encryption_data.zip": ENC,
    "zip-libarchive/test_read_format_zip_encryption_header.zip": ENC,
    "zip-libarchive/test_read_format_zip_encryption_partially.zip": ENC,
    "zip-libarchive/test_read_format_zip_traditional_encryption_data.zip": ENC,
    "zip-libarchive/test_read_format_zip_winzip_aes128.zip": ENC,
    "zip-libarchive/test_read_format_zip_winzip_aes256.zip": ENC,
    "zip-libarchive/test_read_format_zip_winzip_aes256_stored.zip": ENC,
    "zip-libarchive/test_read_format_zip_bz2_hang.zip": ERR,
    "zip-libarchive/test_read_format_zip_malformed1.zip": ERR,
    "zip-libarchive/test_read_format_zip_size_exceeds_declared_deflate.zip": ERR,
    "zip-libarchive/test_read_format_zip_sfx": OK,
    "zip-libarchive/test_read_format_zip_padded1.zip": OK,
    "zip-tika/testZipEncrypted.zip": ENC,
    "zip-tika/testZIP_corrupted_oom.zip": ERR,
    "zip-tika/droste.zip": OK,
    "email-tika/testWINMAIL.dat": OK,
}

# What a reader must get out of the Japanese files (common parsers lose these; see docs/attachments.md).
MUST_CONTAIN: dict[str, str] = {
    "office-tika/testWORD_phonetic.docx": "東京",  # python-docx: none of the ruby paragraph
    "office-tika/testWORD_phonetic.doc": "東京",  # ruby stored as an EQ field without result
    "office-tika/testEXCEL_phonetic.xlsx": "豊田",
    "office-poi/spreadsheet__12561-1.xls": "未着手",
    "office-poi/integration__stress019.docx": "の",
    "office-poi/slideshow__with_japanese.pptx": "ゾルゲと尾崎",
    "office-tika/testRTFJapanese.rtf": "ゾルゲ",
    "office-tika/testRTF-ms932.rtf": "こんにちは",
    "pdf-pdfminer/jo.pdf": "わたくしといふ現象は",  # pypdf: mojibake
    "pdf-pdfjs/noembed-sjis.pdf": "あいうえお",
    "pdf-pdfjs/vertical.pdf": "あいうえお",
    "email-tika/testMSG_chinese.msg": "中文測試",  # extract-msg: CP1252 mojibake
}


def _files() -> list[str]:
    if not CORPUS.is_dir():
        return []
    out: list[Path] = []
    for pattern in (
        "office-*/*",
        "pdf-*/*",
        "zip-*/*",
        "email-*/*.msg",
        "email-*/*.dat",
        "email-*/*.tnef",
    ):
        out.extend(p for p in CORPUS.glob(pattern) if p.is_file() and p.name != "SOURCES.md")
    return sorted(str(p.relative_to(CORPUS)) for p in out)


FILES = _files()


@pytest.mark.skipif(not FILES, reason="shared corpus not present")
def test_every_corpus_file_extracts_with_the_right_status() -> None:
    wrong: list[str] = []
    for rel in FILES:
        data = (CORPUS / rel).read_bytes()
        t0 = time.monotonic()
        ex = registry.extract(data, rel.rsplit("/", 1)[-1], f"attachment:{rel}", budget(timeout=10))
        took = time.monotonic() - t0
        assert took < 5, (rel, took)
        want = EXPECTED.get(rel)
        if want is not None and ex.status is not want:
            wrong.append(f"{rel}: {ex.status.value} ({ex.detail}), want {want.value}")
        elif want is None and ex.status not in (OK, AttachmentStatus.IMAGE):
            wrong.append(f"{rel}: unexpected {ex.status.value} ({ex.detail})")
        needle = MUST_CONTAIN.get(rel)
        if needle and needle not in text_of(ex):
            wrong.append(f"{rel}: text lacks {needle!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.skipif(not FILES, reason="shared corpus not present")
def test_expected_table_names_real_files() -> None:
    missing = [rel for rel in [*EXPECTED, *MUST_CONTAIN] if rel not in FILES]
    assert not missing


@pytest.mark.skipif(not FILES, reason="shared corpus not present")
def test_velvetsweatshop_document_is_decrypted_and_read() -> None:
    data = (CORPUS / "office-poi/poifs__protected_agile.docx").read_bytes()
    ex = registry.extract(data, "agile.docx", "attachment:agile.docx", budget())
    assert ex.members and ex.members[0].data.startswith(b"PK\x03\x04")
    inner = registry.extract(ex.members[0].data, "agile.docx", "attachment:x", budget())
    assert inner.kind == "docx" and "protected" in text_of(inner)


@pytest.mark.skipif(not FILES, reason="shared corpus not present")
def test_cp932_and_shift_jis_zip_names() -> None:
    for rel, names in (
        (
            "zip-libarchive/test_read_format_zip_filename_cp932.zip",
            ["表だよ/一覧表.txt", "表だよ/漢字.txt"],
        ),
        ("zip-tika/testZipEntryNameCharsetShiftSJIS.zip", ["文章1.txt", "文章2.txt"]),
    ):
        ex = registry.extract((CORPUS / rel).read_bytes(), "a.zip", "attachment:a.zip", budget())
        assert [m.name for m in ex.members] == names
