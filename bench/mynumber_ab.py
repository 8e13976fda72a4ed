"""A/B of ``MyNumberDetector.find``: this tree against a baseline ``mynumber.py``.

Measures a change to the detector in one process, on the three generated corpora of
``bench/scan_throughput.py`` (fixed seed), interleaving the two versions and keeping
the best of ``--repeat`` runs each, because this shared machine moves single runs by
±15 %.  (Written for issue 15's invisible-character gate, which the compiled scanner
has since absorbed; bench/detector_ab.py compares whole trees.)

    git show b0bff07^:dlp/detect/mynumber.py > /tmp/mynumber_before.py
    PYTHONPATH=$PWD .venv/bin/python bench/mynumber_ab.py --baseline /tmp/mynumber_before.py
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scan_throughput as corpora

from dlp.detect import mynumber
from dlp.model import TextChunk


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("mynumber_baseline", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the module up
    spec.loader.exec_module(mod)
    return mod


def best(fn: object, repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        out = min(out, time.perf_counter() - start)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--mb", type=float, default=4)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    old = load(args.baseline)
    print("| corpus | baseline MB/s | this tree MB/s | change |")
    print("|---|---|---|---|")
    for gen in (corpora.digit_poor, corpora.digit_rich, corpora.number_dump):
        text = gen(random.Random(1), int(args.mb * 1_000_000))
        mb = len(text.encode()) / 1e6
        chunk = TextChunk(text, "body")
        times = {"old": float("inf"), "new": float("inf")}
        for _ in range(args.repeat):
            for name, mod in (("old", old), ("new", mynumber)):
                det = mod.build_detector()
                times[name] = min(times[name], best(lambda d=det, c=chunk: d.find(c), 1))
        change = 100 * (times["old"] / times["new"] - 1)
        print(
            f"| {gen.__name__} | {mb / times['old']:.0f} | {mb / times['new']:.0f} | "
            f"{change:+.1f} % |"
        )


if __name__ == "__main__":
    main()
