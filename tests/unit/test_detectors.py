"""The detector plug-in interface and the identifiers other than My Number (issue 15):
positives in the ways offices write them, look-alikes that must not count, the
arbitration between two detectors claiming the same digits, and masking."""

from __future__ import annotations

import pickle

import pytest

from dlp.config import ConfigError, ScanSettings, parse_settings
from dlp.detect import (
    bank_account,
    credit_card,
    drivers_license,
    passport,
    pension_number,
    residence_card,
)
from dlp.detect.base import Detector
from dlp.detect.mynumber import check_digit as mynumber_check
from dlp.detect.mynumber import redact, scrub
from dlp.detect.registry import DEFAULT_ENABLED, NAMES, arbitrate, build_detectors
from dlp.model import TextChunk
from dlp.scanner import scan_file

FW = str.maketrans("0123456789", "０１２３４５６７８９")

VISA = "4539148803436467"
JCB_LOW = next(  # JCB's first IIN
    "352800000000000" + c for c in "0123456789" if credit_card.luhn_ok("352800000000000" + c)
)
JCB_HIGH = next(  # and its last
    "358900000000000" + c for c in "0123456789" if credit_card.luhn_ok("358900000000000" + c)
)
AMEX = "378282246310005"
MASTER_2 = "2221000000000009"


def _luhn(body: str) -> str:
    return next(body + c for c in "0123456789" if credit_card.luhn_ok(body + c))


def _levels(det: Detector, text: str, label: str | None = None) -> list[str]:
    return [m.confidence.value for m in det.find(TextChunk(text, "body", label))]


def test_every_detector_meets_the_protocol() -> None:
    for det in build_detectors(NAMES):
        assert isinstance(det, Detector)
    assert DEFAULT_ENABLED[0] == "mynumber"
    assert set(DEFAULT_ENABLED) <= set(NAMES)


# --- credit_card -------------------------------------------------------------------------------


def test_card_issuer_ranges_and_luhn() -> None:
    for n in (VISA, JCB_LOW, JCB_HIGH, AMEX, MASTER_2, _luhn("601100000000000")):
        assert credit_card.is_valid(n), n
    assert credit_card.issuer(JCB_LOW) == "JCB" and credit_card.issuer(JCB_HIGH) == "JCB"
    assert credit_card.issuer(_luhn("352700000000000")) is None  # just below JCB
    assert credit_card.issuer(_luhn("359000000000000")) is None  # just above
    assert not credit_card.is_valid(VISA[:-1] + str((int(VISA[-1]) + 1) % 10))
    assert not credit_card.is_valid(_luhn("123456789012345"))  # no issuer starts with 1


@pytest.mark.parametrize(
    "text",
    [
        f"カード番号：{VISA[:4]}-{VISA[4:8]}-{VISA[8:12]}-{VISA[12:]}",
        f"クレジットカード {JCB_LOW} 有効期限 12/28",
        f"お支払い VISA {VISA.translate(FW)}",
        f"card number: {AMEX[:4]} {AMEX[4:10]} {AMEX[10:]}",
        f"有効期限 09/27 の JCB {JCB_HIGH[:4]}\u3000{JCB_HIGH[4:8]}\u3000{JCB_HIGH[8:12]}\u3000{JCB_HIGH[12:]}",
    ],
)
def test_card_with_keyword_is_high(text: str) -> None:
    assert _levels(credit_card.build(), text) == ["high"]


def test_card_confidence_without_keyword() -> None:
    det = credit_card.build()
    assert _levels(det, f"ref {VISA} ok") == ["low"]  # the check alone
    grouped = f"{VISA[:4]}-{VISA[4:8]}-{VISA[8:12]}-{VISA[12:]}"
    assert _levels(det, f"メモ {grouped}") == ["medium"]  # the card's layout
    assert _levels(det, VISA, label="カード番号") == ["high"]  # column header
    assert _levels(det, f"注文番号 {VISA}") == []  # another number's label: low -> dropped


