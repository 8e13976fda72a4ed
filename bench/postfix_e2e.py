#!/usr/bin/env python3
"""What the gateway costs a Postfix relay: end-to-end throughput through a real Postfix.

    .venv/bin/python bench/postfix_e2e.py [--count 300] [--size 20000] [--conc 10]

Builds the private Postfix instance of the e2e tests (tests/e2e/, configuration from
deploy/postfix/after-queue) with an in-process SMTP sink as its relayhost, and for the
same load (`smtp-source -s CONC -m COUNT -l SIZE`, a new connection per message) measures
the wall time from the first submission until the sink holds every message, in one run:

* postfix only        submitted to the re-injection smtpd (no content filter)
* + pass-through      content_filter to a minimal Python filter (tests/e2e/e2e_passthrough.py)
* + dlp serve         content_filter to the gateway (shipped config/dlp.toml, scanning on)

Needs root and Postfix (`apt-get install postfix`).  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from e2e_gateway import SENDER, Gateway  # noqa: E402
from e2e_postfix import (  # noqa: E402
    PostfixInstance,
    PostfixPorts,
    free_ports,
    keep_logs,
    why_unavailable,
)
from e2e_process import ServiceProcess  # noqa: E402
from e2e_sink import Sink  # noqa: E402

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
RECIPIENT = "bob@torihikisaki.co.jp"


def run_load(port: int, sink: Sink, count: int, size: int, conc: int, timeout: float) -> float:
    """Seconds from the first submission until ``count`` more messages reached the sink."""
    before = len(sink.deliveries())
    start = time.monotonic()
    subprocess.run(
        [
            SMTP_SOURCE,
            "-s",
            str(conc),
            "-m",
            str(count),
            "-l",
            str(size),
            "-f",
            SENDER,
            "-t",
            RECIPIENT,
            f"127.0.0.1:{port}",
        ],
        check=True,
        timeout=timeout,
        capture_output=True,
    )
    while len(sink.deliveries()) - before < count:
        if time.monotonic() - start > timeout:
            raise SystemExit(
                f"only {len(sink.deliveries()) - before}/{count} delivered in {timeout:.0f}s"
            )
        time.sleep(0.02)
    return time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--size", type=int, default=20_000)
    ap.add_argument("--conc", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    reason = why_unavailable()
    if reason:
        raise SystemExit(reason)

    root = Path(tempfile.mkdtemp(prefix="dlp-bench-postfix-"))
    submit, before_queue, reinject, gateway_port, sink_port = free_ports(5)
    ports = PostfixPorts(submit, before_queue, reinject, gateway_port, sink_port)
    sink = Sink(sink_port)
    postfix = PostfixInstance(root, ports)
    rows: list[tuple[str, float, int]] = []

    def measure(name: str, port: int) -> None:
        run_load(port, sink, 5, args.size, 1, args.timeout)  # warm-up, not measured
        deferred = postfix.log().count("status=deferred")
        secs = run_load(port, sink, args.count, args.size, args.conc, args.timeout)
        rows.append((name, secs, postfix.log().count("status=deferred") - deferred))

    try:
        sink.start()
        postfix.start()
        measure("postfix only", ports.reinject)

        passthrough = ServiceProcess(
            [
                sys.executable,
                str(ROOT / "tests" / "e2e" / "e2e_passthrough.py"),
                str(gateway_port),
                str(reinject),
            ],
            gateway_port,
            root / "passthrough.log",
            cwd=root,
        )
        passthrough.start()
        try:
            measure("+ pass-through filter", ports.submit)
        finally:
            passthrough.stop()

        gw_root = root / "gw"
        gw_root.mkdir()
        gateway = Gateway(gw_root, ports)
        gateway.process.start(timeout=120)
        try:
            measure("+ dlp serve", ports.submit)
        finally:
            gateway.process.stop()
    finally:
        postfix.stop()
        sink.stop()
        keep_logs(root, prefix="bench-")  # test-output/e2e/bench-*
        shutil.rmtree(root, ignore_errors=True)

    base = rows[0][1]
    print(
        f"{args.count} messages of {args.size} bytes, smtp-source concurrency {args.conc}, "
        f"{os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    print("| path | seconds | msg/s | time vs postfix only | deferrals |")
    print("|---|---|---|---|---|")
    for name, secs, deferred in rows:
        print(
            f"| {name} | {secs:.2f} | {args.count / secs:.1f} | {secs / base:.2f}x | {deferred} |"
        )


if __name__ == "__main__":
    main()
