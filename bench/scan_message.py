#!/usr/bin/env python3
"""CPU per ``scan_message`` (and policy) per message type: this tree against a baseline, same run.

    PYTHONPATH=$PWD .venv/bin/python bench/scan_message.py --baseline /tmp/base-<sha> \\
        [--rounds 5] [--reps 40] [--only 20k] [--policy]

Runs one child process per tree and round, alternating (baseline, this tree,
baseline, …), so both see the same machine load; each child imports ``dlp``
from its tree (PYTHONPATH) and generates the same messages (fixed seeds,
nothing downloaded).  Per message type and tree: the median CPU of one call
over --reps calls, then the best (lowest) median over the rounds.  CPU is the
process's own (``time.process_time``) plus that of reaped children (the PDF and
OCR sandbox forks, ``getrusage(RUSAGE_CHILDREN)``); wall is ``perf_counter``.

Messages:

* ``gw-20k`` / ``gw-2m``: what bench/gateway.py sends (``smtp-source -l``: four
  headers, then 79-character lines ``1XXX…``, ``2XXX…`` — a digit a line);
* ``jis-20k``: a Japanese letter in ISO-2022-JP, 7bit (a few dates and phones);
* ``utf8-20k``: the same letter in UTF-8, base64, with an HTML alternative;
* ``rich-20k``: digit-rich business mail (order numbers, phones, My Numbers),
  UTF-8 base64 (bench/scan_throughput.py's generator);
* ``csv-20k``: a short body and an 8 KB CP932 CSV attachment;
* ``letter-csv-20k``: a 10 KB letter (base64 UTF-8) and a 5 KB CP932 CSV;
* ``pdf-20k``: a short body and a one-page PDF (reportlab);
* ``csv-2m``, ``bin-2m``, ``xlsx-2m``, ``zip-2m``: a body and a big base64
  attachment (1.4 MB CSV, 1.5 MB random bytes, an openpyxl workbook, a zip of CSVs).

``--policy`` also times ``dlp.policy`` on the report (``policy_ms``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

HERE = Path(__file__).resolve().parent

_LETTER = (
    "お世話になっております。総務課の山田です。先日の件につきまして、資料を送付いたします。\n"
    "会議は2026年12月3日（木）14時から、第二会議室で行います。ご不明な点は03-1234-5678まで。\n"
    "何卒よろしくお願い申し上げます。\n"
)


def _head(extra: str = "") -> str:
    return (
        "From: =?UTF-8?B?5bGx55Sw?= <yamada@example.lg.jp>\r\nTo: sato@kaisha-abc.jp\r\n"
        "Subject: =?ISO-2022-JP?B?GyRCO3FOQRsoQg==?=\r\nDate: Wed, 2 Dec 2026 10:00:00 +0900\r\n"
        "Message-ID: <20261202100000.12345@example.lg.jp>\r\nMIME-Version: 1.0\r\n" + extra
    )


def smtp_source(size: int) -> bytes:
    head = (
        b"From: <from@example.lg.jp>\r\nTo: <to@kaisha-abc.jp>\r\n"
        b"Date: Wed,  2 Dec 2026 15:24:35 +0000 (UTC)\r\nMessage-Id: <1f18.0003.0000@vm>\r\n\r\n"
    )
    lines = b"".join(b"%dX" % (i % 10) + b"X" * 77 + b"\r\n" for i in range(1, 11))
    return head + (lines * (size // len(lines) + 1))[:size]


def jis(size: int) -> bytes:
    body = (_LETTER * (size // 250 + 1)).encode("iso-2022-jp").replace(b"\n", b"\r\n")[:size]
    body = body[: body.rfind(b"\r\n") + 2]
    head = _head(
        "Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
    )
    return head.encode("ascii") + body


def _letter_mail(text: str, html: bool = False) -> EmailMessage:
    m = EmailMessage()
    m["From"] = "山田 <yamada@example.lg.jp>"
    m["To"] = "sato@kaisha-abc.jp"
    m["Subject"] = "資料の送付"
    m["Message-ID"] = "<20261202100000.12345@example.lg.jp>"
    m.set_content(text, cte="base64")
    if html:
        html = "<html><body><p>" + text.replace("\n", "<br>\n") + "</p></body></html>"
        m.add_alternative(html, subtype="html", cte="base64")
    return m


def utf8(size: int) -> bytes:
    return _letter_mail(_LETTER * (size // 700 + 1), html=True).as_bytes()


def rich(size: int) -> bytes:
    sys.path.insert(0, str(HERE))
    from scan_throughput import digit_rich  # type: ignore[import-not-found]

    return _letter_mail(digit_rich(random.Random(7), size * 3 // 4)).as_bytes()


def _attached(data: bytes, maintype: str, subtype: str, filename: str) -> bytes:
    m = _letter_mail(_LETTER * 4)
    m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return m.as_bytes()


def _csv_rows(n: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    rows = ["氏名,住所,電話,金額"] + [
        f"山田太郎{i},東京都千代田区{i}丁目,03-{rnd.randint(1000, 9999)}-"
        f"{rnd.randint(1000, 9999)},{rnd.randint(1, 10**6)}"
        for i in range(n)
    ]
    return "\r\n".join(rows).encode("cp932")


def csv_small() -> bytes:
    return _attached(_csv_rows(150, 1), "text", "csv", "見積.csv")


def letter_and_csv() -> bytes:
    m = _letter_mail(_LETTER * 40)
    m.add_attachment(_csv_rows(100, 4), maintype="text", subtype="csv", filename="一覧.csv")
    return m.as_bytes()


def pdf_small() -> bytes:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    out = io.BytesIO()
    c = canvas.Canvas(out, invariant=1)
    c.setFont("HeiseiKakuGo-W5", 10)
    for i, line in enumerate((_LETTER * 8).splitlines()):
        c.drawString(40, 800 - 14 * i, line)
    c.showPage()
    c.save()
    return _attached(out.getvalue(), "application", "pdf", "資料.pdf")


def csv_big() -> bytes:
    data = _csv_rows(40000, 1)[:1_400_000]
    return _attached(data[: data.rfind(b"\n") + 1], "text", "csv", "顧客一覧.csv")


def bin_big() -> bytes:
    return _attached(random.Random(2).randbytes(1_500_000), "application", "octet-stream", "a.bin")


def xlsx_big() -> bytes:
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
    return _attached(out.getvalue(), "application", sheet, "名簿.xlsx")


def zip_big() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(5):
            z.writestr(f"list{i}.csv", _csv_rows(12000, 10 + i))
    return _attached(out.getvalue(), "application", "zip", "一覧.zip")


MESSAGES: dict[str, Callable[[], bytes]] = {
    "gw-20k": lambda: smtp_source(20480),
    "jis-20k": lambda: jis(20480),
    "utf8-20k": lambda: utf8(20480),
    "rich-20k": lambda: rich(20480),
    "csv-20k": csv_small,
    "letter-csv-20k": letter_and_csv,
    "pdf-20k": pdf_small,
    "gw-2m": lambda: smtp_source(2 * 1024 * 1024),
    "csv-2m": csv_big,
    "bin-2m": bin_big,
    "xlsx-2m": xlsx_big,
    "zip-2m": zip_big,
}


def _children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def worker(names: list[str], reps: int, with_policy: bool) -> None:
    """One tree, one round: a JSON line per message type on stdout."""
    from dlp.config import ScanSettings
    from dlp.scanner import scan_message

    settings = ScanSettings()
    decide = _policy() if with_policy else None
    for name in names:
        raw = MESSAGES[name]()
        n = reps if len(raw) < 100_000 else max(3, reps // 10)
        for _ in range(3):
            scan_message(raw, settings)
        cpu, wall, pol = [], [], []
        for _ in range(n):
            c0, k0, w0 = time.process_time(), _children(), time.perf_counter()
            report = scan_message(raw, settings)
            w1, c1, k1 = time.perf_counter(), time.process_time(), _children()
            cpu.append((c1 - c0 + k1 - k0) * 1000)
            wall.append((w1 - w0) * 1000)
            if decide is not None:
                p0 = time.process_time()
                decide(report)
                pol.append((time.process_time() - p0) * 1000)
        row = {
            "name": name,
            "bytes": len(raw),
            "cpu": statistics.median(cpu),
            "wall": statistics.median(wall),
            "policy": statistics.median(pol) if pol else None,
            "findings": len(report.findings),
            "attachments": [a.status.value for a in report.attachments],
        }
        print(json.dumps(row), flush=True)


def _policy() -> Callable[[object], object]:
    """The gateway's decision on the report, as dlp.smtp.gateway calls it."""
    from dlp.config import PolicySettings
    from dlp.model import Recipient, RecipientClass, ScanReport
    from dlp.policy import decide

    settings = PolicySettings()
    recipients = (Recipient("sato@kaisha-abc.jp", "kaisha-abc.jp", RecipientClass.EXTERNAL),)

    def run(report: object) -> object:
        assert isinstance(report, ScanReport)
        return decide(report, recipients, "yamada@example.lg.jp", settings)

    return run


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", help="another checkout to compare with (its root)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--only", default="", help="substring of the message names to run")
    ap.add_argument("--policy", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    names = [n for n in MESSAGES if args.only in n]
    if args.worker:
        worker(names, args.reps, args.policy)
        return 0
    trees = {"this": str(HERE.parent)}
    if args.baseline:
        trees = {"base": str(Path(args.baseline).resolve()), **trees}
    best: dict[tuple[str, str], dict[str, object]] = {}
    for _ in range(args.rounds):
        for label, root in trees.items():
            cmd = [
                sys.executable,
                str(HERE / "scan_message.py"),
                "--worker",
                "--reps",
                str(args.reps),
            ]
            cmd += ["--only", args.only] + (["--policy"] if args.policy else [])
            env = {**os.environ, "PYTHONPATH": root}
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            for line in out.splitlines():
                row = json.loads(line)
                key = (label, row["name"])
                if key not in best or row["cpu"] < best[key]["cpu"]:  # type: ignore[operator]
                    best[key] = row
    print(
        f"load average {os.getloadavg()[0]:.1f}; trees: "
        + ", ".join(f"{k}={v}" for k, v in trees.items())
    )
    labels = list(trees)
    head = " | ".join(f"{k} CPU ms | {k} wall ms" for k in labels)
    print(f"| message | bytes | {head} |" + (" this/base |" if len(labels) == 2 else ""))
    print("|---|---|" + "---|---|" * len(labels) + ("---|" if len(labels) == 2 else ""))
    for name in names:
        rows = [best[(k, name)] for k in labels]
        cells = " | ".join(f"{r['cpu']:.3f} | {r['wall']:.3f}" for r in rows)
        ratio = f" {rows[1]['cpu'] / rows[0]['cpu']:.2f} |" if len(rows) == 2 else ""  # type: ignore[operator]
        print(f"| {name} | {rows[0]['bytes']:,} | {cells} |{ratio}")
        if args.policy:
            print("|  policy |  | " + " | ".join(f"{r['policy']:.3f} | " for r in rows) + " |")
        for r in rows[1:]:
            if (r["findings"], r["attachments"]) != (rows[0]["findings"], rows[0]["attachments"]):
                print(
                    f"|  ⚠ {name}: results differ: {rows[0]['findings']} {rows[0]['attachments']} vs {r['findings']} {r['attachments']} |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
