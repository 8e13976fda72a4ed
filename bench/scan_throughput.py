"""My Number detector throughput on generated Japanese business text.

Two corpora, generated with a fixed seed (nothing downloaded):

* **digit-poor**: ordinary Japanese business mail (greetings, requests, a date
  or a phone number now and then);
* **digit-rich**: business mail full of numbers: order confirmations
  (date + sequence order numbers, 12 digits), phone lists, schedules,
  invoices with T-numbers, 12-digit slip numbers, staff lists, and some
  My Numbers next to 個人番号;
* **number dump (worst case)**: a CSV-like dump that is half digits: random
  12-digit IDs, order numbers, card numbers, corporate numbers, My Numbers in
  ASCII and full-width, one 12-digit candidate every ~100 bytes.

Measured in the same run, on the same text, one core:

* ``dlp``: ``MyNumberDetector.find`` (boundaries, all digit forms and
  separators, keywords, negative evidence, confidence);
* ``all detectors``: what the scanner runs on one chunk with every detector of
  ``[scan] detectors`` on (the shared keyword gate, each detector's ``find``,
  arbitration between detectors, findings);
* ``naive``: the Purview-documented shape ``\\d{4}[- ]?\\d{4}[- ]?\\d{4}`` with
  digit lookarounds, plus the checksum — no context, no boundaries beyond
  digits, no Unicode separators;
* ``scan_message``: the whole pipeline (MIME parse, charset decode, detector,
  report) on the same text sent as 20 KB ISO-2022-JP / UTF-8 messages.

MB/s counts the UTF-8 bytes of the text.  Prints a markdown table, or with
``--json`` the figures (bench/detector_ab.py runs two trees against each other).
``DLP_TREE`` names the checkout whose ``dlp`` is measured (default: this one).

    .venv/bin/python bench/scan_throughput.py [--mb 16] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, os.environ.get("DLP_TREE") or str(Path(__file__).resolve().parent.parent))

from dlp.config import ScanSettings
from dlp.detect.mynumber import _valid12, build_detector, check_digit
from dlp.detect.registry import NAMES as DETECTOR_NAMES
from dlp.model import TextChunk
from dlp.scanner import _state, scan_message

SENTENCES = [
    "いつもお世話になっております。",
    "株式会社サンプル総務部の山田でございます。",
    "先日はお忙しいところお時間をいただき、誠にありがとうございました。",
    "標記の件につきまして、下記のとおりご連絡申し上げます。",
    "ご不明な点がございましたら、お気軽にお問い合わせください。",
    "来週の打ち合わせの日程について、ご都合をお聞かせいただけますでしょうか。",
    "資料を添付いたしましたので、ご確認のほどよろしくお願いいたします。",
    "引き続きどうぞよろしくお願い申し上げます。",
    "本メールは送信専用アドレスから配信しております。",
    "会議室は本館三階の第二会議室を予約しております。",
    "年末年始の営業についてお知らせいたします。",
    "担当者が不在のため、折り返しご連絡いたします。",
    "Please find the attached document for your review.",
    "ご査収のほどよろしくお願いいたします。",
]
NAMES = [
    "山田太郎",
    "佐藤花子",
    "鈴木一郎",
    "高橋美咲",
    "田中健太",
    "伊藤裕子",
    "渡辺翔",
    "中村あゆみ",
]
FULLWIDTH = {ord("0") + i: 0xFF10 + i for i in range(10)}


def my_number(rng: random.Random) -> str:
    base = "".join(rng.choice("0123456789") for _ in range(11))
    return base + str(check_digit(base))


def digit_poor(rng: random.Random, target: int) -> str:
    out: list[str] = []
    size = 0
    while size < target:
        r = rng.random()
        if r < 0.9:
            s = rng.choice(SENTENCES)
        elif r < 0.95:
            s = f"{rng.randint(2025, 2027)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日（{rng.choice('月火水木金')}）{rng.randint(9, 18)}時から"
        else:
            s = f"TEL: 03-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
        s += "\n" if rng.random() < 0.3 else ""
        out.append(s)
        size += len(s.encode())
    return "".join(out)


def digit_rich(rng: random.Random, target: int) -> str:
    """Business mail full of numbers: order confirmations, invoices, schedules,
    staff lists, with the Japanese prose around them."""
    out: list[str] = []
    size = 0
    while size < target:
        r = rng.random()
        if r < 0.40:
            s = rng.choice(SENTENCES)
        elif r < 0.50:
            base = f"{rng.randint(2024, 2026)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randrange(10000):04d}"
            s = f"注文番号：{base}　数量：{rng.randint(1, 99)}　金額：¥{rng.randint(100, 999999):,}（税込）\n"
        elif r < 0.60:
            s = f"{rng.choice(NAMES)}　電話 0{rng.randint(3, 9)}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}　携帯 090-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}\n"
        elif r < 0.68:
            s = f"{rng.randint(2025, 2027)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日 {rng.randint(9, 18)}:{rng.choice(['00', '30'])}〜 第{rng.randint(1, 9)}会議室\n"
        elif r < 0.74:
            corp = f"{rng.randint(1, 9)}{rng.randrange(10**12):012d}"
            s = f"株式会社サンプル 登録番号 T{corp}　〒{rng.randint(100, 999)}-{rng.randint(1000, 9999)}\n"
        elif r < 0.82:
            s = f"伝票番号 {rng.randrange(10**12):012d}　発行日 {rng.randint(2024, 2026)}/{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}\n"
        elif r < 0.90:
            s = f"{rng.randint(1, 500)},{rng.choice(NAMES)},{rng.randint(1960, 2005)}/{rng.randint(1, 12)}/{rng.randint(1, 28)},{rng.randint(100, 999)}-{rng.randint(1000, 9999)}\n"
        elif r < 0.93:
            n = my_number(rng)
            if rng.random() < 0.3:
                n = f"{n[:4]} {n[4:8]} {n[8:]}"
            s = f"{rng.choice(NAMES)}様の個人番号：{n}\n"
        else:
            s = f"小計 ¥{rng.randint(1000, 99999):,}　消費税 ¥{rng.randint(100, 9999):,}　合計 ¥{rng.randint(1000, 199999):,}\n"
        out.append(s)
        size += len(s.encode())
    return "".join(out)


def number_dump(rng: random.Random, target: int) -> str:
    """Worst case: a CSV-like dump that is half digits, one 12-digit candidate
    every ~100 bytes (random IDs, order numbers, card numbers, My Numbers)."""
    out: list[str] = []
    size = 0
    while size < target:
        r = rng.random()
        if r < 0.15:
            base = f"{rng.randint(2024, 2026)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randrange(10000):04d}"
            s = f"注文番号：{base}　数量：{rng.randint(1, 99)}　金額：¥{rng.randint(100, 999999):,}\n"
        elif r < 0.30:
            s = f"電話 0{rng.randint(3, 9)}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}　FAX 0{rng.randint(3, 9)}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}\n"
        elif r < 0.40:
            s = f"社員{rng.randint(1, 9999)},{rng.choice(NAMES)},{rng.randrange(10**12):012d},090{rng.randrange(10**8):08d},{rng.randint(1960, 2005)}/{rng.randint(1, 12)}/{rng.randint(1, 28)}\n"
        elif r < 0.50:
            corp = f"{rng.randint(1, 9)}{rng.randrange(10**12):012d}"
            s = f"法人番号 {corp}　適格請求書発行事業者登録番号 T{corp}\n"
        elif r < 0.58:
            s = f"カード番号 4{rng.randrange(10**3):03d} {rng.randrange(10**4):04d} {rng.randrange(10**4):04d} {rng.randrange(10**4):04d}\n"
        elif r < 0.70:
            s = f"伝票番号 {rng.randrange(10**12):012d}　発行日 {rng.randint(2024, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}\n"
        elif r < 0.75:
            n = my_number(rng)
            form = rng.random()
            if form < 0.3:
                n = f"{n[:4]}-{n[4:8]}-{n[8:]}"
            elif form < 0.5:
                n = n.translate(FULLWIDTH)
            s = f"{rng.choice(NAMES)}様の個人番号は{n}です。\n"
        elif r < 0.80:
            s = f"{rng.randrange(10**12):012d} {rng.randrange(10**12):012d} {rng.randrange(10**12):012d}\n"
        else:
            s = rng.choice(SENTENCES) + f"（{rng.randint(1, 12)}月{rng.randint(1, 28)}日）\n"
        out.append(s)
        size += len(s.encode())
    return "".join(out)


_NAIVE = re.compile(r"(?<!\d)\d{4}[- ]?\d{4}[- ]?\d{4}(?!\d)")


def naive(text: str) -> int:
    n = 0
    for m in _NAIVE.finditer(text):
        d = m.group().replace("-", "").replace(" ", "")
        if d.isascii() and _valid12(d):
            n += 1
    return n


def ours(text: str) -> int:
    return len(build_detector().find(TextChunk(text, "body")))


def all_detectors(text: str) -> int:
    """One chunk through every detector, as the scanner runs it."""
    st = _state(ScanSettings(detectors=DETECTOR_NAMES))
    st.detect(TextChunk(text, "body"), frozenset())
    return len(st.matches)


def messages(text: str, size: int = 20_000) -> list[bytes]:
    out = []
    for i in range(0, len(text), size // 3):
        body = text[i : i + size // 3]
        charset = "iso-2022-jp" if (i // (size // 3)) % 2 else "utf-8"
        data = body.encode("iso2022_jp", "replace") if charset == "iso-2022-jp" else body.encode()
        out.append(
            b"From: a@example.lg.jp\r\nTo: b@example.com\r\nSubject: =?UTF-8?B?"
            + base64.b64encode("ご連絡".encode())
            + b"?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset="
            + charset.encode()
            + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(data)
        )
    return out


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times = []
    result: object = None
    for _ in range(repeat):
        # CPU time of this process: the figure for "one core", and robust
        # against other work on the machine.
        t = time.process_time()
        result = fn()
        times.append(time.process_time() - t)
    return statistics.median(times), result


def paired(a: Callable[[], object], b: Callable[[], object], repeat: int) -> tuple[float, float]:
    """CPU seconds of ``a`` and ``b``, run alternately, the best of ``repeat`` each."""
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for i, fn in enumerate((a, b)):
            t = time.process_time()
            fn()
            best[i] = min(best[i], time.process_time() - t)
    return best[0], best[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=16.0, help="MB of UTF-8 text per corpus")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    target = int(args.mb * 1_000_000)
    rng = random.Random(args.seed)
    corpora = {
        "digit-poor": digit_poor(rng, target),
        "digit-rich": digit_rich(rng, target),
        "number dump (worst case)": number_dump(rng, target),
    }
    build_detector()  # compile outside the timing
    all_detectors("個人番号 カード番号 免許証 旅券 年金 口座")
    scan = ScanSettings(detectors=("mynumber",))
    scan_all = ScanSettings(detectors=DETECTOR_NAMES)
    rows = []
    for name, text in corpora.items():
        mb = len(text.encode()) / 1e6
        digits = sum(c.isdigit() for c in text) / len(text) * 100
        t_ours, found = timed(lambda text=text: ours(text), args.repeat)
        t_all, found_all = timed(lambda text=text: all_detectors(text), args.repeat)
        t_naive, hits = timed(lambda text=text: naive(text), args.repeat)
        msgs = messages(text)
        # Both settings in turn, best of each: machine load hits both alike, and a
        # ratio of two single runs moved by ±15 % on this shared machine.
        t_msgs, t_msgs_all = paired(
            lambda msgs=msgs: [scan_message(m, scan) for m in msgs],
            lambda msgs=msgs: [scan_message(m, scan_all) for m in msgs],
            max(3, args.repeat),
        )
        rows.append(
            {
                "corpus": name,
                "mb": mb,
                "digits": digits,
                "mynumber": mb / t_ours,
                "all": mb / t_all,
                "naive": mb / t_naive,
                "found": found,
                "found_all": found_all,
                "hits": hits,
                "scan_message": mb / t_msgs,
                "scan_message_all": mb / t_msgs_all,
            }
        )
    if args.json:
        print(json.dumps(rows))
        return
    print(
        f"Python {platform.python_version()}, {platform.machine()}, one core, median of {args.repeat} runs\n"
    )
    print(
        "| corpus | MB (UTF-8) | digits % | My Number MB/s | all detectors MB/s | naive MB/s | "
        "all / naive | findings (My Number, all) | naive hits | scan_message MB/s (My Number only) | "
        "scan_message MB/s (all detectors) | all / My Number only |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['corpus']} | {r['mb']:.1f} | {r['digits']:.1f} | {r['mynumber']:.0f} | {r['all']:.0f} | "
            f"{r['naive']:.0f} | {r['all'] / r['naive']:.2f} | {r['found']}, {r['found_all']} | {r['hits']} | "
            f"{r['scan_message']:.1f} | {r['scan_message_all']:.1f} | "
            f"{r['scan_message_all'] / r['scan_message']:.2f} |"
        )
    latency(scan, "My Number only")
    latency(scan_all, "all detectors")


def latency(scan: ScanSettings, label: str, rounds: int = 300) -> None:
    """Per-message latency of a typical small mail (what an inline scan costs)."""
    from email.message import EmailMessage

    m = EmailMessage()
    m["From"] = "山田 <a@example.lg.jp>"
    m["To"] = "b@example.com"
    m["Subject"] = "お見積りの件"
    m.set_content(
        "いつもお世話になっております。お見積りを添付いたします。注文番号 202611260001 電話 03-1234-5678\n"
        * 40
    )
    rows = "品番,数量,金額\n" + "".join(f"A{i},{i},{i * 1000}\n" for i in range(100))
    m.add_attachment(rows.encode("cp932"), maintype="text", subtype="csv", filename="見積.csv")
    raw = m.as_bytes()
    for _ in range(20):
        scan_message(raw, scan)
    times = []
    for _ in range(rounds):
        t = time.process_time()
        scan_message(raw, scan)
        times.append(time.process_time() - t)
    times.sort()
    print(
        f"\nscan_message latency ({label}), {len(raw):,}-byte Japanese mail with a CP932 CSV attachment: "
        f"median {statistics.median(times) * 1000:.2f} ms, p95 {times[int(rounds * 0.95)] * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
