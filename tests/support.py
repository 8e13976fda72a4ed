"""Helpers every test family uses: valid My Numbers and free loopback ports.

Importable as ``support`` from any test (``tests/`` is on ``sys.path`` through its
``conftest.py``; ``bench/soak.py`` adds it itself).

``my_number`` computes the check digit here, from the formula of 総務省令第85号 第5条,
not with ``dlp.detect.mynumber.check_digit``: a test that made its numbers with the code
under test could not notice that code computing the digit wrongly.
"""

from __future__ import annotations

import socket
import uuid

_WEIGHTS = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
"""Q_n for the digits P_11 ... P_1 read left to right (n + 1 for n <= 6, n - 5 above)."""


def my_number(body11: str) -> str:
    """The twelve-digit My Number with this 11-digit body and its valid check digit."""
    if len(body11) != 11 or not body11.isdigit():
        raise ValueError(f"a My Number body is 11 digits, got {body11!r}")
    r = sum(int(d) * w for d, w in zip(body11, _WEIGHTS, strict=True)) % 11
    return body11 + str(0 if r <= 1 else 11 - r)


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports nobody listens on right now (all bound at once, so
    the kernel cannot hand out one port twice)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """One loopback port nobody listens on right now."""
    return free_ports(1)[0]


_HEX_TO_LETTERS = str.maketrans("0123456789abcdef", "ghijklmnopqrstuv")


def digitless_token(length: int = 32) -> str:
    """A random token of letters only (up to 32).  Tests mark their mail with one
    to find it again; a hex token can hold a run of digits, which the gateway
    stars out wherever it quotes the mail (notices, logs, the hold queue's
    metadata), and the mark would then not be found."""
    return uuid.uuid4().hex[:length].translate(_HEX_TO_LETTERS)
