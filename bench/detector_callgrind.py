"""One detector over 1 MB of the number dump, for ``valgrind --tool=callgrind``.

Instruction counts do not move with the machine's load, so a before/after of the
detectors can be read on a busy machine.  Run it twice per tree, with the step and
with ``none``, and subtract (the corpus generation and start-up are the rest):

    for what in none mynumber credit_card gate; do
      DLP_TREE=/tmp/base718 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/detector_callgrind.py $what 2>&1 | grep Collected
    done

``DLP_TREE`` names the checkout measured (default: this one).
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

sys.path.insert(0, os.environ.get("DLP_TREE") or str(Path(__file__).resolve().parent.parent))
sys.path.insert(1, str(Path(__file__).resolve().parent))

from scan_throughput import digit_poor, digit_rich, number_dump

from dlp.detect.registry import NAMES, build_detectors, build_gate
from dlp.model import TextChunk


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "none"
    rng = random.Random(20261126)
    digit_poor(rng, 1_000_000)  # the same text scan_throughput.py's seed gives
    digit_rich(rng, 1_000_000)
    text = number_dump(rng, 1_000_000)
    detectors = {d.name: d for d in build_detectors(NAMES)}
    gate = build_gate(NAMES)
    for d in detectors.values():  # compile and warm outside the step
        d.find(TextChunk("個人番号 123456789018 4111 1111 1111 1111", "body"))
    if what == "gate":
        gate.hits(text)
    elif what in detectors:
        detectors[what].find(TextChunk(text, "body"))
    elif what != "none":
        raise SystemExit(f"unknown step {what!r}: none, gate or one of {', '.join(detectors)}")


if __name__ == "__main__":
    main()
