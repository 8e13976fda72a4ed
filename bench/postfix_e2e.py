#!/usr/bin/env python3
"""What the gateway costs a Postfix relay: end-to-end throughput through a real Postfix.

    .venv/bin/python bench/postfix_e2e.py [--count 300] [--size 20000] [--conc 10]
        [--mode after|before|both] [--reps 1]

Builds the private Postfix instance of the e2e tests (tests/e2e/, configuration from
deploy/postfix/after-queue and deploy/postfix/before-queue) with an in-process SMTP sink as
its relayhost, and for the same load (`smtp-source -s CONC -m COUNT -l SIZE`, a new
connection per message) measures the wall time from the first submission until the sink
holds every message, in one run:

* postfix only        submitted to the re-injection smtpd (no filter)
* + pass-through      a minimal Python filter (tests/e2e/e2e_passthrough.py) as the filter
* + dlp serve         the gateway as the filter (shipped config/dlp.toml, scanning on)

each filter after-queue (`content_filter`, submitted to the plain smtpd) and before-queue
(`smtpd_proxy_filter`, submitted to the proxy smtpd), as --mode says.  With --reps N the
two filters take turns N times (each started afresh) and the median is shown.  The last
column is what the goal is stated in: dlp serve's msg/s over the pass-through's, same mode.

Needs root and Postfix (`apt-get install postfix`).  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "tests"))

from e2e_gateway import SENDER, Gateway  # noqa: E402
from e2e_postfix import (  # noqa: E402
    PostfixInstance,
    PostfixPorts,
    keep_logs,
    why_unavailable,
)
from e2e_process import ServiceProcess  # noqa: E402
from e2e_sink import Sink  # noqa: E402
from support import free_ports  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from proctree import settle, tree_cpu  # noqa: E402

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


def _known_keys(text: str, tree: Path) -> str:
    """``text`` without the ``[smtp]`` keys the tree's own shipped configuration does
    not have: an older tree refuses a key it does not know (``event_loop``)."""
    shipped = tree / "config" / "dlp.toml"
    if not shipped.exists():
        return text
    known = set(tomllib.loads(shipped.read_text(encoding="utf-8")).get("smtp", {}))
    out, section = [], ""
    for line in text.splitlines(keepends=True):
        head = line.strip()
        if head.startswith("[") and head.endswith("]"):
            section = head.strip("[]").strip()
        key = head.split("=", 1)[0].strip() if "=" in head and not head.startswith("#") else ""
        if section == "smtp" and key and key not in known:
            continue
        out.append(line)
    return "".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--size", type=int, default=20_000)
    ap.add_argument("--conc", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--mode", choices=("after", "before", "both"), default="both")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument(
        "--dlp",
        action="append",
        metavar="LABEL[=TREE][@key=value,...]",
        help="dlp serve variants (repeatable): another tree's dlp package (PYTHONPATH) and"
        " [smtp] keys changed; default: one, this tree as shipped",
    )
    args = ap.parse_args()
    reason = why_unavailable()
    if reason:
        raise SystemExit(reason)

    root = Path(tempfile.mkdtemp(prefix="dlp-bench-postfix-"))
    submit, before_queue, reinject, gateway_port, sink_port = free_ports(5)
    ports = PostfixPorts(submit, before_queue, reinject, gateway_port, sink_port)
    sink = Sink(sink_port)
    postfix = PostfixInstance(root, ports)
    modes = [("after-queue", ports.submit), ("before-queue", ports.before_queue)]
    if args.mode != "both":
        modes = modes[:1] if args.mode == "after" else modes[1:]
    results: dict[tuple[str, str], list[tuple[float, int]]] = {}
    # CPU time of the filter's whole process tree per message (none for Postfix alone).
    cpu: dict[tuple[str, str], list[float]] = {}
    variants: dict[str, list[str]] = {}
    trees: dict[str, str] = {}
    for spec in args.dlp or ["+ dlp serve"]:
        label, _, extra = spec.partition("@")
        label, eq, tree = label.partition("=")
        if eq:
            trees[label] = str(Path(tree).resolve())
        variants[label] = [
            f"{k} = {v if v[:1] in '0123456789tf[' else json.dumps(v)}"
            for k, _, v in (item.partition("=") for item in filter(None, extra.split(",")))
        ]

    def measure(name: str, mode: str, port: int, pid: int | None = None) -> None:
        run_load(port, sink, 5, args.size, 1, args.timeout)  # warm-up, not measured
        deferred = postfix.log().count("status=deferred")
        cpu0 = tree_cpu(pid)
        secs = run_load(port, sink, args.count, args.size, args.conc, args.timeout)
        cpu_ms = (tree_cpu(pid) - cpu0) * 1000 / args.count
        deferrals = postfix.log().count("status=deferred") - deferred
        results.setdefault((name, mode), []).append((secs, deferrals))
        cpu.setdefault((name, mode), []).append(cpu_ms)
        print(
            f"{name} {mode}: {args.count / secs:.1f} msg/s, filter CPU {cpu_ms:.2f} ms/msg",
            file=sys.stderr,
            flush=True,
        )

    def passthrough() -> ServiceProcess:
        return ServiceProcess(
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

    try:
        sink.start()
        postfix.start()
        measure("postfix only", "-", ports.reinject)
        for rep in range(args.reps):
            names = ["+ pass-through filter", *variants]
            k = rep % len(names)
            for name in names[k:] + names[:k]:
                if name in variants:
                    gw_root = root / f"gw{rep}-{names.index(name)}"
                    gw_root.mkdir()
                    gateway = Gateway(gw_root, ports)
                    text = gateway.config.read_text(encoding="utf-8")
                    for line in variants[name]:
                        key = line.split("=", 1)[0].strip()
                        text = re.sub(
                            rf"(?m)^{re.escape(key)} = .*$", lambda _m, x=line: x, text, count=1
                        )
                    if name in trees:
                        text = _known_keys(text, Path(trees[name]))
                    gateway.config.write_text(text, encoding="utf-8")
                    process = gateway.process
                    pythonpath = os.environ.get("PYTHONPATH")
                    if name in trees:  # that tree's dlp package, for a before/after
                        os.environ["PYTHONPATH"] = trees[name]
                    try:
                        process.start(timeout=120)
                    finally:
                        if pythonpath is None:
                            os.environ.pop("PYTHONPATH", None)
                        else:
                            os.environ["PYTHONPATH"] = pythonpath
                else:
                    process = passthrough()
                    process.start()
                # Measured once it is idle: start-up (scan workers importing) is not load.
                settle(process.proc.pid if process.proc else None)
                try:
                    for mode, port in modes:
                        measure(name, mode, port, process.proc.pid if process.proc else None)
                finally:
                    process.stop()
    finally:
        postfix.stop()
        sink.stop()
        keep_logs(root, prefix="bench-")  # test-output/e2e/bench-*
        shutil.rmtree(root, ignore_errors=True)

    def rate(key: tuple[str, str]) -> float:
        return statistics.median(args.count / secs for secs, _ in results[key])

    print(
        f"{args.count} messages of {args.size} bytes, smtp-source concurrency {args.conc}, "
        f"{args.reps} turn(s) per filter, {os.cpu_count()} cores, load average "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    print(
        "| path | mode | msg/s (median) | runs | deferrals | filter CPU ms/msg "
        "| dlp serve / pass-through |"
    )
    print("|---|---|---|---|---|---|---|")
    for (name, mode), runs in results.items():
        ratio = ""
        if name in variants:
            ratio = f"**{rate((name, mode)) / rate(('+ pass-through filter', mode)):.2f}**"
        print(
            f"| {name} | {mode} | {rate((name, mode)):.1f} | "
            f"{' / '.join(f'{args.count / secs:.0f}' for secs, _ in runs)} | "
            f"{sum(d for _, d in runs)} | {statistics.median(cpu.get((name, mode), [0.0])):.2f} | "
            f"{ratio} |"
        )


if __name__ == "__main__":
    main()
