"""Two trees' detectors against each other, in one run: ``bench/scan_throughput.py
--json`` for each tree in turn, ``--rounds`` times, the best figure of each kept
(this shared machine moves single runs by ±15 %; alternating puts the same load on
both).  The tree to compare with is a checkout of another commit:

    git worktree add /tmp/base 718949b     # or: git archive 718949b | tar -x -C /tmp/base
    .venv/bin/python bench/detector_ab.py --baseline /tmp/base [--mb 4 --repeat 3 --rounds 3]

A baseline tree without the compiled scanner runs as it shipped (pure Python).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
METRICS = ("mynumber", "all", "naive", "scan_message", "scan_message_all")


def run(tree: Path, args: argparse.Namespace) -> list[dict[str, float | str]]:
    out = subprocess.run(
        [sys.executable, str(HERE / "scan_throughput.py"), "--json", "--mb", str(args.mb),
         "--repeat", str(args.repeat)],
        env={**os.environ, "DLP_TREE": str(tree)},
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    rows: list[dict[str, float | str]] = json.loads(out.splitlines()[-1])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=Path, required=True, help="checkout to compare with")
    ap.add_argument("--tree", type=Path, default=HERE.parent, help="checkout measured (this one)")
    ap.add_argument("--mb", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    best: dict[str, dict[str, dict[str, float | str]]] = {"base": {}, "tree": {}}
    for _ in range(args.rounds):
        for name, tree in (("base", args.baseline), ("tree", args.tree)):
            for row in run(tree, args):
                key = str(row["corpus"])
                have = best[name].setdefault(key, dict(row))
                for m in METRICS:
                    have[m] = max(float(have[m]), float(row[m]))
    print(
        f"baseline {args.baseline}, tree {args.tree}; MB/s of one core, best of {args.rounds} rounds\n"
    )
    print(
        "| corpus | My Number find: base → tree | all detectors: base → tree | naive | "
        "all / naive (tree) | scan_message, My Number only: base → tree | "
        "scan_message, all: base → tree | all / My Number only: base → tree |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key, b in best["base"].items():
        t = best["tree"][key]

        def f(r: dict[str, float | str], m: str) -> float:
            return float(r[m])

        print(
            f"| {key} | {f(b, 'mynumber'):.0f} → **{f(t, 'mynumber'):.0f}** | "
            f"{f(b, 'all'):.0f} → **{f(t, 'all'):.0f}** | {f(t, 'naive'):.0f} | "
            f"{f(t, 'all') / f(t, 'naive'):.2f} | "
            f"{f(b, 'scan_message'):.1f} → **{f(t, 'scan_message'):.1f}** | "
            f"{f(b, 'scan_message_all'):.1f} → **{f(t, 'scan_message_all'):.1f}** | "
            f"{f(b, 'scan_message_all') / f(b, 'scan_message'):.2f} → "
            f"**{f(t, 'scan_message_all') / f(t, 'scan_message'):.2f}** |"
        )
        if b["found_all"] != t["found_all"]:
            print(
                f"|  | findings differ: base {b['found_all']}, tree {t['found_all']} | | | | | | |"
            )


if __name__ == "__main__":
    main()
