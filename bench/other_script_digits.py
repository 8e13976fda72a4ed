"""Cost of reading digits in any script in the keyword-gated detectors (issue 15).

The licence, pension, bank account, passport and residence card detectors read
any Unicode decimal digit (``base.ANY_DIGIT``) since this change; before, they
read ASCII and full-width digits and switched to an ASCII-only pattern on text
without a full-width digit.  Measured in the same process, interleaved, best of
``--repeat``, CPU time:

* ``find`` of each detector, before (its former patterns) and after, on text in
  which every line holds its keyword (the worst case: the shared gate lets every
  chunk through), ASCII digits with now and then a full-width one;
* ``mask_others`` (every field the scanner or the send log writes passes it) on
  typical fields, before (the ``[0-9０-９]`` seven-digit test) and after (the
  ASCII test on ASCII text, ``\\d`` otherwise).

    PYTHONPATH=$PWD .venv/bin/python bench/other_script_digits.py [--kb 512] [--repeat 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlp.detect import (
    bank_account,
    drivers_license,
    passport,
    pension_number,
    registry,
    residence_card,
)
from dlp.detect.base import ASCII_DIGIT, DIGIT, SEP_CLASS, PatternDetector
from dlp.model import TextChunk


def _before(module: object, det: PatternDetector) -> PatternDetector:
    """The detector with the patterns it had before this change."""
    name = det.name
    if name in ("drivers_license", "pension_number", "bank_account"):
        pattern = module._pattern  # type: ignore[attr-defined]
        return dataclasses.replace(det, candidate_re=pattern(DIGIT), ascii_re=pattern(ASCII_DIGIT))
    u, d = "A-ZＡ-Ｚ", "0-9０-９"
    digits = 7 if name == "passport" else 8
    tail = "" if name == "passport" else f"[{u}]{{2}}"
    old = re.compile(rf"(?<![{u}{d}a-zａ-ｚ])[{u}]{{2}}[{d}]{{{digits}}}{tail}(?![{u}{d}a-zａ-ｚ])")
    return dataclasses.replace(det, candidate_re=old)


def _text(keyword: str, value: Callable[[random.Random], str], kb: int, rng: random.Random) -> str:
    lines = []
    size = 0
    while size < kb * 1024:
        line = (
            f"{keyword} {value(rng)} 注文番号 {rng.randrange(10**7):07d} "
            f"電話 03-{rng.randrange(10**4):04d}-{rng.randrange(10**4):04d} "
            f"{rng.randrange(2020, 2027)}年{rng.randrange(1, 13)}月{rng.randrange(1, 29)}日 "
            "ご確認をお願いいたします。"
        )
        if rng.random() < 0.05:
            line = line.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        lines.append(line)
        size += len(line.encode())
    return "\n".join(lines)


def _cpu(fn: Callable[[], object]) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(20261202)
    L = "ABCDEFGHJKLMNPRSTUVWXYZ"

    def letters(n: int) -> str:
        return "".join(rng.choice(L) for _ in range(n))

    cases = [
        (drivers_license, "運転免許証番号", lambda r: "3019-1234-5680"),
        (
            pension_number,
            "基礎年金番号",
            lambda r: f"{r.randrange(10**4):04d}-{r.randrange(10**6):06d}",
        ),
        (bank_account, "普通預金 口座番号", lambda r: f"{r.randrange(10**7):07d}"),
        (passport, "旅券番号", lambda r: letters(2) + f"{r.randrange(10**7):07d}"),
        (
            residence_card,
            "在留カード番号",
            lambda r: letters(2) + f"{r.randrange(10**8):08d}" + letters(2),
        ),
    ]
    print(
        f"| detector | `find` before (ms CPU, {args.kb} KB) | after | after / before | same values |"
    )
    print("|---|---|---|---|---|")
    for module, keyword, value in cases:
        new = module.build()  # type: ignore[attr-defined]
        old = _before(module, new)
        chunk = TextChunk(_text(keyword, value, args.kb, rng), "body")
        same = [h.value for h in old.find(chunk)] == [h.value for h in new.find(chunk)]
        best_old = best_new = float("inf")
        for _ in range(args.repeat):
            best_old = min(best_old, _cpu(lambda d=old, c=chunk: d.find(c)))
            best_new = min(best_new, _cpu(lambda d=new, c=chunk: d.find(c)))
        print(
            f"| {new.name} | {best_old * 1000:.1f} | {best_new * 1000:.1f} | "
            f"{best_new / best_old:.2f} | {same} |"
        )

    old_seven = re.compile(f"{DIGIT}{{4}}(?:{SEP_CLASS}?{DIGIT}){{3}}")
    fields = [
        "Re: 来週の打ち合わせについて",
        "山田 太郎 <taro.yamada@example.co.jp>",
        "見積書_20261201.pdf",
        "Invoice 2026-12-01 order 12345678",
        "ご注文番号 1234567 の件（12月1日）",
    ] * 200

    always, gated, gate = registry._maskers()

    def old_mask_others(text: str) -> str:  # mask_others as it was, with the old test
        if len(text) < 7 or old_seven.search(text) is None:
            return text
        for mask in always:
            text = mask(text)
        for name in gate.hits(text):
            if name in gated:
                text = gated[name](text)
        return text

    assert all(old_mask_others(f) == registry.mask_others(f) for f in fields)

    def before() -> None:
        for f in fields:
            old_mask_others(f)

    def after() -> None:
        for f in fields:
            registry.mask_others(f)

    registry.mask_others("warm-up 1234567")
    best_old = best_new = float("inf")
    for _ in range(args.repeat):
        best_old = min(best_old, _cpu(before))
        best_new = min(best_new, _cpu(after))
    n = len(fields)
    print()
    print("| mask_others per field | before (µs CPU) | after |")
    print("|---|---|---|")
    print(
        f"| {n} subjects, addresses, file names | {best_old / n * 1e6:.2f} | {best_new / n * 1e6:.2f} |"
    )


if __name__ == "__main__":
    main()
