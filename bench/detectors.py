"""Per detector: false positives over every file of the shared corpus, and recall /
false positives on generated cases.

* **corpus**: every file in ``../shared/corpus`` (third-party mail and documents
  that hold none of these identifiers) scanned with *all* detectors on; every
  finding is a false positive, counted per detector and confidence.  A detector is
  on by default only with zero at ``high`` (registry.DEFAULT_ENABLED).
* **generated**: for each detector, valid values written the ways offices write
  them (keyword before, column header, full-width digits, separators, in a CSV),
  and look-alikes that must not count at ``high`` (wrong check digits, JAN codes,
  phone numbers, order numbers, dates, identifiers glued to text).  Fixed seed.

    .venv/bin/python bench/detectors.py [--corpus ../shared/corpus]
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlp.config import ScanSettings
from dlp.detect import credit_card, drivers_license
from dlp.detect.registry import NAMES, build_detectors
from dlp.extract import registry
from dlp.model import Confidence, TextChunk
from dlp.scanner import scan_file, scan_message

FW = str.maketrans("0123456789", "０１２３４５６７８９")


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for c in "0123456789":
        if credit_card.luhn_ok(body + c):
            return body + c
    raise AssertionError


def _licence(rng: random.Random) -> str:
    first = rng.choice(["30", "45", "62", "10", "54", "97"]) + f"{rng.randrange(100):02d}"
    first += "".join(rng.choice("0123456789") for _ in range(6))
    return first + str(drivers_license.check_digit(first)) + str(rng.randrange(3))


def _letters(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(n))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def cases(rng: random.Random) -> dict[str, tuple[list[str], list[str]]]:
    """detector -> (positive texts, negative texts)."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    cc_pos, cc_neg = [], []
    for _ in range(200):
        prefix, n = rng.choice(
            [
                ("4", 16),
                ("53", 16),
                ("2720", 16),
                ("3540", 16),
                ("3589", 16),
                ("37", 15),
                ("36", 14),
                ("62", 16),
            ]
        )
        num = _luhn_complete(prefix, n, rng)
        grouped = (
            "-".join(num[i : i + 4] for i in range(0, 16, 4))
            if n == 16
            else f"{num[:4]} {num[4:10]} {num[10:]}"
        )
        form = rng.choice(
            [
                f"カード番号：{grouped}",
                f"クレジットカード {num} 有効期限 12/28",
                f"お支払い: VISA {grouped.translate(FW)}",
                f"card number: {grouped}",
                f"氏名,カード番号\n山田太郎,{num}",
            ]
        )
        cc_pos.append(form)
        bad = num[:-1] + str((int(num[-1]) + rng.randrange(1, 10)) % 10)
        cc_neg += [
            f"カード番号：{bad}",  # wrong Luhn digit
            f"注文番号 {_luhn_complete('1', 16, rng)}",  # no issuer range
            f"JAN 49{_digits(rng, 11)}",
            f"電話 03-{_digits(rng, 4)}-{_digits(rng, 4)}",
            f"伝票 {_digits(rng, 8)}-{_digits(rng, 8)}",
        ]
    out["credit_card"] = (cc_pos, cc_neg)
    dl_pos, dl_neg = [], []
    for _ in range(200):
        lic = _licence(rng)
        dl_pos.append(
            rng.choice(
                [
                    f"運転免許証番号 第{lic}号",
                    f"免許証の番号: {lic.translate(FW)}",
                    f"driver's license no. {lic}",
                    f"氏名,運転免許証番号\n佐藤花子,{lic}",
                ]
            )
        )
        bad = lic[:10] + str((int(lic[10]) + rng.randrange(1, 10)) % 10) + lic[11]
        dl_neg += [f"運転免許証番号 {bad}", f"免許証 {lic}0", f"注文番号 {lic}"]
    out["drivers_license"] = (dl_pos, dl_neg)
    rc_pos, rc_neg = [], []
    for _ in range(200):
        v = _letters(rng, 2) + _digits(rng, 8) + _letters(rng, 2)
        rc_pos.append(rng.choice([f"在留カード番号 {v}", f"residence card: {v}"]))
        rc_neg += [
            f"在留カード {_letters(rng, 2)}{_digits(rng, 7)}{_letters(rng, 2)}",
            f"ファイル report_{v}.pdf",
            f"token {v.lower()}",
        ]
    out["residence_card"] = (rc_pos, rc_neg)
    pp_pos, pp_neg = [], []
    for _ in range(200):
        v = rng.choice(["TK", "TR", "MZ", "TZ", "TH"]) + _digits(rng, 7)
        pp_pos.append(rng.choice([f"旅券番号 {v}", f"パスポート番号：{v}", f"Passport No. {v}"]))
        pp_neg += [f"品番 {v}", f"型番 {v} の在庫", f"旅券番号 {v}1"]
    out["passport"] = (pp_pos, pp_neg)
    pn_pos, pn_neg = [], []
    for _ in range(200):
        v = f"{_digits(rng, 4)}-{_digits(rng, 6)}"
        pn_pos.append(rng.choice([f"基礎年金番号 {v}", f"年金手帳の番号: {v}"]))
        pn_neg += [f"電話 {_digits(rng, 4)}-{_digits(rng, 6)}", f"注文 {v}", f"基礎年金番号 {v}9"]
    out["pension_number"] = (pn_pos, pn_neg)
    ba_pos, ba_neg = [], []
    for _ in range(200):
        v = _digits(rng, 7)
        ba_pos.append(
            rng.choice(
                [
                    f"振込先：みずほ銀行 渋谷支店 普通 {v}",
                    f"口座番号 {v.translate(FW)}",
                    f"銀行名,支店名,種別,口座番号\n三井住友銀行,本店,当座,{v}",
                    f"account number: {v}",
                ]
            )
        )
        ba_neg += [
            f"注文番号 {v}",
            f"合計 {v[:1]},{v[1:4]},{v[4:]}円",
            f"口座番号 {v}8",
        ]
    out["bank_account"] = (ba_pos, ba_neg)
    return out


