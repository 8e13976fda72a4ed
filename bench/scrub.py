"""Cost of ``scrub`` and ``redact`` per call on the strings they meet in practice.

Both run on every subject, address, file name, Message-ID, reply and log field, and on
every value the console renders, so they must stay in the microseconds.

    .venv/bin/python bench/scrub.py                          # this checkout
    .venv/bin/python bench/scrub.py --baseline /path/to/old  # and an older checkout, same run

``--baseline`` runs the same measurement in a child process importing ``dlp`` from the
given directory (e.g. ``git worktree add /tmp/before main``), so both columns come from
one run on the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import timeit

N = "621498320257"  # checksum-valid

CASES: list[tuple[str, str]] = [
    ("ASCII subject, no digits", "Re: Quarterly report for the sales team (final)"),
    ("Japanese subject, no digits", "【至急】来週の会議資料について（営業部 山田）"),
    ("Japanese subject, date", "2026年11月26日 定例会議 議事録 No.12 2026-11-26"),
    ("Message-ID", "<20261126101010.4F2A1@mail.example.lg.jp>"),
    ("file name", "源泉徴収票_2026-11-26_山田太郎.pdf"),
    ("address", "yamada.taro@example.co.jp"),
    ("next-hop reply", "250 2.0.0 Ok: queued as 4dKq2X1z3Jz9"),
    ("subject, number 4-4-4", f"個人番号 {N[:4]}-{N[4:8]}-{N[8:]} の件"),
    ("subject, one digit per cell (tabs)", "個人番号\t" + "\t".join(N) + "\tの件"),
    ("subject, full-width + ZWSP", "番号 " + "\u200b".join("６２１４９８３２０２５７")),
    (
        "10 KB digit-rich CSV",
        "".join(
            f"{i:05d},2026-11-{i % 28 + 1:02d},03-{i % 9000 + 1000}-{i * 7 % 9000 + 1000},{i * 7919 % 10**12:012d}\n"
            for i in range(250)
        ),
    ),
]


def measure(repeat: int) -> dict[str, dict[str, float]]:
    from dlp.detect.mynumber import redact, scrub

    out: dict[str, dict[str, float]] = {}
    for name, text in CASES:
        row = {}
        for fname, fn in (("scrub", scrub), ("redact", redact)):
            t = timeit.Timer(lambda fn=fn, text=text: fn(text))
            n, _ = t.autorange()
            best = min(t.repeat(repeat, n)) / n
            row[fname] = best * 1e6
        out[name] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--baseline", help="directory of an older checkout to compare with")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.repeat)))
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    columns = {"this": _run(here, args.repeat)}
    if args.baseline:
        columns = {"baseline": _run(args.baseline, args.repeat), **columns}
    load = os.getloadavg()[0]
    print(f"scrub/redact, best of {args.repeat}, µs per call (load average {load:.1f})\n")
    head = "| input | chars |" + "".join(f" {c} scrub | {c} redact |" for c in columns)
    print(head)
    print("|" + "---|" * (2 + 2 * len(columns)))
    for name, text in CASES:
        cells = "".join(
            f" {columns[c][name]['scrub']:.2f} | {columns[c][name]['redact']:.2f} |"
            for c in columns
        )
        print(f"| {name} | {len(text)} |{cells}")


def _run(root: str, repeat: int) -> dict[str, dict[str, float]]:
    env = dict(os.environ, PYTHONPATH=root)
    res = subprocess.run(
        [sys.executable, __file__, "--child", "--repeat", str(repeat)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, dict[str, float]] = json.loads(res.stdout)
    return data


if __name__ == "__main__":
    main()
