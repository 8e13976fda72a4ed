"""Rosters (名簿): a table whose rows hold a person's name together with an address,
a birth date or a phone number — a staff list, a member list, a class register.

The Act on the Protection of Personal Information (個人情報保護法 第26条, 施行規則
第7条第4号) makes a leak of the personal data of more than 1,000 persons reportable
to the Personal Information Protection Commission, so what matters is how many
persons a message carries: ``distinct`` counts persons (rows), each once however
many files repeat them.

* **What is a roster.**  A table (CSV/TSV, spreadsheet sheet, document table — the
  extractors hand it over as columns headed by their labels) with a *name* column
  (氏名, 名前, お名前, 氏名（漢字）, フルネーム, 社員名/職員名/会員名 ..., name) and
  at least one column of *address* (住所, 現住所, 所在地, address), *birth date*
  (生年月日, 誕生日, date of birth, DOB) or *phone* (電話, TEL, 携帯, 連絡先, phone).
* **Persons.**  The rows below the header whose name cell and at least one of those
  cells are filled.  A person is the name with the first such value (two 山田太郎 at
  different addresses are two persons).
* **Confidence.**  The headers are explicit, so a roster is ``high``; one with a
  single person is not reported (a signature block, a one-line form).

One finding per table (``masked`` = "N persons"), never the names.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from dlp.detect.base import GroupHit, Labels
from dlp.model import Confidence, TextChunk

NAME = "roster"
LABELS = Labels(
    ja="個人の名簿",
    en="roster (persons)",
    en_found="what appears to be a list of persons",
    ja_item="氏名と、住所・生年月日・電話番号のいずれか（名簿）",
)

_NAME_WORDS = ("氏名", "名前", "フルネーム", "氏　名", "社員名", "職員名", "従業員名", "会員名",
               "生徒名", "児童名", "患者名", "利用者名", "顧客名", "参加者名", "受講者名")  # fmt: skip
_NAME_EN = frozenset(
    {"name", "full name", "fullname", "employee name", "member name", "student name"}
)
_NOT_NAME = ("会社名", "法人名", "商品名", "品名", "件名", "ファイル名", "銀行名", "支店名", "店名",
             "部署名", "施設名", "学校名", "団体名", "名前空間")  # fmt: skip
_NAME_HINTS = (*_NAME_WORDS, "name", "Name", "NAME", "ｎａｍｅ", "Ｎａｍｅ", "ＮＡＭＥ")
_ADDRESS = ("住所", "所在地", "居所", "address")
_NETWORK_ADDRESS = re.compile(
    r"(?:ip|ipv[46]|mac|server|host|gateway|dns|network|web|url)[\s_-]*(?:アドレス|address)"
)
_MAIL_ADDRESS = re.compile(r"(?:e?[\s_-]*mail|メール)[\s_-]*(?:アドレス|address)")
_BIRTH = ("生年月日", "誕生日", "birth", "dob")
_PHONE = ("電話", "tel", "携帯", "連絡先", "phone", "mobile")

MIN_PERSONS = 2


def _norm(label: str) -> str:
    return unicodedata.normalize("NFKC", label).strip().lower()


def is_name_label(label: str) -> bool:
    n = _norm(label)
    if any(w in label for w in _NOT_NAME):
        return False
    return any(w in label for w in _NAME_WORDS) or n in _NAME_EN


def attribute_of(label: str) -> str | None:
    """ "address", "birth date" or "phone" for such a column header, else None."""
    n = _norm(label)
    if any(w in n for w in _BIRTH):
        return "birth date"
    if _NETWORK_ADDRESS.search(n):
        return None  # a computer's (IP Address, MAC address), not a person's
    if _MAIL_ADDRESS.search(n):
        return "email"
    if any(w in n for w in _ADDRESS):
        return "address"
    if re.search(r"(?<![a-z])tel(?![a-z])", n) or any(w in n for w in _PHONE if w != "tel"):
        return "phone"
    return None


def _data_rows(column: TextChunk) -> list[str]:
    """The cells below the column's header cell (the chunk starts at its first
    non-empty cell; the header is the cell equal to its label)."""
    cells = column.text.split("\n")
    label = (column.field_label or "").strip()
    for i, cell in enumerate(cells):
        if cell.strip() == label:
            return cells[i + 1 :]
    return cells


_POSTAL = re.compile(r"[都道府県市区町村郡]|丁目|番地|\d+\s*[-‐－ー]\s*\d+|\d+番")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def _postal(rows: list[str]) -> bool:
    """Whether a column headed address (所在地, 住所) holds where persons live: most of
    its Japanese values name a prefecture, town or block (東京都…, …3丁目, 1-2-3).  A
    PC inventory's 所在地 (本庁舎3F, 2階会議室) is where a machine stands (a
    careless-sender review of 3 Dec 2026 found one held as a 1,000-person roster)."""
    values = [v.strip() for v in rows[:200] if v.strip()]
    japanese = [v for v in values if _CJK.search(v)]
    if not japanese:
        return True  # other scripts: not judged here
    return sum(1 for v in japanese if _POSTAL.search(v)) * 2 >= len(japanese)


@dataclass(frozen=True)
class RosterDetector:
    """Table detector; per-chunk ``find`` finds nothing (a roster is a table)."""

    min_persons: int = MIN_PERSONS

    @property
    def name(self) -> str:
        return NAME

    def has_keyword(self, text: str) -> bool:
        return False

    def find(self, chunk: TextChunk, *, context_hint: bool = False) -> list[GroupHit]:
        return []

    def mask(self, text: str) -> str:
        return text

    @property
    def header_words(self) -> tuple[str, ...]:
        """A roster's header names a name column with one of these."""
        return _NAME_HINTS

    def reads_header(self, labels: Sequence[str]) -> bool:
        """A table headed ``labels`` may be a roster: a name column and an
        address, birth date or phone column."""
        return any(is_name_label(x) for x in labels) and any(
            attribute_of(x) is not None for x in labels
        )

    def find_table(self, columns: Sequence[TextChunk]) -> list[GroupHit]:
        names = [c for c in columns if c.field_label and is_name_label(c.field_label)]
        attrs = [
            (c, kind)
            for c in columns
            if c.field_label and (kind := attribute_of(c.field_label)) is not None
        ]
        if not names or not attrs:
            return []
        name_col = names[0]
        name_rows = _data_rows(name_col)
        attr_rows = [
            (rows, kind)
            for c, kind in attrs
            if (rows := _data_rows(c)) and (kind != "address" or _postal(rows))
        ]
        if not attr_rows:
            return []
        persons: list[str] = []
        columns_rows = [rows for rows, _ in attr_rows]
        # A plain loop, not a generator per row: a 2 MB CSV has tens of thousands.
        for i, raw in enumerate(name_rows):
            person = raw.strip()
            if not person:
                continue
            for rows in columns_rows:  # the first attribute cell the row fills
                if i < len(rows):
                    detail = rows[i].strip()
                    if detail:
                        persons.append(f"{person}\x00{detail}")
                        break
        if len(persons) < self.min_persons:
            return []
        kinds = sorted({kind for _, kind in attrs})
        reason = f"name column with {', '.join(kinds)}; {len(persons)} rows"
        return [
            GroupHit(
                NAME,
                0,
                len(name_col.text),
                Confidence.HIGH,
                f"{len(persons)} persons",
                reason,
                tuple(persons),
            )
        ]


def build() -> RosterDetector:
    return RosterDetector()