@pytest.mark.parametrize(
    "text",
    [
        f"カード番号 {VISA[:-1]}{(int(VISA[-1]) + 1) % 10}",  # wrong check digit
        "カード番号 4111 1111 1111 1111",  # a placeholder, not a card
        f"カード番号 {VISA}1",  # seventeen digits: Visa has 13, 16 or 19
        f"カード番号 1234-{VISA}",  # a window of a longer grouped number
        f"カード番号 ID{VISA}",  # glued to an identifier
        "JAN 4901234567894 カード番号",
        "カード会員様 電話 03-1234-5678",
    ],
)
def test_card_lookalikes_are_not_found(text: str) -> None:
    assert _levels(credit_card.build(), text) == []


# --- drivers_license ---------------------------------------------------------------------------


def test_licence_check_digit() -> None:
    # d1..d10 weighted 5,4,3,2,7,6,5,4,3,2; 11th digit = last digit of 11 - sum mod 11.
    assert drivers_license.check_digit("3019123456") == 8
    assert drivers_license.is_valid("301912345680")
    assert drivers_license.is_valid("3019-1234-5681")  # 12th: reissued once
    assert not drivers_license.is_valid("301912345670")  # check digit
    assert not drivers_license.is_valid("991912345680")  # no authority 99


def test_licence_needs_its_keyword() -> None:
    det = drivers_license.build()
    assert _levels(det, "運転免許証番号 第３０１９１２３４５６８０号".translate(FW)) == ["high"]
    assert _levels(det, "免許証 3019-1234-5680") == ["high"]
    assert _levels(det, "Driver's License No. 301912345680") == ["high"]
    assert _levels(det, "301912345680", label="免許証番号") == ["high"]
    assert _levels(det, "氏名 山田 301912345680") == []  # context decides: a keyword
    assert _levels(det, "伝票 301912345680") == []  # valid, but nothing says licence
    assert _levels(det, "運転免許証番号 301912345670") == []


# --- residence_card, passport, pension_number --------------------------------------------------


def test_residence_card() -> None:
    det = residence_card.build()
    assert _levels(det, "在留カード番号 AB12345678CD") == ["high"]
    assert _levels(det, "在留カード番号：ＡＢ１２３４５６７８ＣＤ") == ["high"]
    assert _levels(det, "ref AB12345678CD") == []  # context decides
    assert _levels(det, "在留カード AB1234567CD") == []  # seven digits
    assert _levels(det, "在留カード ab12345678cd") == []  # a hash, not a card
    assert _levels(det, "在留カード file_AB12345678CD.pdf") == []


def test_passport_context_decides() -> None:
    det = passport.build()
    assert _levels(det, "旅券番号 TK1234567") == ["high"]
    assert _levels(det, "Passport No.: TR7654321") == ["high"]
    assert _levels(det, "TK1234567", label="パスポート番号") == ["high"]
    assert _levels(det, "型番 TK1234567 の在庫") == []
    assert _levels(det, "旅券番号 TK12345678") == []


def test_pension_context_decides() -> None:
    det = pension_number.build()
    assert _levels(det, "基礎年金番号 1234-567890") == ["high"]
    assert _levels(det, "年金手帳の番号は１２３４５６７８９０です") == ["high"]
    assert _levels(det, "電話 1234-567890") == []
    assert _levels(det, "基礎年金番号 1234-5678901") == []


# --- arbitration -------------------------------------------------------------------------------

BOTH = "301500002930"  # a valid licence number whose 12th digit is also a My Number check digit


def test_the_same_digits_are_claimed_once() -> None:
    assert drivers_license.is_valid(BOTH) and mynumber_check(BOTH[:11]) == int(BOTH[11])
    dets = build_detectors(NAMES)

    def claims(text: str) -> list[tuple[str, str]]:
        found = [m for d in dets for m in d.find(TextChunk(text, "body"))]
        return [(m.detector, m.confidence.value) for m in arbitrate(found)]

    assert claims(f"運転免許証番号 {BOTH}") == [("drivers_license", "high")]
    assert claims(f"個人番号 {BOTH}") == [("mynumber", "high")]
    # Both keywords: the nearer one decides.
    assert claims(f"個人番号（別紙） 運転免許証番号 {BOTH}") == [("drivers_license", "high")]
    assert claims(f"運転免許証は別紙 個人番号 {BOTH}") == [("mynumber", "high")]