def generated() -> list[tuple[str, int, int, int, int]]:
    dets = {d.name: d for d in build_detectors(NAMES)}
    rows = []
    for name, (pos, neg) in cases(random.Random(15)).items():
        d = dets[name]
        hit = sum(
            any(m.confidence is Confidence.HIGH for m in d.find(TextChunk(t, "body"))) for t in pos
        )
        fp = sum(
            any(m.confidence is Confidence.HIGH for m in d.find(TextChunk(t, "body"))) for t in neg
        )
        rows.append((name, hit, len(pos), fp, len(neg)))
    return rows


SURNAMES = ["山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村", "小林", "加藤"]
GIVEN = ["太郎", "花子", "一郎", "美咲", "健", "陽子", "翔太", "由美", "大輔", "さくら"]


def roster_cases(rng: random.Random) -> tuple[list[bytes], list[bytes]]:
    """CSV files: rosters in the headers offices use, and tables that are not."""
    pos, neg = [], []
    for i in range(100):
        n = rng.randrange(2, 60)
        name_h = rng.choice(["氏名", "名前", "お名前", "社員名", "Name"])
        attr_h = rng.choice(["住所", "生年月日", "電話番号", "携帯", "TEL", "Address"])
        rows = [
            f"{rng.choice(SURNAMES)}{rng.choice(GIVEN)},{i}-{k} {_digits(rng, 4)}" for k in range(n)
        ]
        title = rng.choice(["", "職員名簿 2026年度\n\n"])
        pos.append((title + f"{name_h},{attr_h}\n" + "\n".join(rows) + "\n").encode())
        items = "\n".join(f"商品{k},{rng.randrange(100, 9999)}" for k in range(n))
        neg += [
            f"商品名,価格\n{items}\n".encode(),
            f"会社名,住所\n株式会社{i},東京都{i}\n有限会社{i},大阪府{i}\n".encode(),
            f"氏名,住所\n{rng.choice(SURNAMES)}{rng.choice(GIVEN)},東京都{i}\n".encode(),
            "氏名,部署\n山田太郎,総務\n佐藤花子,経理\n".encode(),
        ]
    return pos, neg


def roster_generated() -> tuple[str, int, int, int, int]:
    pos, neg = roster_cases(random.Random(15))
    scan = ScanSettings(detectors=("roster",))
    hit = sum(scan_file(p, "名簿.csv", scan, "g").summary("roster").high > 0 for p in pos)
    fp = sum(scan_file(p, "list.csv", scan, "g").summary("roster").high > 0 for p in neg)
    return ("roster (CSV files)", hit, len(pos), fp, len(neg))


def corpus(root: Path) -> tuple[int, Counter[tuple[str, str]], dict[str, list[str]]]:
    scan = ScanSettings(timeout_seconds=60, detectors=NAMES)
    counts: Counter[tuple[str, str]] = Counter()
    where: dict[str, list[str]] = {}
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.name not in ("README.md", "SOURCES.md")
    )
    for path in files:
        data = path.read_bytes()
        if registry.sniff(data, path.name) == "message":
            report = scan_message(data, scan, str(path))
        else:
            report = scan_file(data, path.name, scan, str(path))
        for f in report.findings:
            counts[(f.detector, f.confidence.value)] += 1
            if f.confidence is Confidence.HIGH:
                where.setdefault(f.detector, []).append(
                    f"{path.relative_to(root)} {f.location} ({f.reason})"
                )
    return len(files), counts, where


def main() -> None:
    ap = argparse.ArgumentParser()
    default = Path(__file__).resolve().parents[3] / "shared" / "corpus"
    ap.add_argument("--corpus", type=Path, default=Path("/work/shared/corpus"))
    args = ap.parse_args()
    root = args.corpus if args.corpus.exists() else default
    print("## Generated cases (high confidence)\n")
    print("| detector | recall | false positives on look-alikes |")
    print("|---|---|---|")
    for name, hit, npos, fp, nneg in [*generated(), roster_generated()]:
        print(f"| {name} | {hit}/{npos} | {fp}/{nneg} |")
    n, counts, where = corpus(root)
    print(f"\n## Corpus: {n} files, all detectors on\n")
    print("| detector | high | medium | low |")
    print("|---|---|---|---|")
    for name in NAMES:
        print(
            f"| {name} | "
            + " | ".join(str(counts[(name, c)]) for c in ("high", "medium", "low"))
            + " |"
        )
    for name, places in where.items():
        print(f"\nhigh {name}:")
        for p in places[:20]:
            print("  " + p)


if __name__ == "__main__":
    main()
