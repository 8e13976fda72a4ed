"""False alarms a careless-sender review of 3 Dec 2026 (fourth round) found: a
マイナンバー word somewhere in the mail made any unlabelled-looking 12-digit number
``high``, although a label right before it names another number; an English "my
number" before a +81 mobile number; a yen amount."""

from __future__ import annotations

import pytest

from dlp.detect.mynumber import build_detector
from dlp.model import Confidence, TextChunk

N = "621498320257"  # passes the check digit
SIGNATURE = "\n\n--\n市民課 マイナンバーカード推進係\n"
FAR = "マイナンバーカードの交付についてご案内します。" + "詳細は別紙をご覧ください。" * 6 + "\n"


def conf(text: str) -> Confidence | None:
    found = build_detector().find(TextChunk(text, "body"))
    return max((m.confidence for m in found), key=lambda c: c.rank, default=None)


@pytest.mark.parametrize(
    "label",
    ["資産番号", "機器番号", "端末番号", "ライセンス番号", "認証番号", "納付番号", "確認番号",
     "通知番号", "照会番号", "保険証番号", "案件番号", "交付通知書番号", "納品書番号",
     "お支払番号", "払込票番号", "申請書ID", "証明書番号", "文書番号", "依頼番号", "検体番号",
     "製造No.", "団体No", "交付番号", "保守契約ID", "セッションID", "資産No",
     "Asset tag", "S/N", "Device ID", "PO#", "Ref.", "Case No.", "License No.", "Quote #"],
)  # fmt: skip
def test_a_label_of_another_number_right_before_it_wins_over_a_distant_keyword(label: str) -> None:
    assert conf(f"{FAR}{label}：{N}{SIGNATURE}") is not Confidence.HIGH


@pytest.mark.parametrize(
    "text",
    [
        f"マイナンバー：{N}",
        f"個人番号 {N}",
        f"{FAR}個人番号（マイナンバー）：{N}",
        f"{FAR}番号：{N}",  # a bare 番号 names nothing else
        f"{FAR}マイナンバー番号 {N}",
    ],
)
def test_my_number_labels_stay_high(text: str) -> None:
    assert conf(text) is Confidence.HIGH


@pytest.mark.parametrize(
    "text",
    [
        "Please just call my number: +81 90 1234 5678 when you arrive.",
        "my number is +81-90-1234-5678",
        "My number: +819012345678",
    ],
)
def test_an_english_my_number_before_a_plus_81_mobile_is_a_phone(text: str) -> None:
    digits = "".join(c for c in text if c.isdigit())
    assert digits.startswith("8190")
    found = build_detector().find(TextChunk(text, "body"))
    assert all(m.confidence is Confidence.LOW for m in found), found


def test_a_plus_81_number_after_a_japanese_keyword_stays_high() -> None:
    # マイナンバー right before: whatever it looks like, it was written as the number
    text = "マイナンバー：" + "819012345678"
    if build_detector().find(TextChunk(text, "body")):
        assert conf(text) is Confidence.HIGH


@pytest.mark.parametrize("text", [f"歳出見込額は {N}円です。", f"前年度は ¥{N} でした。",
                                  f"合計 ￥{N}", f"{N} 円"])  # fmt: skip
def test_a_yen_amount_is_not_a_my_number(text: str) -> None:
    assert conf(FAR + text) is not Confidence.HIGH


def _valid(base: str) -> str:
    from dlp.detect.mynumber import check_digit

    return base + str(check_digit(base))


def test_a_long_list_under_one_heading_is_high_all_the_way_down() -> None:
    """A PDF table has no columns: the header keyword reached the first six rows of a
    40-person list, the rest were ``medium`` (a content review of 3 Dec 2026)."""
    rows = [f"{i:02d}  山田 太郎{i:02d}  {_valid(f'{31415926535 + i * 7919:011d}')}" for i in range(40)]
    text = "No.  氏名  個人番号\n" + "\n".join(rows) + "\n"
    found = build_detector().find(TextChunk(text, "attachment:list.pdf page 1"))
    assert len(found) == 40
    assert all(m.confidence is Confidence.HIGH for m in found), [m.reason for m in found][-3:]


def test_a_list_far_from_any_keyword_stays_medium() -> None:
    rows = [_valid(f"{27182818284 + i * 104729:011d}") for i in range(20)]
    text = "納品一覧\n" + "\n".join(rows) + "\n"
    found = build_detector().find(TextChunk(text, "body"))
    assert found and all(m.confidence is not Confidence.HIGH for m in found)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("振込先：みずほ銀行 新宿支店 普通 1234567 カ）マルマルシステム", False),  # every invoice
        ("振込先：○○銀行 本店 当座 7654321 株式会社テスト", False),
        ("口座番号 1234567 （ザイ）ナントカ財団", False),
        ("振込先：みずほ銀行 新宿支店 普通 1234567 ヤマダ タロウ", True),  # a person's
        ("普通徴収への切替 宛名番号 1234567", False),  # a resident-tax notice
        ("保険証の記号番号 12345-1234567", False),
    ],
)
def test_a_company_account_and_other_sevens_are_no_personal_bank_account(
    text: str, found: bool
) -> None:
    from dlp.detect.bank_account import build

    got = [m for m in build().find(TextChunk(text, "body")) if m.confidence is Confidence.HIGH]
    assert bool(got) is found, (text, got)


@pytest.mark.parametrize(
    "text",
    [
        "ウイルス対策ソフトのライセンス番号：4111-1111-1111-1111\n有効期限：2027年3月31日",
        "修学旅行：パスポートの有効期限を確認してください。ツアーコード AB1234567",
        "年金手帳をお持ちください。受付No 2612-031045",
    ],
)
def test_codes_beside_the_words_of_another_identifier_are_not_it(text: str) -> None:
    from dlp.config import ScanSettings
    from dlp.scanner import scan_file

    report = scan_file(text.encode(), "memo.txt", ScanSettings(), "memo")
    assert not [f for f in report.findings if f.confidence is Confidence.HIGH], report.findings


@pytest.mark.parametrize(
    "text",
    [
        f"GCP project mynumber-support-dev, project number {N}",
        f"DB server mynumber-db01 (asset {N})",
        f"env MYNUMBER_DB_HOST=10.0.0.1 account {N}",
    ],
)
def test_a_keyword_glued_into_a_name_is_no_label(text: str) -> None:
    assert conf(text) is not Confidence.HIGH


def test_the_english_keyword_as_a_word_still_counts() -> None:
    assert conf(f"My number: {N}") is Confidence.HIGH
    assert conf(f"my_number: {N}") is Confidence.HIGH
