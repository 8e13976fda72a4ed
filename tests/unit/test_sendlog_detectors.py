"""The send log records per-detector counts without breaking entries written before
there were several detectors (issue 15): the chain hashes ``to_json()``, so the new
key appears only when a detector other than My Number found something."""

from __future__ import annotations

import json
from pathlib import Path

from dlp.config import ScanSettings
from dlp.model import Action, Recipient, RecipientClass, Verdict
from dlp.scanner import scan_message
from dlp.sendlog import record_for_message
from dlp.sendlog.sqlite_store import SqliteStore

CARD = "4539148803436467"
OLD_KEYS = {
    "time", "event", "audit_key", "message_id", "client_address", "sender", "header_from",
    "subject", "recipients", "attachments", "findings", "mynumber_total", "mynumber_distinct",
    "reportable_scale", "verdict", "next_hop_reply", "scan_error", "actor", "comment", "detail",
}  # fmt: skip
"""The field set of a message entry before issue 15."""


def _record(body: str):  # type: ignore[no-untyped-def]
    raw = f"From: a@example.jp\r\nTo: b@outside.example\r\nSubject: s\r\n\r\n{body}\r\n".encode()
    report = scan_message(raw, ScanSettings(), "t")
    rcpt = Recipient("b@outside.example", "outside.example", RecipientClass.EXTERNAL)
    return record_for_message(
        audit_key="k",
        client_address="127.0.0.1",
        sender="a@example.jp",
        recipients=[rcpt],
        report=report,
        verdict=Verdict(Action.TAG, "identifiers-external"),
        next_hop_reply="250 ok",
    )


def test_old_entries_keep_their_shape_and_new_ones_count_per_detector(tmp_path: Path) -> None:
    plain = _record("お世話になっております。")
    card = _record(f"カード番号 {CARD} でお願いします")
    assert set(plain.to_json()) == OLD_KEYS  # nothing new: hashed exactly as before
    assert card.to_json()["detectors"] == {"credit_card": {"total": 1, "distinct": 1}}
    assert [(f.detector, f.confidence, f.distinct) for f in card.findings] == [
        ("credit_card", "high", 1)
    ]
    store = SqliteStore(tmp_path / "sendlog.db")
    try:
        first, second = store.append(plain), store.append(card)
        assert store.verify().ok
        got = store.get(second)
        assert got is not None and got.record.detectors == card.detectors
        old = store.get(first)
        assert old is not None and old.record.detectors == {}
        # A payload written by the code before issue 15 reads back to the same JSON,
        # so an export or a re-verification hashes the same bytes.
        assert set(old.record.to_json()) == OLD_KEYS
        assert CARD not in json.dumps(got.record.to_json())
    finally:
        store.close()
