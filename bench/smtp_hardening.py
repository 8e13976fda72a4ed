"""Cost of the SMTP hardening checks of issue 11 on the serving event loop.

* ``routing_problem`` runs on every MAIL and RCPT address (NFKC, ACE decoding);
  compared with the address parse the gateway already does for every command.
* ``strip_fields`` runs on every relayed message (the X-DLP-* header removal);
  compared with ``dot_stuff``, the per-message step the relay already does.

    .venv/bin/python bench/smtp_hardening.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import base64
import os
import timeit

from dlp.smtp.addresses import has_source_route, routing_problem
from dlp.smtp.datareader import dot_stuff
from dlp.smtp.headers import ALWAYS, strip_fields
from dlp.smtp.server import _SIMPLE_ADDRESS

ADDRESSES = [
    ("ASCII", "tanaka.taro@kaisha-abc.co.jp"),
    ("UTF-8 local part and IDN", "山田太郎@例え.jp"),
    ("ACE domain", "user@xn--r8jz45g.jp"),
    ("percent hack (refused)", "user%evil.example@example.lg.jp"),
]


def _message(body_bytes: int, forged: bool) -> bytes:
    head = b"".join(
        b"Received: from mta%d.example.lg.jp by gw with ESMTP id X%d\r\n" % (i, i) for i in range(8)
    )
    head += (
        b"From: a@example.lg.jp\r\nTo: b@kaisha-abc.jp\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
    )
    if forged:
        head += b"X-DLP-Verdict: deliver; rule=forged\r\n"
    body = base64.encodebytes(os.urandom(body_bytes * 3 // 4)).replace(b"\n", b"\r\n")
    return head + b"\r\n" + body


def _best_us(stmt: object, repeat: int) -> float:
    timer = timeit.Timer(stmt)  # type: ignore[arg-type]
    n, _ = timer.autorange()
    return min(timer.repeat(repeat, n)) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()}")
    print("\n| address | routing_problem µs | + source-route parse µs | fast address regex µs |")
    print("|---|---|---|---|")
    for name, address in ADDRESSES:
        arg = f"<{address}>"
        check = _best_us(lambda a=address: routing_problem(a), args.repeat)
        route = _best_us(lambda a=arg: has_source_route(a), args.repeat)
        parse = _best_us(lambda a=arg: _SIMPLE_ADDRESS.match(a), args.repeat)
        print(
            f"| {name} | {check:.2f} | {route:.1f} (only when the argument has ':') | {parse:.2f} |"
        )
    print("\n| message | strip_fields µs | dot_stuff µs (already per message) |")
    print("|---|---|---|")
    for size in (20_000, 2_000_000):
        for forged in (False, True):
            m = _message(size, forged)
            strip = _best_us(lambda m=m: strip_fields(m, (ALWAYS,)), args.repeat)
            stuff = _best_us(lambda m=m: dot_stuff(m), args.repeat)
            label = f"{size // 1000} KB" + (", one forged X-DLP field" if forged else "")
            print(f"| {label} | {strip:.1f} | {stuff:.1f} |")


if __name__ == "__main__":
    main()