# --- scanner, masking, config ------------------------------------------------------------------


def test_scan_report_summaries_per_detector() -> None:
    text = f"氏名,カード番号,運転免許証番号\n山田,{VISA},{BOTH}\n".encode()
    r = scan_file(text, "list.csv", ScanSettings(), "t")
    assert {f.detector for f in r.findings} == {"credit_card", "drivers_license"}
    assert r.summary("credit_card").high == 1 and r.mynumber.distinct == 0
    js = r.to_json()["summary"]
    assert isinstance(js, dict)
    assert set(js) == set(DEFAULT_ENABLED)
    assert js["credit_card"] == {
        "total": 1,
        "distinct": 1,
        "by_confidence": {"high": 1, "medium": 0, "low": 0},
    }
    # With the licence detector off, its number is only a checksum-valid My Number shape.
    only = scan_file(text, "list.csv", ScanSettings(detectors=("mynumber",)), "t")
    assert [(f.detector, f.confidence.value) for f in only.findings] == [("mynumber", "low")]
    assert set(only.to_json()["summary"]) == {"mynumber"}  # type: ignore[arg-type]


def test_matches_do_not_leave_the_process() -> None:
    (m,) = credit_card.build().find(TextChunk(f"カード番号 {VISA}", "body"))
    assert VISA not in repr(m) and VISA not in str(m)
    with pytest.raises(TypeError):
        pickle.dumps(m)


def test_scrub_and_redact_mask_every_detector() -> None:
    text = (
        f"Re: カード番号 {VISA[:4]}-{VISA[4:8]}-{VISA[8:12]}-{VISA[12:]} / 在留カード AB12345678CD"
        " / 旅券番号 TK1234567 / 注文 20261201-0001"
    )
    out = scrub(text)
    assert VISA[:4] + "-" not in out and "AB12345678CD" not in out and "TK1234567" not in out
    assert "20261201-0001" in out  # other numbers stay readable
    assert scrub(out) == out
    # A passport shape without its keyword is a product code: left as it is.
    assert scrub("型番 TK7654321 の在庫") == "型番 TK7654321 の在庫"
    assert "TK1234567" not in redact(text) and VISA not in redact(f"file {VISA}.csv")


def test_config_names_detectors() -> None:
    s = parse_settings({"scan": {"detectors": ["mynumber", "credit_card"]}})
    assert s.scan.detectors == ("mynumber", "credit_card")
    with pytest.raises(ConfigError, match="unknown detector 'iban'"):
        parse_settings({"scan": {"detectors": ["mynumber", "iban"]}})
    with pytest.raises(ConfigError, match="unknown detector 'creditcard'"):
        parse_settings(
            {"policy": {"rules": [{"name": "x", "action": "tag", "detector": "creditcard"}]}}
        )


def test_every_keyword_passes_its_detectors_gate() -> None:
    for mod in (credit_card, drivers_license, residence_card, passport, pension_number):
        for word in mod.KEYWORDS:
            assert any(g in word for g in mod.GATE), (mod.NAME, word)


def test_a_keyword_in_the_subject_reaches_a_gated_detector() -> None:
    from dlp.scanner import scan_message

    raw = (
        "From: a@example.jp\r\nTo: b@example.com\r\nSubject: 運転免許証の写し\r\n\r\n"
        "番号は 301912345680 です。\r\n"
    ).encode()
    r = scan_message(raw, ScanSettings(), "t")
    assert [(f.detector, f.confidence.value) for f in r.findings] == [("drivers_license", "medium")]
    plain = raw.replace("運転免許証の写し".encode(), b"copy")
    assert scan_message(plain, ScanSettings(), "t").summary("drivers_license").total == 0


