#!/usr/bin/env python3
"""Gateway throughput and latency: through `dlp serve` (scanning on) vs straight to the sink.

    .venv/bin/python bench/gateway.py [--seconds 5] [--json out.jsonl]
        [--gateway LABEL=TREE[@key=value,...]]...

Needs Postfix's smtp-source and smtp-sink (`apt-get install postfix`).  It starts
smtp-sink as the next hop, `dlp serve` (one process per core, its default) in
front of it, and for 20 KB and 2 MB messages at concurrency 1 and 20 measures:

* msg/s: `smtp-source -s CONC -l SIZE -m COUNT` (a new connection per message),
  COUNT calibrated so a run lasts about --seconds;
* p50/p99 latency of one whole transaction (connect … QUIT) with a small
  asyncio client, closed loop at the same concurrency, for --seconds;

against the gateway and against smtp-sink directly, in one run, and prints a
markdown table with each gateway's msg/s as a ratio of smtp-sink's.

``--gateway`` (repeatable) runs more than one gateway side by side in the same
run, for a before/after: each is `dlp serve` with ``PYTHONPATH=TREE`` (a checkout,
e.g. ``git worktree add /tmp/before main``), its own port and its own scan
workers; ``@key=value`` lines are added to its ``[smtp]`` table.  Without it,
one gateway runs from this tree.  ``--floor`` adds `bench/relay_floor.py`
("python relay floor"): a relay with the gateway's round trips to the next hop and
nothing else (no scan, no log, no policy), the floor a Python gateway cannot go
below, measured the same way.

Everything runs on this machine's cores: generator, gateway and sink compete for
them, as they would on a single small gateway host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from proctree import settle, tree_cpu

ROOT = Path(__file__).resolve().parent.parent
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SENDER = "from@example.lg.jp"
RECIPIENT = "to@kaisha-abc.jp"
SIZES = {"20 KB": 20480, "2 MB": 2097152}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.recv(100)
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port}")


def source(port: int, size: int, conc: int, count: int) -> float:
    """Seconds smtp-source needs to send COUNT messages."""
    start = time.monotonic()
    subprocess.run(
        [
            SMTP_SOURCE,
            "-l",
            str(size),
            "-m",
            str(count),
            "-s",
            str(conc),
            "-f",
            SENDER,
            "-t",
            RECIPIENT,
            f"127.0.0.1:{port}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - start


def throughput(
    port: int, size: int, conc: int, seconds: float, pid: int | None
) -> tuple[float, int, float]:
    """msg/s, messages sent, and CPU ms per message of the target's process tree."""
    probe = max(conc, 4 if size > 100_000 else 40)
    rate = probe / source(port, size, conc, probe)
    count = max(conc, int(rate * seconds))
    cpu0 = tree_cpu(pid)
    elapsed = source(port, size, conc, count)
    cpu_ms = (tree_cpu(pid) - cpu0) * 1000 / count
    return count / elapsed, count, cpu_ms


def _message(size: int) -> bytes:
    head = (
        f"From: {SENDER}\r\nTo: {RECIPIENT}\r\nSubject: bench\r\n"
        "Message-Id: <bench@example.lg.jp>\r\n\r\n"
    ).encode()
    line = b"X" * 78 + b"\r\n"
    return head + line * (size // len(line))


async def _transaction(port: int, payload: bytes) -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> bytes:
        while True:
            line = await reader.readline()
            if line[3:4] != b"-":
                if not line.startswith((b"2", b"3")):
                    raise RuntimeError(line.decode(errors="replace"))
                return line

    await reply()
    for cmd in (
        b"EHLO bench\r\n",
        f"MAIL FROM:<{SENDER}>\r\n".encode(),
        f"RCPT TO:<{RECIPIENT}>\r\n".encode(),
        b"DATA\r\n",
    ):
        writer.write(cmd)
        await reply()
    writer.write(payload)
    await reply()
    writer.write(b"QUIT\r\n")
    await reply()
    writer.close()
    return time.perf_counter() - start


def latency(port: int, size: int, conc: int, seconds: float) -> list[float]:
    payload = _message(size) + b".\r\n"

    async def worker(deadline: float, out: list[float]) -> None:
        while time.monotonic() < deadline:
            out.append(await _transaction(port, payload))

    async def run() -> list[float]:
        out: list[float] = []
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(worker(deadline, out) for _ in range(conc)))
        return out

    return asyncio.run(run())


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def write_config(
    directory: Path, tree: Path, listen: int, next_hop: int, smtp_extra: list[str]
) -> Path:
    cfg = directory / "config"
    cfg.mkdir(parents=True)
    (cfg / "allowed_domains.txt").write_text(
        "[own]\nexample.lg.jp\n\n[partner]\n", encoding="utf-8"
    )
    # The tree's own shipped configuration: an older tree refuses keys it does not know.
    shipped = tree / "config" / "dlp.toml"
    text = (shipped if shipped.exists() else ROOT / "config" / "dlp.toml").read_text("utf-8")
    text = text.replace('listen = "127.0.0.1:10025"', f'listen = "127.0.0.1:{listen}"', 1)
    text = text.replace('next_hop = "127.0.0.1:10026"', f'next_hop = "127.0.0.1:{next_hop}"', 1)
    for line in smtp_extra:
        # Replace the shipped line of that key (every [smtp] key is there), else add it.
        key = line.split("=", 1)[0].strip()
        text, found = re.subn(
            rf"(?m)^{re.escape(key)} = .*$", lambda _m, line=line: line, text, count=1
        )
        if not found:
            text = text.replace("[smtp]\n", f"[smtp]\n{line}\n", 1)
    (cfg / "dlp.toml").write_text(text, encoding="utf-8")
    return cfg / "dlp.toml"


