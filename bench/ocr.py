"""OCR accuracy and speed per case and per set-up (issue 16; figures in BENCHMARKS.md).

Every case is rendered from text by tests/ocr_support.py (card backs, forms,
a spreadsheet screenshot, an A4 page, an image-only PDF, negatives) and read
the way the gateway reads an attachment: ``registry.extract`` (sniff, sandboxed
child, Tesseract) and then the My Number detector on the recognised text.

    .venv/bin/python bench/ocr.py                    # every set-up, a table per set-up
    .venv/bin/python bench/ocr.py --setup default    # one set-up
    .venv/bin/python bench/ocr.py --json             # machine-readable
    .venv/bin/python bench/ocr.py --engines          # + tesserocr vs the tesseract program
    .venv/bin/python bench/ocr.py --hard             # + cases beyond mild degradation

A number counts as found when the detector reports it ``high`` or ``medium``;
a false positive is any number found that the case does not hold (every number
in a negative case).  Seconds are wall-clock per file, and per page (the PDF
has two), one process, with the engine already loaded (the one-off 0.3 s model
load is reported apart); CPU seconds (this process and the sandboxed children;
Tesseract runs single-threaded) are what a quiet machine's wall clock would show.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from ocr_support import Case, cases, hard_cases  # noqa: E402

from dlp.config import OcrSettings, ScanSettings  # noqa: E402
from dlp.detect.mynumber import build_detector  # noqa: E402
from dlp.extract import ocr, registry  # noqa: E402
from dlp.extract.base import Budget  # noqa: E402
from dlp.model import Confidence  # noqa: E402

SETUPS: dict[str, tuple[ocr.Setup, tuple[str, ...]]] = {
    "default": (ocr.Setup(), ("jpn",)),
    "jpn+eng": (ocr.Setup(), ("jpn", "eng")),
    "no second reading": (dataclasses.replace(ocr.Setup(), second_reading=False), ("jpn",)),
    "no preprocessing": (ocr.Setup(preprocess=False, second_reading=False), ("jpn",)),
    "psm 6": (ocr.Setup(psm=6), ("jpn",)),
    "psm 11": (ocr.Setup(psm=11), ("jpn",)),
}


@dataclasses.dataclass
class Row:
    case: str
    expected: int
    found: int
    false_positives: int
    seconds: float
    cpu: float
    """CPU seconds, this process and the sandboxed children: stable on a busy machine."""
    pages: int
    status: str


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_case(case: Case, languages: tuple[str, ...]) -> Row:
    scan = ScanSettings(ocr=OcrSettings(languages=languages, max_pages=50, timeout_seconds=120))
    budget = Budget.from_settings(scan, timeout=120)
    det = build_detector()
    c0 = _cpu()
    t0 = time.perf_counter()
    ext = registry.extract(case.data, case.filename, f"attachment:{case.filename}", budget)
    seconds = time.perf_counter() - t0
    cpu = _cpu() - c0
    found: set[str] = set()
    for chunk in ext.chunks:
        for m in det.find(chunk):
            if m.confidence in (Confidence.HIGH, Confidence.MEDIUM):
                found.add(m.digits)
    return Row(
        case=case.name,
        expected=len(case.expect),
        found=len(found & case.expect),
        false_positives=len(found - case.expect),
        seconds=seconds,
        cpu=cpu,
        pages=case.pages,
        status=ext.status.value + (f" ({ext.detail})" if ext.detail != "ocr" else ""),
    )


def run_setup(name: str, repeat: int, hard: bool = False) -> dict[str, object]:
    setup, languages = SETUPS[name]
    ocr.DEFAULT_SETUP = setup
    t0 = time.perf_counter()
    ocr.engine(languages)
    load = time.perf_counter() - t0
    rows: list[Row] = []
    for case in cases() + (hard_cases() if hard else []):
        runs = [run_case(case, languages) for _ in range(repeat)]
        best = min(runs, key=lambda r: r.seconds)
        rows.append(
            dataclasses.replace(
                best,
                seconds=statistics.median(r.seconds for r in runs),
                cpu=statistics.median(r.cpu for r in runs),
            )
        )
    expected = sum(r.expected for r in rows)
    found = sum(r.found for r in rows)
    pages = sum(r.pages for r in rows)
    return {
        "setup": name,
        "languages": "+".join(languages),
        "model_load_seconds": round(load, 3),
        "recall": f"{found}/{expected}",
        "false_positives": sum(r.false_positives for r in rows),
        "cases_fully_found": sum(1 for r in rows if r.expected and r.found == r.expected),
        "positive_cases": sum(1 for r in rows if r.expected),
        "seconds_total": round(sum(r.seconds for r in rows), 2),
        "seconds_per_page_mean": round(sum(r.seconds for r in rows) / pages, 3),
        "cpu_per_page_mean": round(sum(r.cpu for r in rows) / pages, 3),
        "rows": [dataclasses.asdict(r) for r in rows],
    }


def engine_comparison(repeat: int) -> list[dict[str, object]]:
    """tesserocr (engine kept loaded) against the ``tesseract`` program once per
    image, which is what pytesseract runs; same image, same psm, no preprocessing."""
    import os
    import shutil
    import subprocess
    import tempfile

    from PIL import Image

    exe = shutil.which("tesseract")
    limits = Budget.from_settings(ScanSettings()).ocr
    assert limits is not None
    api = ocr.engine(("jpn",))
    picked = {c.filename: c for c in cases()}
    out: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("card300.png", "form200.png", "a4.png"):
            case = picked[name]
            img = Image.open(io.BytesIO(case.data)).convert("L")
            path = os.path.join(tmp, "page.png")
            img.save(path)
            row: dict[str, object] = {"case": case.name, "pixels": f"{img.width}x{img.height}"}
            times, cpus = [], []
            for _ in range(repeat):
                c0, t0 = _cpu(), time.perf_counter()
                api.SetPageSegMode(3)
                api.SetImage(img)
                api.GetUTF8Text()
                times.append(time.perf_counter() - t0)
                cpus.append(_cpu() - c0)
            row["tesserocr"] = round(statistics.median(times), 3)
            row["tesserocr CPU"] = round(statistics.median(cpus), 3)
            for label, env in (
                ("tesseract program", dict(os.environ, OMP_THREAD_LIMIT="1")),
                (
                    "tesseract program, OpenMP on",
                    {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"},
                ),
            ):
                if not exe:
                    row[label] = None
                    continue
                times, cpus = [], []
                for _ in range(repeat):
                    c0, t0 = _cpu(), time.perf_counter()
                    subprocess.run(
                        [exe, path, "stdout", "-l", "jpn", "--psm", "3"],
                        capture_output=True,
                        env=env,
                        check=True,
                    )
                    times.append(time.perf_counter() - t0)
                    cpus.append(_cpu() - c0)
                row[label] = round(statistics.median(times), 3)
                row[label + " CPU"] = round(statistics.median(cpus), 3)
            out.append(row)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--setup", action="append", choices=sorted(SETUPS), help="default: all")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case (median seconds)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--hard", action="store_true", help="also the hard cases (limits)")
    ap.add_argument(
        "--engines", action="store_true", help="also tesserocr vs the tesseract program"
    )
    args = ap.parse_args()
    why = ocr.unavailable(("jpn", "eng"))
    if why:
        print(f"OCR unavailable: {why}", file=sys.stderr)
        return 2
    results = [run_setup(n, args.repeat, args.hard) for n in (args.setup or list(SETUPS))]
    engines = engine_comparison(max(3, args.repeat)) if args.engines else []
    if args.json:
        print(json.dumps({"setups": results, "engines": engines}, ensure_ascii=False, indent=2))
        return 0
    if engines:
        print("\n## engines: seconds (wall, CPU) per image, median, psm 3, jpn, no preprocessing\n")
        keys = [k for k in engines[0] if k not in ("case", "pixels")]
        print("| case | pixels | " + " | ".join(keys) + " |")
        print("|---|---|" + "---|" * len(keys))
        for e in engines:
            print(f"| {e['case']} | {e['pixels']} | " + " | ".join(str(e[k]) for k in keys) + " |")
    for res in results:
        print(
            f"\n## {res['setup']} ({res['languages']}): recall {res['recall']}, "
            f"false positives {res['false_positives']}, "
            f"cases fully found {res['cases_fully_found']}/{res['positive_cases']}, "
            f"{res['seconds_per_page_mean']} s/page mean ({res['cpu_per_page_mean']} s CPU), "
            f"model load {res['model_load_seconds']} s\n"
        )
        print("| case | found | false pos. | s/file | s/page | CPU s/page | status |")
        print("|---|---|---|---|---|---|---|")
        for r in res["rows"]:  # type: ignore[attr-defined]
            print(
                f"| {r['case']} | {r['found']}/{r['expected']} | {r['false_positives']} | "
                f"{r['seconds']:.2f} | {r['seconds'] / r['pages']:.2f} | "
                f"{r['cpu'] / r['pages']:.2f} | {r['status']} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