def test_bank_account_context_decides() -> None:
    from dlp.detect import bank_account

    det = bank_account.build()
    assert _levels(det, "振込先：みずほ銀行 渋谷支店 普通 1234567") == ["high"]
    assert _levels(det, "口座番号：１２３４５６７") == ["high"]
    assert _levels(det, "1234567", label="口座番号") == ["high"]
    assert _levels(det, "ゆうちょ銀行 記号番号 12345-12345678") == ["high"]
    assert _levels(det, "注文番号 1234567") == []
    assert _levels(det, "口座番号 12345678") == []  # eight digits
    assert _levels(det, "口座へ 1,234,567円 を振り込みました") == []  # an amount
    for word in bank_account.KEYWORDS:
        assert any(g in word for g in bank_account.GATE), word


def test_bank_account_in_a_csv_row() -> None:
    from dlp.detect import bank_account

    row = "銀行名,支店名,種別,口座番号\n三井住友銀行,本店,当座,2618667"
    assert _levels(bank_account.build(), row) == ["high"]
    assert _levels(bank_account.build(), "口座 ¥2618667") == []


# --- roster ------------------------------------------------------------------------------------


def _roster_csv(n: int, header: str = "氏名,住所,電話番号", title: str = "") -> bytes:
    rows = "".join(f"職員{i:05d},東京都千代田区{i}-1,03-{i % 10000:04d}-0000\n" for i in range(n))
    return (title + header + "\n" + rows).encode()


def test_roster_counts_persons_in_a_table() -> None:
    r = scan_file(_roster_csv(25, title="職員名簿 2026年度\n\n"), "名簿.csv", ScanSettings(), "t")
    (f,) = [f for f in r.findings if f.detector == "roster"]
    assert f.confidence.value == "high" and f.masked == "25 persons"
    assert f.location == "attachment:名簿.csv" and "職員" not in f.reason
    assert r.summary("roster").distinct == 25 and not r.reportable_scale
    big = scan_file(_roster_csv(1001), "all.csv", ScanSettings(), "t")
    assert big.summary("roster").distinct == 1001 and big.reportable_scale
    assert "職員00001" not in str(big.to_json())


@pytest.mark.parametrize(
    "data",
    [
        "商品名,住所\nりんご,青森\nみかん,愛媛\n",  # no name column
        "会社名,住所,電話\n株式会社A,東京,03-0000-0000\n株式会社B,大阪,06-0000-0000\n",
        "氏名,部署\n山田太郎,総務\n佐藤花子,経理\n",  # names without address/birth/phone
        "氏名,住所\n山田太郎,東京都\n",  # one person: a signature, a form
        # computers, not persons (a DHCP or inventory export)
        "Name,Client IP Address\npc-001,10.0.0.1\npc-002,10.0.0.2\n",
        "Name,IPv4Address,MAC address\nsrv1,10.0.0.9,00:11:22:33:44:55\nsrv2,10.0.0.8,aa\n",
        "名前,IPアドレス\nルーター,192.168.0.1\nプリンタ,192.168.0.2\n",
        # where a machine stands, not where a person lives (a PC inventory)
        "使用者氏名,所在地\n山田太郎,本庁舎3F\n佐藤花子,2階会議室\n鈴木一郎,別館1F\n",
    ],
)
def test_tables_that_are_no_roster(data: str) -> None:
    r = scan_file(data.encode(), "t.csv", ScanSettings(), "t")
    assert r.summary("roster").total == 0


def test_a_large_roster_to_outside_is_held_by_the_default_policy() -> None:
    from pathlib import Path

    from dlp.config import load_file
    from dlp.model import Recipient, RecipientClass
    from dlp.policy import decide

    settings = load_file(Path(__file__).resolve().parents[2] / "config" / "dlp.toml")
    outside = [Recipient("a@kaisha.example", "kaisha.example", RecipientClass.EXTERNAL)]
    big = scan_file(_roster_csv(1001), "all.csv", settings.scan, "t")
    verdict = decide(big, outside, "me@example.lg.jp", settings.policy)
    assert (verdict.action.value, verdict.rule) == ("hold", "roster-external")
    assert "roster (persons): 1001 distinct" in " ".join(verdict.reasons)
    small = scan_file(_roster_csv(30), "team.csv", settings.scan, "t")
    assert decide(small, outside, "me@example.lg.jp", settings.policy).rule == (
        "identifiers-external"
    )


