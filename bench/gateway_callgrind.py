#!/usr/bin/env python3
"""Instructions a serving process spends per message (callgrind), for trees side by side.

    .venv/bin/python bench/gateway_callgrind.py [--size 20480] [--few 50] [--many 150]
        [--gateway LABEL=TREE[@key=value,...]]...

Wall-clock and CPU-time figures on this shared 2-core machine move by 2x with
what else runs (bench/RESULTS-gateway.md).  An instruction count does not: one
serving process (``dlp.smtp.app.serve_process``, in the foreground, on the
shipped configuration) runs under ``valgrind --tool=callgrind`` with
``smtp-sink`` as its next hop, ``smtp-source`` sends FEW and then, in a second
run, MANY messages (after 20 to warm up, concurrency 4), and the difference of
the two totals over MANY - FEW is the user-space instructions per message: the
serving process's own work, start-up excluded.  The kernel's share (the
system calls, about a third of the CPU at 20 KB) is not in it, and scan
workers are not either (a small plain message is scanned in the serving
process).  About a minute per gateway.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from gateway import (
    RECIPIENT,
    ROOT,
    SENDER,
    SMTP_SINK,
    SMTP_SOURCE,
    free_port,
    parse_gateway,
    wait_port,
    write_config,
)


def instructions(tree: Path, extra: list[str], size: int, count: int, work: Path) -> int:
    """Total instructions of one serving process that was sent ``count`` messages."""
    shutil.rmtree(work, ignore_errors=True)
    sink_port, port = free_port(), free_port()
    sink = subprocess.Popen(
        [SMTP_SINK, "-u", "nobody", f"127.0.0.1:{sink_port}", "1024"], start_new_session=True
    )
    try:
        wait_port(sink_port)
        cfg = write_config(work, tree, port, sink_port, extra)
        out = work / "callgrind.out"
        code = (
            "import pathlib; from dlp.config import load_file; "
            "from dlp.smtp.app import serve_process; "
            f"serve_process(load_file(pathlib.Path({str(cfg)!r})), 0)"
        )
        proc = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                code,
            ],
            cwd=work,
            env={**os.environ, "PYTHONPATH": str(tree)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(port, timeout=300)
        for n, conc in ((20, 1), (count, 4)):
            subprocess.run(
                [
                    SMTP_SOURCE,
                    *("-l", str(size), "-m", str(n), "-s", str(conc)),
                    *("-f", SENDER, "-t", RECIPIENT, f"127.0.0.1:{port}"),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        proc.send_signal(signal.SIGTERM)
        proc.wait(300)
        found = re.search(r"^(?:summary|totals):\s*(\d+)", out.read_text(errors="replace"), re.M)
        if found is None:
            raise SystemExit(f"no instruction total in {out}")
        return int(found.group(1))
    finally:
        os.killpg(sink.pid, signal.SIGKILL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=20480)
    ap.add_argument("--few", type=int, default=50)
    ap.add_argument("--many", type=int, default=150)
    ap.add_argument("--gateway", action="append", metavar="LABEL=TREE[@key=value,...]")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind not found: apt-get install valgrind", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="dlp-callgrind-"))
    print(
        f"| gateway | M instructions per {args.size}-byte message (serving process, user space) |"
    )
    print("|---|---|")
    try:
        for label, tree, extra in (parse_gateway(g) for g in args.gateway or [f"this={ROOT}"]):
            few = instructions(tree, extra, args.size, args.few, work)
            many = instructions(tree, extra, args.size, args.many, work)
            print(f"| {label} | {(many - few) / (args.many - args.few) / 1e6:.3f} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
