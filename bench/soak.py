#!/usr/bin/env python3
"""Soak under faults: no message lost while gateway processes die, PostgreSQL restarts
and the next hop hangs.

    .venv/bin/python bench/soak.py [--count 4000] [--processes 3] [--kill-every 4]
                                   [--pg restart|terminate] [--stall 15] [--json FILE]

A private Postfix (tests/e2e/, deploy/postfix/after-queue) hands every message to
``dlp serve`` (``--processes`` serving processes, PostgreSQL send log and hold queue in a
database of its own), which relays to an in-process SMTP sink.  While the mail drains:
``kill -9`` of a gateway process every ``--kill-every`` seconds (every third one a scan
worker), one PostgreSQL fault at 40 % (``--pg restart``: ``pg_ctlcluster VERSION main
restart``, the whole server; ``terminate``: the soak database's connections only), one
stall of the sink at 70 % (it keeps the message but answers nothing for ``--stall``
seconds, longer than the gateway's ``next_hop_timeout``).

Afterwards every Message-ID is looked for at the sink, in the hold queue and in the
bounces Postfix sent back, and every message the send log must have (attachment,
finding, hold, refusal) is looked for there under its Postfix queue id. It prints the
tally, each duplicate with the fault it came from and Postfix's reason for retrying, and
exits 1 if a message was lost, misplaced or not recorded.
Needs root, Postfix and PostgreSQL on 127.0.0.1:5432 (user postgres, trust).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(1, str(ROOT / "tests"))  # support.py (free ports)

from e2e_postfix import why_unavailable  # noqa: E402
from e2e_soak import FaultPlan, Soak, corpus, outcome_json  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=4000)
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="scan workers per serving process")
    ap.add_argument("--kill-every", type=float, default=4.0)
    ap.add_argument("--pg", choices=("restart", "terminate"), default="restart")
    ap.add_argument("--stall", type=float, default=15.0, help="seconds the sink is silent")
    ap.add_argument("--next-hop-timeout", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--json", type=Path, help="also write the outcome here")
    ap.add_argument(
        "--postconf",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a main.cf setting for the Postfix instance (over deploy/postfix/after-queue)",
    )
    args = ap.parse_args()
    reason = why_unavailable()
    if reason:
        raise SystemExit(reason)

    def say(text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)

    messages = corpus(args.count, args.seed)
    plan = FaultPlan(
        kill_every=args.kill_every,
        pg_at=0.4,
        pg_mode=args.pg,
        stall_at=0.7,
        stall_seconds=args.stall,
    )
    soak = Soak(
        processes=args.processes,
        workers=args.workers,
        next_hop_timeout=args.next_hop_timeout,
        postconf=dict(p.split("=", 1) for p in args.postconf),
        log=say,
    )
    try:
        soak.start()
        say(f"gateway up ({args.processes} serving processes); submitting {args.count} messages")
        outcome = soak.run(messages, plan, timeout=args.timeout)
    finally:
        soak.close()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n{os.cpu_count()} cores, load average {load}")
    print(outcome.summary())
    if args.json:
        args.json.write_text(outcome_json(outcome), encoding="utf-8")
    return 1 if outcome.lost or outcome.misplaced or outcome.unrecorded else 0


if __name__ == "__main__":
    sys.exit(main())
