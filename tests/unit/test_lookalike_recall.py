"""Recall on generated lookalikes (dnstwist + our own generators) stays high.

The thresholds sit a little under what bench/lookalike.py measures
(bench/RESULTS-lookalike.md), so a change that loses a technique fails here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from dlp.detect.lookalike import LOOKALIKE, ProtectedSet, check, normalise

pytest.importorskip("dnstwist")

BENCH = Path(__file__).resolve().parents[2] / "bench" / "lookalike.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_lookalike", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_lookalike"] = module
    spec.loader.exec_module(module)
    return module


B = _bench()
PROTECTED = ("sakura-payroll.co.jp", "mirai-kyosai.or.jp", "example.lg.jp", "gmail.com",
             "docomo.ne.jp", "yahoo.co.jp")  # fmt: skip

# technique -> minimum recall over labels of 4+ letters
MINIMUM = {
    "addition": 0.98, "bitsquatting": 0.98, "cyrillic": 0.9, "homoglyph": 0.85,
    "hyphenation": 0.98, "insertion": 0.98, "omission": 0.98, "repetition": 0.98,
    "replacement": 0.98, "subdomain": 0.95, "transposition": 0.98, "vowel-swap": 0.98,
    "suffix_swap": 0.98, "suffix_typo": 0.98, "dot_missing": 1.0, "dot_extra": 1.0,
    "hyphen_for_dot": 1.0, "prefix": 1.0,
}  # fmt: skip


@pytest.fixture(scope="module")
def recall() -> dict[str, float]:
    ps = ProtectedSet.build(own=PROTECTED[:3], builtin=True)
    listed = {normalise(d).registrable for d in B.BUILTIN_KNOWN} | {
        normalise(d).registrable for d in (*PROTECTED, *B.BUILTIN_PROTECTED)
    }
    hits: dict[str, list[int]] = {}
    for domain in PROTECTED:
        for technique, candidate in B.variants(domain):
            name = normalise(candidate)
            if name.registrable in listed or "." not in name.ascii:
                continue
            row = hits.setdefault(technique, [0, 0])
            row[0] += 1
            row[1] += check(candidate, ps).verdict == LOOKALIKE
    return {t: found / total for t, (total, found) in hits.items()}


@pytest.mark.parametrize("technique", sorted(MINIMUM))
def test_recall_per_technique(recall: dict[str, float], technique: str) -> None:
    assert technique in recall, f"generator produced no {technique} variants"
    assert recall[technique] >= MINIMUM[technique]


def test_own_generators_name_the_technique() -> None:
    ps = ProtectedSet.build(own=["sakura-payroll.co.jp"], builtin=False)
    same = total = 0
    for technique, candidate in B.own_variants("sakura-payroll.co.jp"):
        if technique == "homoglyph":
            continue
        total += 1
        same += check(candidate, ps).technique == technique
    assert same / total > 0.9