def parse_gateway(spec: str) -> tuple[str, Path, list[str]]:
    """``LABEL=TREE[@key=value,...]`` -> label, tree, extra [smtp] lines."""
    label, eq, rest = spec.partition("=")
    if not eq:
        raise SystemExit(f"--gateway {spec!r}: expected LABEL=TREE")
    tree, _, extra = rest.partition("@")
    lines = []
    for item in filter(None, extra.split(",")):
        key, _, value = item.partition("=")
        lines.append(f"{key} = {value if value[:1] in '0123456789tf[' else json.dumps(value)}")
    return label, Path(tree).resolve(), lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--json", help="also append raw results as JSON lines here")
    ap.add_argument("--size", action="append", choices=list(SIZES), help="only these sizes")
    ap.add_argument("--conc", action="append", type=int, help="only these concurrencies")
    ap.add_argument(
        "--reps", type=int, default=1, help="repetitions per cell (median msg/s, pooled latency)"
    )
    ap.add_argument(
        "--gateway",
        action="append",
        metavar="LABEL=TREE[@key=value,...]",
        help="a gateway to measure (repeatable); default: this tree",
    )
    ap.add_argument("--no-latency", action="store_true", help="msg/s and CPU only")
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also measure bench/relay_floor.py, a relay with the gateway's round trips only",
    )
    args = ap.parse_args()
    for tool in (SMTP_SOURCE, SMTP_SINK):
        if not os.access(tool, os.X_OK):
            print(f"{tool} not found: apt-get install postfix", file=sys.stderr)
            return 2
    gateways = [parse_gateway(g) for g in args.gateway or [f"dlp gateway={ROOT}"]]
    work = Path(tempfile.mkdtemp(prefix="dlp-bench-"))
    sink_port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    targets: list[tuple[str, int, int | None]] = []
    rows = []
    try:
        procs.append(
            subprocess.Popen([SMTP_SINK, "-u", "nobody", f"127.0.0.1:{sink_port}", "1024"])
        )
        wait_port(sink_port)
        targets.append(("smtp-sink direct", sink_port, procs[0].pid))
        for n, (label, tree, extra) in enumerate(gateways):
            port = free_port()
            cfg = write_config(work / f"gw{n}", tree, port, sink_port, extra)
            log = (work / f"serve{n}.log").open("wb")
            env = {**os.environ, "PYTHONPATH": str(tree)}
            procs.append(
                subprocess.Popen(
                    [str(Path(sys.executable).with_name("dlp")), "serve", "--config", str(cfg)],
                    cwd=cfg.parent.parent,
                    stdout=log,
                    stderr=log,
                    env=env,
                )
            )
            wait_port(port)
            targets.append((label, port, procs[-1].pid))
        if args.floor:
            port = free_port()
            floor = Path(__file__).resolve().with_name("relay_floor.py")
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(floor), "--port", str(port), "--next-hop", str(sink_port)]
                )
            )
            wait_port(port)
            targets.append(("python relay floor", port, procs[-1].pid))
        for _label, _port, pid in targets:
            settle(pid)  # start-up (scan workers importing) is not load
        for label, size in SIZES.items():
            if args.size and label not in args.size:
                continue
            for conc in args.conc or (1, 20):
                runs: dict[str, list[tuple[float, int, float]]] = {t[0]: [] for t in targets}
                lat: dict[str, list[float]] = {t[0]: [] for t in targets}
                for rep in range(args.reps):
                    # Rotate the order so no target always runs first.
                    k = rep % len(targets)
                    for target, port, pid in targets[k:] + targets[:k]:
                        runs[target].append(throughput(port, size, conc, args.seconds, pid))
                        if not args.no_latency:
                            lat[target] += latency(port, size, conc, args.seconds)
                for target, _, _ in targets:
                    p50, p99 = percentiles(lat[target]) if lat[target] else (0.0, 0.0)
                    row = {
                        "size": label,
                        "conc": conc,
                        "target": target,
                        "msg_s": statistics.median(r[0] for r in runs[target]),
                        "msg_s_runs": [round(r[0], 1) for r in runs[target]],
                        "count": sum(r[1] for r in runs[target]),
                        "cpu_ms_per_msg": statistics.median(r[2] for r in runs[target]),
                        "load_avg_1m": os.getloadavg()[0],
                        "p50_ms": p50,
                        "p99_ms": p99,
                        "lat_samples": len(lat[target]),
                    }
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
    if args.json:
        with open(args.json, "a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
    print(
        "| size | conc | target | msg/s (runs) | vs smtp-sink | CPU ms/msg (target) "
        "| p50 ms | p99 ms | added p50 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    direct = {(r["size"], r["conc"]): r for r in rows if r["target"] == "smtp-sink direct"}
    for r in rows:
        base = direct[(r["size"], r["conc"])]
        added = r["p50_ms"] - base["p50_ms"] if r["target"] != "smtp-sink direct" else 0.0
        runs_text = " / ".join(f"{x:.0f}" for x in r["msg_s_runs"])
        print(
            f"| {r['size']} | {r['conc']} | {r['target']} | {r['msg_s']:.1f} ({runs_text}) | "
            f"{r['msg_s'] / base['msg_s']:.2f} | {r['cpu_ms_per_msg']:.2f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {added:+.2f} |"
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
