"""Issue 14, report item ②: the columns beside the numbers become fixed item names
in the scan report, the send log and the incident draft — never the header text."""

from __future__ import annotations

from datetime import UTC, datetime

from failclosed_support import NUMBERS, ROSTER, SENDER, archive_over_member_budget

from dlp.config import ScanSettings
from dlp.detect.items import item_of, items_of
from dlp.incident.report import items_of as report_items
from dlp.model import Action, Recipient, RecipientClass, Verdict
from dlp.scanner import scan_file, scan_message
from dlp.sendlog.record import SendRecord, record_for_message


def test_headers_map_to_fixed_item_names() -> None:
    assert items_of(
        ["No.", "氏名", "フリガナ", "住所", "生年月日", "電話番号", "個人番号", "備考"]
    ) == [
        "氏名",
        "フリガナ",
        "住所",
        "生年月日",
        "電話番号",
        "個人番号（マイナンバー）",
    ]
    assert item_of("会社名") is None and item_of("品名") is None and item_of("備考") is None
    assert item_of("E-mail") == "メールアドレス" and item_of("基本給与") == "給与・支給額"


def test_a_roster_file_reports_its_items_and_a_clean_table_reports_none() -> None:
    csv = "氏名,住所,生年月日,個人番号\n" + "".join(
        f"山田{i},東京都千代田区{i},1980/01/0{i + 1},{n}\n" for i, n in enumerate(NUMBERS)
    )
    r = scan_file(csv.encode(), "meibo.csv", ScanSettings(), "meibo.csv")
    assert r.mynumber.high == 3
    assert r.items == ("氏名", "住所", "生年月日", "個人番号（マイナンバー）")
    clean = scan_file("氏名,住所\n山田,東京都\n".encode(), "a.csv", ScanSettings(), "a.csv")
    assert clean.items == ()


def test_items_reach_the_send_log_and_the_incident_draft_old_entries_unchanged() -> None:
    report = scan_message(archive_over_member_budget(1), ScanSettings())
    assert report.mynumber.high == 3 and report.items == ("氏名", "個人番号（マイナンバー）")
    assert ROSTER.startswith("氏名,個人番号".encode())
    rec = record_for_message(
        audit_key="k",
        client_address="127.0.0.1",
        sender=SENDER,
        recipients=[Recipient("a@kaisha-abc.jp", "kaisha-abc.jp", RecipientClass.EXTERNAL)],
        report=report,
        verdict=Verdict(Action.HOLD, "mynumber-external"),
        next_hop_reply="",
    )
    assert rec.to_json()["items"] == ["氏名", "個人番号（マイナンバー）"]
    assert SendRecord.from_json(rec.to_json()).items == rec.items
    assert report_items(rec) == ["mynumber", "氏名"]
    # an entry without items keeps the field set its chain hash was computed over
    old = SendRecord(time=datetime(2026, 1, 1, tzinfo=UTC), event="message")
    assert "items" not in old.to_json()