def test_roster_in_a_spreadsheet_and_a_word_table() -> None:
    import io

    import docx
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "名簿"
    ws.append(["職員名簿 2026年度"])
    ws.append([])
    ws.append(["No", "氏名", "生年月日", "部署"])
    for i in range(12):
        ws.append([i + 1, f"職員{i}", f"1990/01/{i + 1:02d}", "総務"])
    buf = io.BytesIO()
    wb.save(buf)
    r = scan_file(buf.getvalue(), "名簿.xlsx", ScanSettings(), "t")
    assert [(f.detector, f.location, f.masked) for f in r.findings] == [
        ("roster", "attachment:名簿.xlsx!名簿", "12 persons")
    ]
    doc = docx.Document()
    table = doc.add_table(rows=1, cols=3)
    for cell, head in zip(table.rows[0].cells, ["氏名", "住所", "電話"], strict=True):
        cell.text = head
    for i in range(5):
        row = table.add_row().cells
        row[0].text, row[1].text, row[2].text = f"社員{i}", f"東京都{i}", f"03-0000-000{i}"
    buf = io.BytesIO()
    doc.save(buf)
    r = scan_file(buf.getvalue(), "名簿.docx", ScanSettings(), "t")
    assert r.summary("roster").distinct == 5
    assert [f.location for f in r.findings] == ["attachment:名簿.docx!body!table1"]


def test_each_detector_names_itself() -> None:
    """Sender notices, reviewer reasons, the console and the leak report take a
    detector's names from the registry, which takes them from the detector."""
    import importlib

    from dlp.detect.registry import display_name, labels

    for name in NAMES:
        names = labels(name)
        assert names.ja and names.en and names.en_found, name
        assert name not in (names.ja, names.en_found), name
        assert display_name(name, "ja") == names.ja and display_name(name, "en") == names.en
        assert names.ja_found == names.ja + "と思われる情報"
        module = importlib.import_module(f"dlp.detect.{name}")
        if hasattr(module, "LABELS"):  # My Number and card: still in the registry line
            assert module.LABELS is names, name
    # a name from an old log entry, of a detector since removed, is shown as it is
    assert labels("gone_detector").item == display_name("gone_detector", "en") == "gone_detector"


