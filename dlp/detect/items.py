"""Which items of personal data a table holds, named from its column headers.

A leak report (個人情報保護委員会への報告, item ②) asks which items of personal
data were involved: the columns next to the numbers (氏名, 住所, 生年月日 …).
Only these fixed item names ever leave the scanner, never a header's own text
(a header is free text and may itself hold anything)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from dlp.detect.roster import attribute_of, is_name_label

_ATTRIBUTES = {
    "address": "住所",
    "birth date": "生年月日",
    "phone": "電話番号",
    "email": "メールアドレス",
}

_OTHER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("フリガナ", ("フリガナ", "ふりがな", "カナ", "kana")),
    ("性別", ("性別", "gender", "sex")),
    ("年齢", ("年齢", "age")),
    ("メールアドレス", ("メール", "e-mail", "email", "mail")),
    ("郵便番号", ("郵便番号", "〒", "zip", "postal")),
    ("所属", ("所属", "部署", "課名", "department")),
    ("給与・支給額", ("給与", "支給", "賃金", "salary", "年収", "所得")),
    ("口座", ("口座", "account")),
    ("扶養親族", ("扶養", "dependent")),
    ("健康保険・年金", ("保険者番号", "被保険者", "年金", "pension")),
    ("個人番号（マイナンバー）", ("個人番号", "マイナンバー", "my number", "mynumber")),
)


def item_of(label: str) -> str | None:
    """The item of personal data a column headed ``label`` holds, or None."""
    if is_name_label(label):
        return "氏名"
    attribute = attribute_of(label)
    if attribute is not None:
        return _ATTRIBUTES[attribute]
    n = unicodedata.normalize("NFKC", label).strip().lower()
    for item, words in _OTHER:
        if any(w in n for w in words):
            return item
    return None


def items_of(labels: Iterable[str]) -> list[str]:
    """The distinct items, in the order their columns appear."""
    found: list[str] = []
    for label in labels:
        item = item_of(label)
        if item is not None and item not in found:
            found.append(item)
    return found
