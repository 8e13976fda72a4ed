#!/usr/bin/env python3
"""What `delay` on every message costs against `hold` (issue 13: at most 10 %).

    .venv/bin/python bench/sender_loop.py [--seconds 5] [--reps 3] [--conc 20]

Needs Postfix's smtp-source and smtp-sink.  Starts smtp-sink as the next hop
(it also takes the notices) and, in turn, `dlp serve` with one rule ahead of the
shipped ones that matches every outside message: `action = "hold"`, then
`action = "delay"` (delay = "1h", so nothing is released during the run; each
message is held, recorded and committed, and its sender mailed a notice with a
signed link).  20 KB messages from an own-domain sender to an outside address,
`smtp-source` at the given concurrency; the gateway's hold queue and send log
start empty for every run.  Repetitions alternate the order; prints the median
msg/s and CPU ms per message (gateway process tree) of each, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway import SMTP_SINK, free_port, throughput, wait_port
from gateway import write_config as base_config

RULES = {
    "hold": '[[policy.rules]]\nname = "bench-every"\nrecipient_class = ["external"]\n'
    'action = "hold"\n\n',
    "delay": '[[policy.rules]]\nname = "bench-every"\nrecipient_class = ["external"]\n'
    'action = "delay"\ndelay = "1h"\n\n',
}


def run_one(kind: str, size: int, conc: int, seconds: float) -> tuple[float, float]:
    work = Path(tempfile.mkdtemp(prefix=f"dlp-bench-{kind}-"))
    sink_port, gw_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen([SMTP_SINK, "-u", "nobody", f"127.0.0.1:{sink_port}", "1024"])
        )
        wait_port(sink_port)
        cfg = base_config(work, gw_port, sink_port)
        text = cfg.read_text(encoding="utf-8")
        at = text.index("[[policy.rules]]")
        text = text[:at] + RULES[kind] + text[at:]
        text = text.replace('from = ""', 'from = "dlp-noreply@example.lg.jp"', 1)
        cfg.write_text(text, encoding="utf-8")
        log = (work / "serve.log").open("wb")
        procs.append(
            subprocess.Popen(
                [str(Path(sys.executable).with_name("dlp")), "serve", "--config", str(cfg)],
                cwd=work,
                stdout=log,
                stderr=log,
            )
        )
        wait_port(gw_port)
        time.sleep(1.0)
        rate, _count, cpu_ms = throughput(gw_port, size, conc, seconds, procs[1].pid)
        return rate, cpu_ms
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--conc", type=int, default=20)
    ap.add_argument("--size", type=int, default=20480)
    args = ap.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {"hold": [], "delay": []}
    for rep in range(args.reps):
        order = ["hold", "delay"] if rep % 2 == 0 else ["delay", "hold"]
        for kind in order:
            runs[kind].append(run_one(kind, args.size, args.conc, args.seconds))
            print(json.dumps({"kind": kind, "rep": rep, "msg_s": runs[kind][-1][0],
                              "cpu_ms": runs[kind][-1][1]}), file=sys.stderr, flush=True)  # fmt: skip
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
           for k, v in runs.items()}  # fmt: skip
    print(f"| action | msg/s (median of {args.reps}) | runs | CPU ms/msg |")
    print("|---|---|---|---|")
    for k in ("hold", "delay"):
        shown = ", ".join(f"{r[0]:.1f}" for r in runs[k])
        print(f"| {k} | {med[k][0]:.1f} | {shown} | {med[k][1]:.2f} |")
    print(f"\ndelay / hold throughput: {med['delay'][0] / med['hold'][0]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
