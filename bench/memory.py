#!/usr/bin/env python3
"""What a message and an idle session cost in memory in a serving process of `dlp serve`.

    PYTHONPATH=$PWD .venv/bin/python bench/memory.py [--reps 10] [--sessions 200]
        [--gateway LABEL=TREE]...

Starts Postfix's `smtp-sink` as the next hop and `dlp serve` in front of it with one
serving process (`[smtp] processes = 1`, so every session lands in the process
measured; scanning on, shipped config/dlp.toml otherwise), then, for each gateway:

* **one 2 MB message**: the serving process's peak RSS is reset
  (`/proc/PID/clear_refs` = 5, Linux ≥ 4.0, needs the same user or root), one
  message is sent (connect … QUIT), and the growth of the peak (`VmHWM`) over the
  RSS just before is that message's cost.  The first message is reported apart
  ("cold": the allocator has not seen a 2 MB block yet), then the median and the
  maximum of --reps more ("warm");
* **ten 2 MB messages at once**: the same, with ten sessions sending together, per
  message;
* **idle sessions**: --sessions connections that have said EHLO and then wait,
  from 127.0.0.2, 127.0.0.3, … (one address per 50, under the per-client cap);
  the growth of RSS with all of them open, per session and in total.

The message is what bench/gateway.py sends (headers and 78-character lines of "X";
2 MB goes to a scan worker, so the serving process holds it while the worker
scans).  ``--gateway`` (repeatable) measures several trees in one run, as in
bench/gateway.py.  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from gateway import (  # noqa: E402  (bench/gateway.py: the same set-up)
    RECIPIENT,
    SENDER,
    SMTP_SINK,
    _message,
    free_port,
    parse_gateway,
    wait_port,
    write_config,
)

SIZE = 2 * 1024 * 1024


def status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise RuntimeError("connection closed")
        if line[3:4] != b"-":
            if not line.startswith((b"2", b"3")):
                raise RuntimeError(line.decode(errors="replace"))
            return line


async def send(port: int, payload: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    for cmd in (
        b"EHLO bench\r\n",
        f"MAIL FROM:<{SENDER}>\r\n".encode(),
        f"RCPT TO:<{RECIPIENT}>\r\n".encode(),
        b"DATA\r\n",
    ):
        writer.write(cmd)
        await _reply(reader)
    writer.write(payload)
    await _reply(reader)
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()
    await writer.wait_closed()


def message_cost(pid: int, port: int, payload: bytes, at_once: int) -> float:
    """Growth of the serving process's peak RSS (bytes) for ``at_once`` messages together."""

    async def run() -> None:
        await asyncio.gather(*(send(port, payload) for _ in range(at_once)))

    time.sleep(0.3)  # let the previous session's objects go
    before = status_kb(pid, "VmRSS")
    reset_peak(pid)
    asyncio.run(run())
    return (status_kb(pid, "VmHWM") - before) * 1024.0


def idle_cost(pid: int, port: int, sessions: int) -> float:
    """Growth of RSS (bytes) with ``sessions`` idle sessions open (after EHLO)."""
    socks: list[socket.socket] = []
    time.sleep(0.3)
    before = status_kb(pid, "VmRSS")
    try:
        for i in range(sessions):
            s = socket.socket()
            s.bind((f"127.0.0.{2 + i // 50}", 0))
            s.connect(("127.0.0.1", port))
            s.sendall(b"EHLO idle\r\n")
            socks.append(s)
        for s in socks:  # banner and the whole EHLO reply read: the session now waits
            data = b""
            while b"\r\n250 " not in data:
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError(f"session closed: {data[-200:]!r}")
                data += chunk
        time.sleep(0.5)
        return (status_kb(pid, "VmRSS") - before) * 1024.0
    finally:
        for s in socks:
            s.close()


def serving_pid(log: Path, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if '"event": "listening"' in line and '"pid": ' in line:
                return int(line.rsplit('"pid": ', 1)[1].split("}")[0].split(",")[0])
        time.sleep(0.1)
    raise SystemExit(f"no serving process in {log}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--gateway", action="append", metavar="LABEL=TREE[@key=value,...]")
    args = ap.parse_args()
    gateways = [parse_gateway(g) for g in args.gateway or [f"dlp gateway={ROOT}"]]
    payload = _message(SIZE) + b".\r\n"
    work = Path(tempfile.mkdtemp(prefix="dlp-bench-mem-"))
    sink_port = free_port()
    sink = subprocess.Popen([SMTP_SINK, "-u", "nobody", f"127.0.0.1:{sink_port}", "1024"])
    rows = []
    try:
        wait_port(sink_port)
        for n, (label, tree, extra) in enumerate(gateways):
            port = free_port()
            cfg = write_config(work / f"gw{n}", tree, port, sink_port, ["processes = 1", *extra])
            log = work / f"serve{n}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [str(Path(sys.executable).with_name("dlp")), "serve", "--config", str(cfg)],
                    cwd=cfg.parent.parent,
                    stdout=out,
                    stderr=out,
                    env={**os.environ, "PYTHONPATH": str(tree)},
                )
            try:
                wait_port(port)
                pid = serving_pid(log)
                start_rss = status_kb(pid, "VmRSS") * 1024.0
                cold = message_cost(pid, port, payload, 1)
                warm = [message_cost(pid, port, payload, 1) for _ in range(args.reps)]
                ten = message_cost(pid, port, payload, 10) / 10
                idle = idle_cost(pid, port, args.sessions)
                rows.append(
                    {
                        "label": label,
                        "start_mb": start_rss / 1e6,
                        "cold": cold / SIZE,
                        "warm_median": statistics.median(warm) / SIZE,
                        "warm_max": max(warm) / SIZE,
                        "ten": ten / SIZE,
                        "idle_total_mb": idle / 1e6,
                        "idle_kb": idle / args.sessions / 1024,
                        "rss_end_mb": status_kb(pid, "VmRSS") / 1024,
                    }
                )
                print(rows[-1], file=sys.stderr, flush=True)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"2 MB = {SIZE} bytes; peak RSS growth of the serving process as a multiple of the "
        f"message size; {args.sessions} idle sessions after EHLO; "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    print(
        "| gateway | RSS at start MB | 2 MB cold (× size) | 2 MB warm median / max (× size) "
        "| 10 × 2 MB at once, per message (× size) | idle sessions: total MB | per session KB "
        "| RSS at end MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['label']} | {r['start_mb']:.1f} | {r['cold']:.2f} | "
            f"{r['warm_median']:.2f} / {r['warm_max']:.2f} | {r['ten']:.2f} | "
            f"{r['idle_total_mb']:.1f} | {r['idle_kb']:.0f} | {r['rss_end_mb']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
