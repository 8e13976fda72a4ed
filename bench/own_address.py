"""Precision and recall of the own-private-address judgement (issue 14) on
tests/data/own_address_pairs.tsv, and its cost per free-mail recipient (the gateway
pays it on the event loop once per free-mail recipient of a message).
Run: PYTHONPATH=. python bench/own_address.py [-v]"""

from __future__ import annotations

import sys
from pathlib import Path

from dlp.ownaddress import THRESHOLD, own_address_likely

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "own_address_pairs.tsv"


def pairs() -> list[tuple[str, str, str, bool]]:
    out = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        sender, display, recipient, own = line.split("\t")
        out.append((sender, display, recipient, own == "1"))
    return out


def confusion(verbose: bool = False) -> tuple[int, int, int, int]:
    tp = fp = fn = tn = 0
    for sender, display, recipient, own in pairs():
        header_from = f"{display} <{sender}>" if display else sender
        got = own_address_likely(recipient, sender, header_from)
        if got and own:
            tp += 1
        elif got:
            fp += 1
        elif own:
            fn += 1
        else:
            tn += 1
        if verbose and got != own:
            print(f"{'FP' if got else 'FN'}\t{sender}\t{display}\t{recipient}")
    return tp, fp, fn, tn


if __name__ == "__main__":
    tp, fp, fn, tn = confusion("-v" in sys.argv)
    print(f"threshold {THRESHOLD}: {tp + fn} own, {fp + tn} other; TP {tp} FP {fp} FN {fn} TN {tn}")
    print(f"precision {tp / (tp + fp):.3f}  recall {tp / (tp + fn):.3f}")
    import timeit

    cases = [(r, s, f"{d} <{s}>" if d else s) for s, d, r, _ in pairs()]
    n = 200
    t = timeit.timeit(lambda: [own_address_likely(*c) for c in cases], number=n)
    print(f"{t / (n * len(cases)) * 1e6:.1f} us per free-mail recipient (mean over the pairs)")
