#!/usr/bin/env python3
"""CPU of one ``scan_message`` on 2 MB messages of several shapes, and of its MIME step.

    .venv/bin/python bench/scan_2mb.py [--reps 15] [--label after]

Messages (generated here, deterministic):

* smtp-source: what bench/gateway.py sends (headers, then 79-character
  ``1XXX…`` lines, no MIME);
* ISO-2022-JP body: a 2 MB Japanese letter as Japanese clients send it (7bit);
* body + CSV: a UTF-8 Japanese body (base64) and a 1.4 MB CP932 customer
  list attached as base64;
* body + binary: the same body and a 1.5 MB opaque attachment (base64), so
  the MIME work is most of the cost;
* body + xlsx: the same body and an openpyxl workbook (base64).

Per message: median CPU ms of ``scan_message`` and of ``dlp.mime.parse_message``
over --reps runs (process time, one core).  To measure another tree (e.g. the
code before a change), put it first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time
from collections.abc import Callable
from email.message import EmailMessage

import dlp
from dlp.config import ScanSettings
from dlp.mime import parse_message
from dlp.scanner import scan_message

SIZE = 2 * 1024 * 1024


def smtp_source() -> bytes:
    head = (
        b"From: <from@example.lg.jp>\r\nTo: <to@kaisha-abc.jp>\r\n"
        b"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-Id: <1@example.lg.jp>\r\n\r\n"
    )
    line = b"1" + b"X" * 78 + b"\r\n"
    return head + (line * (SIZE // len(line) + 1))[:SIZE]


_LETTER = "お世話になっております。総務課の山田です。先日の件につきまして、資料を送付いたします。\n"


def iso2022jp() -> bytes:
    body = (_LETTER * (SIZE // 90)).encode("iso-2022-jp").replace(b"\n", b"\r\n")[:SIZE]
    body = body[: body.rfind(b"\r\n") + 2]
    head = (
        "From: yamada@example.lg.jp\r\nTo: sato@kaisha-abc.jp\r\n"
        "Subject: =?ISO-2022-JP?B?GyRCO3FOQRsoQg==?=\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
    ).encode("ascii")
    return head + body


def _with(data: bytes, maintype: str, subtype: str, filename: str) -> bytes:
    m = EmailMessage()
    m["From"] = "yamada@example.lg.jp"
    m["To"] = "sato@kaisha-abc.jp"
    m["Subject"] = "資料の送付"
    m.set_content(_LETTER * 20)
    m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return m.as_bytes()


def csv() -> bytes:
    rnd = random.Random(1)
    rows = ["氏名,住所,電話,金額"] + [
        f"山田太郎{i},東京都千代田区{i}丁目,03-{rnd.randint(1000, 9999)}-"
        f"{rnd.randint(1000, 9999)},{rnd.randint(1, 10**6)}"
        for i in range(40000)
    ]
    data = "\n".join(rows).encode("cp932")[:1_400_000]
    return _with(data[: data.rfind(b"\n") + 1], "text", "csv", "顧客一覧.csv")


def binary() -> bytes:
    data = random.Random(2).randbytes(1_500_000)
    return _with(data, "application", "octet-stream", "archive.bin")


def xlsx() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    rnd = random.Random(3)
    ws.append(["氏名", "住所", "電話", "金額"])
    for i in range(30000):
        ws.append([f"山田{i}", f"東京都千代田区{i}丁目", f"03-{rnd.randint(1000, 9999)}", i * 7])
    out = io.BytesIO()
    wb.save(out)
    sheet = "vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return _with(out.getvalue(), "application", sheet, "名簿.xlsx")


def cpu_ms(fn: Callable[[], object], reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t = time.process_time()
        fn()
        times.append((time.process_time() - t) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    settings = ScanSettings()
    print(f"code: {dlp.__file__} {args.label}")
    print("| message | bytes | scan_message CPU ms | parse_message CPU ms |")
    print("|---|---|---|---|")
    for name, make in (
        ("smtp-source (gateway bench)", smtp_source),
        ("ISO-2022-JP body", iso2022jp),
        ("body + CSV (base64)", csv),
        ("body + binary (base64)", binary),
        ("body + xlsx (base64)", xlsx),
    ):
        raw = make()
        scan = cpu_ms(lambda raw=raw: scan_message(raw, settings), args.reps)
        parse = cpu_ms(lambda raw=raw: parse_message(raw), args.reps)
        print(f"| {name} | {len(raw):,} | {scan:.1f} | {parse:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
