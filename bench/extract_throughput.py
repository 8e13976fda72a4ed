"""Attachment extraction throughput: our extractors against the obvious library route.

Inputs (generated once into --workdir, deterministic):
  roster.xlsx   ≈10 MB workbook, 155 000 rows x 8 columns (names, 12-digit numbers, dates…)
  report.pdf    100-page Japanese PDF (reportlab, HeiseiKakuGo-W5 CID font), 40 lines a page
  csvs.zip      50 CP932 CSV files of 2 000 rows each

Each case runs in a fresh process (so the peak-RSS figure is that case's own):
time is the best of --repeat runs, peak memory the growth of ru_maxrss during the first run
(of this process or, for ours, of the forked parser child, whichever is larger).

  .venv/bin/python bench/extract_throughput.py [--repeat 3] [--workdir /tmp/dlp-bench-extract]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import multiprocessing as mp
import os
import random
import resource
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROWS = 155_000
PDF_PAGES = 100
CSV_FILES = 50
CSV_ROWS = 2_000


def _my_number(rng: random.Random) -> str:
    base = [rng.randrange(10) for _ in range(11)]
    total = 0
    for n in range(1, 12):
        p = base[11 - n]
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    rem = total % 11
    check = 0 if rem <= 1 else 11 - rem
    return "".join(map(str, base)) + str(check)


def make_inputs(workdir: Path) -> dict[str, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {
        "xlsx": workdir / "roster.xlsx",
        "pdf": workdir / "report.pdf",
        "zip": workdir / "csvs.zip",
    }
    rng = random.Random(42)
    if not paths["xlsx"].exists():
        import openpyxl

        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet("名簿")
        ws.append(["連番", "氏名", "フリガナ", "個人番号", "住所", "電話番号", "生年月日", "金額"])
        for i in range(ROWS):
            ws.append(
                [
                    i + 1,
                    f"山田 太郎{i % 100}",
                    "ヤマダ タロウ",
                    int(_my_number(rng)),
                    f"東京都千代田区霞が関1-2-{i % 50}",
                    f"03-1234-{i % 10000:04d}",
                    dt.date(1970 + i % 40, 1 + i % 12, 1 + i % 28),
                    rng.random() * 100000,
                ]
            )
        wb.save(paths["xlsx"])
    if not paths["pdf"].exists():
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.cidfonts import UnicodeCIDFont
        from reportlab.pdfgen import canvas

        pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
        c = canvas.Canvas(str(paths["pdf"]))
        for page in range(PDF_PAGES):
            c.setFont("HeiseiKakuGo-W5", 9)
            c.drawString(40, 810, f"令和6年度 扶養控除等申告書 集計 {page + 1}/{PDF_PAGES}")
            for line in range(40):
                n = _my_number(rng)
                c.drawString(
                    40,
                    790 - line * 19,
                    f"{page * 40 + line + 1:05d} 山田 太郎 個人番号 {n[:4]} {n[4:8]} {n[8:]} "
                    "東京都千代田区霞が関一丁目 続柄 子",
                )
            c.showPage()
        c.save()
    if not paths["zip"].exists():
        with zipfile.ZipFile(paths["zip"], "w", zipfile.ZIP_DEFLATED) as zf:
            for f in range(CSV_FILES):
                rows = ["社員番号,氏名,個人番号,所属"]
                rows += [
                    f"{f * CSV_ROWS + r},佐藤 花子,{_my_number(rng)},総務部"
                    for r in range(CSV_ROWS)
                ]
                zf.writestr(f"部署{f:02d}.csv", ("\r\n".join(rows) + "\r\n").encode("cp932"))
    return paths


# --- the contenders ---------------------------------------------------------------------------


def ours(path: str) -> int:
    from dlp.extract import registry
    from dlp.extract.base import Budget

    def walk(data: bytes, name: str, budget: Budget, depth: int) -> int:
        ex = registry.extract(data, name, f"attachment:{name}", budget)
        chars = sum(len(c.text) for c in ex.chunks)
        if depth < budget.max_depth:
            for m in ex.members:
                chars += walk(m.data, m.name, budget, depth + 1)
        return chars

    data = Path(path).read_bytes()
    budget = Budget(200_000_000, 50_000_000, 2000, 5, 200, time.monotonic() + 120)
    return walk(data, Path(path).name, budget, 0)


def openpyxl_route(path: str) -> int:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    chars = 0
    for ws in wb.worksheets:
        for row in ws.iter_rows(values_only=True):
            for v in row:
                if v is not None:
                    chars += len(str(v))
    wb.close()
    return chars


def calamine_plain(path: str) -> int:
    import python_calamine

    wb = python_calamine.CalamineWorkbook.from_path(path)
    chars = 0
    for name in wb.sheet_names:
        for row in wb.get_sheet_by_name(name).to_python():
            chars += sum(len(str(v)) for v in row)
    return chars


def pdfminer_route(path: str) -> int:
    from pdfminer.high_level import extract_text

    return len(extract_text(path))


def pdfium_plain(path: str) -> int:
    import pypdfium2

    doc = pypdfium2.PdfDocument(path)
    chars = 0
    for page in doc:
        tp = page.get_textpage()
        chars += len(tp.get_text_range())
        tp.close()
        page.close()
    doc.close()
    return chars


def zip_route(path: str) -> int:
    import csv

    from charset_normalizer import from_bytes

    chars = 0
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            raw = zf.read(name)
            best = from_bytes(raw).best()
            text = str(best) if best else raw.decode("utf-8", "replace")
            for row in csv.reader(io.StringIO(text)):
                chars += sum(len(c) for c in row)
    return chars


CASES: list[tuple[str, str, str, Callable[[str], int]]] = [
    ("10 MB xlsx", "xlsx", "ours (calamine, column chunks)", ours),
    ("10 MB xlsx", "xlsx", "openpyxl read_only", openpyxl_route),
    ("10 MB xlsx", "xlsx", "calamine, no chunking (floor)", calamine_plain),
    ("100-page JP PDF", "pdf", "ours (pdfium + pdfminer fallback)", ours),
    ("100-page JP PDF", "pdf", "pdfminer.six extract_text", pdfminer_route),
    ("100-page JP PDF", "pdf", "pypdfium2 plain (floor)", pdfium_plain),
    ("50-CSV zip", "zip", "ours (zip → CSV column chunks)", ours),
    ("50-CSV zip", "zip", "zipfile + charset-normalizer + csv", zip_route),
]


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _children_rss_kib() -> int:
    """Peak RSS of the largest finished child: ours parses in forked children (sandbox.py),
    whose RSS includes the pages shared with this process at the fork."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def _child(fn: Callable[[str], int], path: str, repeat: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    # import everything first so that the figures are the work, not the imports
    import charset_normalizer  # noqa: F401
    import openpyxl  # noqa: F401
    import pdfminer.high_level  # noqa: F401
    import pypdfium2  # noqa: F401
    import python_calamine  # noqa: F401

    from dlp.extract import archive, pdf, registry, spreadsheet, text  # noqa: F401

    before = _rss_kib()
    times: list[float] = []
    chars = 0
    peak = 0
    for i in range(repeat):
        t0 = time.perf_counter()
        chars = fn(path)
        times.append(time.perf_counter() - t0)
        if i == 0:
            peak = max(_rss_kib() - before, _children_rss_kib() - before)
    out.put((min(times), peak, chars))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/dlp-bench-extract")
    args = ap.parse_args()
    paths = make_inputs(Path(args.workdir))
    ctx = mp.get_context("spawn")
    print(
        "inputs: " + ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in paths.values())
    )
    load = os.getloadavg()[0]
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, best of {args.repeat}, load {load:.1f}\n"
    )
    print("| input | extractor | time (s) | peak RSS growth (MB) | chars out |")
    print("|---|---|---:|---:|---:|")
    results: dict[tuple[str, str], float] = {}
    for label, key, name, fn in CASES:
        q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        p = ctx.Process(target=_child, args=(fn, str(paths[key]), args.repeat, q))
        p.start()
        best, peak, chars = q.get(timeout=900)
        p.join()
        results[(label, name)] = best
        print(f"| {label} | {name} | {best:.2f} | {peak / 1024:.0f} | {chars:,} |")
    print()
    xlsx = results[("10 MB xlsx", "openpyxl read_only")] / results[("10 MB xlsx", CASES[0][2])]
    pdf = (
        results[("100-page JP PDF", "pdfminer.six extract_text")]
        / results[("100-page JP PDF", CASES[3][2])]
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(
        f"xlsx: ours is {xlsx:.1f}x faster than openpyxl; PDF: {pdf:.1f}x faster than pdfminer.six"
    )


if __name__ == "__main__":
    main()
