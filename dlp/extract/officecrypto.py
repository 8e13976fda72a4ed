"""Password-protected Office files (msoffcrypto-tool).

Detection only, plus one decryption attempt with "VelvetSweatshop": Excel
encrypts a workbook that is merely *write*-protected (読み取り専用を推奨 /
保護) with that published default key and opens it without asking, so such a
file is readable by anyone and must be scanned, not waved through as
``encrypted``.  No other password is ever tried.
"""

from __future__ import annotations

import io
import re

DEFAULT_PASSWORD = "VelvetSweatshop"


def is_encrypted_ole(data: bytes) -> bool:
    """True for an OLE2 Office file (doc/xls/ppt or encrypted OOXML) that needs a password."""
    try:
        import msoffcrypto

        return bool(msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted())
    except Exception:
        return False


MAX_SPIN_COUNT = 100_000
"""Office writes agile encryption with 100,000 hash rounds.  A file asking for more
(msoffcrypto accepts up to 10,000,000: 26 s of SHA-512 for a 6 KB file, a review of
3 Dec 2026) was not made by Office for the default key: it is reported encrypted
without deriving any key."""
_SPIN_COUNT = re.compile(rb"spinCount\s*=\s*[\"']\s*(\d{1,12})")


def decrypt_default(data: bytes) -> bytes | None:
    """Decrypt with Excel's default key; None when a real password is needed."""
    if any(int(m.group(1)) > MAX_SPIN_COUNT for m in _SPIN_COUNT.finditer(data[: 1 << 20])):
        return None
    try:
        import msoffcrypto

        office = msoffcrypto.OfficeFile(io.BytesIO(data))
        office.load_key(password=DEFAULT_PASSWORD, verify_password=True)
        out = io.BytesIO()
        office.decrypt(out)
        return out.getvalue()
    except Exception:
        pass
    # msoffcrypto's verifier rejects some agile files that the key does open
    # (corpus poifs__protected_agile.docx); for an OOXML package the result is
    # self-checking: a wrong key never yields a ZIP whose CRCs all match.
    try:
        import zipfile

        import msoffcrypto

        office = msoffcrypto.OfficeFile(io.BytesIO(data))
        if getattr(office, "format", "") != "ooxml":
            return None
        office.load_key(password=DEFAULT_PASSWORD)
        out = io.BytesIO()
        office.decrypt(out)
        plain = out.getvalue()
        with zipfile.ZipFile(io.BytesIO(plain)) as zf:
            if zf.testzip() is not None:
                return None
        return plain
    except Exception:
        return None
