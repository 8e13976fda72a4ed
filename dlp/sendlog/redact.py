"""Keep My Numbers out of everything the send log records, exports and shows.

The scanner never hands us a number, but a subject line, a file name, a comment or
the next hop's reply is text written by people, and people do write
``個人番号 1234-5678-9012 の件`` in a subject - or paste it from a spreadsheet one digit
per cell, with tabs between.  No number may reach the log (the filter keeps no My
Numbers), so
every free-text field passes through ``scrub`` before it is recorded (and so before
it is hashed into the chain), and again on the way out (exports, the console), which
also covers entries written by an older, weaker scrubber.

``scrub`` (``dlp.detect.mynumber``) masks every checksum-valid twelve-digit number in
any shape and any normalisation and leaves every other character as it is; the rule
is in docs/sendlog.md ("What is masked").  The mask is the same for every number, so
it is not a per-number token.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from dlp.detect.mynumber import SCRUB_MASK, is_valid, scrub

MASK = SCRUB_MASK

DIGEST_FIELDS = frozenset({"hash", "prev_hash", "sha256", "last_hash"})
"""Hex digests: not text a person wrote, and compared character by character."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


def is_digest(key: str, value: object) -> bool:
    """``value`` is a SHA-256 digest under a digest field, to be kept as it is: a decimal
    run inside one can pass the check digit (a purge entry's ``last_hash`` about one
    time in two hundred), and a masked digest no longer matches what it names."""
    return key in DIGEST_FIELDS and isinstance(value, str) and _HEX64.fullmatch(value) is not None


def check_digit_ok(digits: str) -> bool:
    """The 総務省令第85号 第5条 check digit (weights 6,5,4,3,2,7,6,5,4,3,2)."""
    return len(digits) == 12 and digits.isascii() and is_valid(digits)


def is_ip_address(value: object) -> bool:
    """An IP address literal (a client address): ``255.255.255.255`` has twelve digits."""
    if not isinstance(value, str):
        return False  # ip_address() also takes an int, and 123456789018 is an IPv6 address
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def scrub_tree(value: Any, keep: frozenset[str] = DIGEST_FIELDS) -> Any:
    """``value`` (JSON-like) with every string in it scrubbed, for output.

    A mapping's values under a key in ``keep`` stay as they are, and so does a value
    that is an IP address under a key naming a client address.  Anything that is not a
    JSON scalar, list or mapping becomes its scrubbed ``str``."""
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = str(k)
            if key in keep or (key in ("client", "client_address") and is_ip_address(v)):
                out[key] = v
            else:
                out[scrub(key)] = scrub_tree(v, keep)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub_tree(v, keep) for v in value]
    return scrub(str(value))


__all__ = [
    "DIGEST_FIELDS",
    "MASK",
    "check_digit_ok",
    "is_digest",
    "is_ip_address",
    "scrub",
    "scrub_tree",
]