def test_no_detector_is_named_outside_its_module() -> None:
    """A new detector needs no edit outside dlp/detect: no table elsewhere spells
    a detector's name (My Number and the roster are named where their counts have
    a meaning of their own: the reportable scale of each law)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "dlp"
    files = [
        p
        for p in [*root.rglob("*.py"), *root.rglob("*.html")]
        if "detect" not in p.relative_to(root).parts
    ]
    for name in NAMES:
        if name in ("mynumber", "roster"):
            continue
        for path in files:
            text = path.read_text(encoding="utf-8")
            for quote in ('"', "'"):
                assert f"{quote}{name}{quote}" not in text, (name, path)


def test_notices_name_each_detector_from_its_labels() -> None:
    from dlp.config import PolicySettings, Rule
    from dlp.detect.registry import labels
    from dlp.model import Recipient, RecipientClass
    from dlp.policy import decide

    outside = [Recipient("a@kaisha.example", "kaisha.example", RecipientClass.EXTERNAL)]
    body = "運転免許証番号: 301912345680\n"
    report = scan_file(body.encode(), "免許.txt", ScanSettings(), "t")
    policy = PolicySettings(rules=(Rule(name="dl", action="hold", detector="drivers_license"),))
    verdict = decide(report, outside, "me@example.lg.jp", policy)
    assert verdict.rule == "dl"
    assert "運転免許証番号と思われる情報: 添付ファイル「免許.txt」" in verdict.smtp_message
    assert "what appear to be driving licence numbers" in verdict.smtp_message
    assert "driving licence: 1 distinct" in " ".join(verdict.reasons)
    assert labels("roster").ja_found == "個人の名簿と思われる情報"


def test_the_leak_report_names_items_from_the_detectors() -> None:
    from dlp.incident.report import item_name

    assert item_name("roster") == "氏名と、住所・生年月日・電話番号のいずれか（名簿）"
    assert item_name("passport") == "旅券番号"
    assert item_name("mynumber") == "個人番号（マイナンバー）"
    assert item_name("氏名") == "氏名"  # a column item recorded as its fixed name


# --- digits in other scripts ---------------------------------------------------------------------

SCRIPTS = {
    "arabic-indic": 0x0660,
    "extended-arabic-indic": 0x06F0,
    "devanagari": 0x0966,
    "bengali": 0x09E6,
    "math-bold": 0x1D7CE,
    "math-monospace": 0x1D7F6,
}


def _in_script(text: str, zero: int) -> str:
    return text.translate({ord("0") + i: zero + i for i in range(10)})


@pytest.mark.parametrize("zero", SCRIPTS.values(), ids=SCRIPTS.keys())
@pytest.mark.parametrize(
    ("module", "text", "value"),
    [
        (drivers_license, "運転免許証番号 {}", "3019-1234-5680"),
        (pension_number, "基礎年金番号 {}", "1234-567890"),
        (bank_account, "振込先：みずほ銀行 渋谷支店 普通 {}", "1234567"),
        (passport, "旅券番号 {}", "TK1234567"),
        (residence_card, "在留カード番号 {}", "AB12345678CD"),
    ],
    ids=lambda v: getattr(v, "NAME", None) or "",
)
def test_keyword_gated_detectors_read_digits_in_any_script(
    module: object, text: str, value: str, zero: int
) -> None:
    """A number typed or pasted in another script (Arabic-Indic, Devanagari,
    mathematical digits …) is the same number, as it is for My Number: found,
    counted as its ASCII value, and masked wherever the scanner's output goes."""
    det = module.build()  # type: ignore[attr-defined]
    written = _in_script(value, zero)
    assert written != value
    line = text.format(written)
    (hit,) = det.find(TextChunk(line, "body"))
    assert hit.confidence.value == "high"
    assert hit.value == value.replace("-", "")  # distinct counting: the ASCII value
    # the same value in ASCII and in the other script is one distinct value
    report = scan_file(f"{text.format(value)}\n{line}\n".encode(), "a.txt", ScanSettings(), "t")
    assert report.summary(module.NAME).distinct == 1  # type: ignore[attr-defined]
    # masked in everything that leaves the scanner, with its keyword (as in ASCII)
    for out in (scrub(line), redact(line), det.mask(line)):
        assert written not in out and written.split("-")[0] not in out, out


def test_digits_in_other_scripts_without_a_keyword_are_left_alone() -> None:
    # ASCII-only text takes the ASCII pre-test in masking; it still masks
    assert scrub("Passport No.: TK1234567") == "Passport No.: *********"
    zero = SCRIPTS["arabic-indic"]
    for module, value in ((pension_number, "1234-567890"), (bank_account, "1234567")):
        det = module.build()
        assert _levels(det, "注文 " + _in_script(value, zero)) == []
        assert scrub("注文 " + _in_script(value, zero)) == "注文 " + _in_script(value, zero)


def test_a_mailing_list_is_a_roster_of_names_and_mail_addresses() -> None:
    data = "Name,Email Address\n" + "".join(f"User {i},u{i}@example.com\n" for i in range(30))
    r = scan_file(data.encode(), "list.csv", ScanSettings(), "t")
    (f,) = [f for f in r.findings if f.detector == "roster"]
    assert f.masked == "30 persons" and "email" in f.reason and "address" not in f.reason


@pytest.mark.parametrize(
    "text",
    [
        "普通科2年 学籍番号 2312045 の山田さん",  # a school's student number, not an account
        "口座振替のお知らせ 水栓番号 1234567",  # a water bill's tap number
    ],
)
def test_other_numbers_labels_lower_an_account(text: str) -> None:
    """A careless-sender review of 3 Dec 2026: tagged as bank accounts to outside."""
    assert "high" not in _levels(bank_account.build(), text)  # not tagged to outside
