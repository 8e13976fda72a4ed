#!/usr/bin/env python3
"""What receiving SMTP costs in Python at all: two do-nothing sinks under uvloop.

    .venv/bin/python bench/sink_floor.py [--messages 5000] [--size 20480]

``aiosmtpd`` is stock aiosmtpd's ``SMTP`` with a handler that answers 250 (what
the gateway's session layer was built on until 3 Dec 2026); ``bare`` is an ``asyncio.Protocol``
state machine of forty lines that parses commands and finds the end of DATA in
the bytes it is handed.  Each is driven by ``smtp-source`` (a new connection per
message, concurrency 4); the figure is the sink process's CPU (user + system)
per message.  It bounded what a session layer of our own could save (issue 17),
and now shows how far the gateway's own (``dlp/smtp/server.py``) is from the floor.
``gateway`` is one serving process of this tree (``serve_process``, the shipped
configuration, scanning on) in front of ``smtp-sink``, measured the same way.
Needs Postfix's smtp-source (`apt-get install postfix`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop


class Bare(asyncio.Protocol):
    """Just enough SMTP for smtp-source: every command 250, DATA to the dot."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buf = bytearray()
        self.in_data = False
        transport.write(b"220 bare ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            if self.in_data:
                end = buf.find(b"\r\n.\r\n")
                if end < 0:
                    return
                del buf[: end + 5]
                self.in_data = False
                self.transport.write(b"250 2.0.0 Ok\r\n")
                continue
            nl = buf.find(b"\n")
            if nl < 0:
                return
            verb = bytes(buf[:4]).upper()
            del buf[: nl + 1]
            if verb in (b"EHLO", b"HELO"):
                self.transport.write(b"250-bare\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                self.in_data = True
                self.transport.write(b"354 go\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            else:
                self.transport.write(b"250 Ok\r\n")


class Accept:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 2.0.0 Ok"


async def serve(kind: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    if kind == "bare":
        server = await loop.create_server(Bare, "127.0.0.1", port)
    else:
        from aiosmtpd.smtp import SMTP

        server = await loop.create_server(
            lambda: SMTP(Accept(), data_size_limit=None), "127.0.0.1", port
        )
    await server.serve_forever()


def start(kind: str, port: int, work: Path) -> list[subprocess.Popen[bytes]]:
    """The target's processes, the one to measure first."""
    if kind != "gateway":
        return [
            subprocess.Popen(
                [sys.executable, __file__, "--serve", kind, "--port", str(port)],
                stderr=subprocess.DEVNULL,
            )
        ]
    from gateway import ROOT, SMTP_SINK, free_port, wait_port, write_config

    sink_port = free_port()
    sink = subprocess.Popen(
        [SMTP_SINK, "-u", "nobody", f"127.0.0.1:{sink_port}", "1024"], start_new_session=True
    )
    wait_port(sink_port)
    cfg = write_config(work, ROOT, port, sink_port, [])
    code = (
        "import pathlib; from dlp.config import load_file; "
        "from dlp.smtp.app import serve_process; "
        f"serve_process(load_file(pathlib.Path({str(cfg)!r})), 0)"
    )
    gw = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return [gw, sink]


def measure(kind: str, messages: int, size: int) -> tuple[float, float]:
    from gateway import SMTP_SOURCE, free_port, wait_port

    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="dlp-floor-"))
    procs = start(kind, port, work)
    proc = procs[0]
    stat = Path(f"/proc/{proc.pid}/stat")

    def cpu() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    try:
        wait_port(port, timeout=60)
        source = [SMTP_SOURCE, "-l", str(size), "-s", "4", "-f", "a@b.jp", "-t", "c@d.jp"]
        subprocess.run([*source, "-m", "300", f"127.0.0.1:{port}"], check=True)  # warm up
        c0, t0 = cpu(), time.monotonic()
        subprocess.run([*source, "-m", str(messages), f"127.0.0.1:{port}"], check=True)
        elapsed, used = time.monotonic() - t0, cpu() - c0
        return messages / elapsed, used / messages * 1000
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--size", type=int, default=20480)
    ap.add_argument("--serve", choices=["bare", "aiosmtpd"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        uvloop.run(serve(args.serve, args.port))
        return 0
    print("| sink | msg/s | CPU ms/msg |\n|---|---|---|")
    for kind in ("bare", "aiosmtpd", "gateway") * 2:
        rate, ms = measure(kind, args.messages, args.size)
        print(f"| {kind} | {rate:.0f} | {ms:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
