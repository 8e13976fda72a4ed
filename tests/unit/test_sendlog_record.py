"""Building send-log entries: what is recorded, and that no number is."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sendlog_support import make_record

from dlp.model import (
    Action,
    AttachmentInfo,
    AttachmentStatus,
    Confidence,
    Finding,
    MyNumberSummary,
    ScanReport,
    Verdict,
)
from dlp.sendlog import SendRecord, needs_record, record_for_event, record_for_outcome
from dlp.sendlog.chain import (
    GENESIS,
    ChainRow,
    ChainVerifier,
    Checkpoint,
    canonical_json,
    entry_hash,
)
from dlp.sendlog.record import summarise_findings
from dlp.sendlog.redact import MASK, check_digit_ok, scrub
from dlp.sendlog.timespec import parse_when

VALID = "123456789018"


def test_check_digit() -> None:
    assert check_digit_ok(VALID)
    assert not check_digit_ok("123456789012")
    assert not check_digit_ok("12345678901")


@pytest.mark.parametrize(
    "text",
    [
        f"番号 {VALID}",
        "番号 1234-5678-9018 です",
        "番号 1234 5678 9018",
        "番号 １２３４５６７８９０１８",
        "番号 １２３４－５６７８－９０１８",
        f"{VALID}.csv",
        # Shapes no gap character joins (a review of 3 Dec 2026 found them in the log):
        "件名 1234/5678/9018",
        "memo 1234:5678:9018.txt",
        "番号 １２３４／５６７８／９０１８",
        "番号 一二三四五六七八九〇一八",
        "番号 一二三四　五六七八　九〇一八",
    ],
)
def test_scrub_masks_valid_numbers(text: str) -> None:
    out = scrub(text)
    assert MASK in out
    assert "5678" not in out and "５６７８" not in out and "五六七八" not in out


@pytest.mark.parametrize(
    "text",
    [
        "注文番号 123456789012",  # wrong check digit: not a My Number
        f"<2026{VALID}@host>",  # part of a longer digit run
        "電話 03-1234-5678",
        "2026/12/03 12:34:56",
        "1234/5678/9012",  # wrong check digit
        "一二三四五六七八九〇一二",  # wrong check digit
        "",
    ],
)
def test_scrub_leaves_other_text(text: str) -> None:
    assert scrub(text) == text


def _report(**kw: object) -> ScanReport:
    return ScanReport(source="x", **kw)  # type: ignore[arg-type]


def test_needs_record() -> None:
    deliver = Verdict(Action.DELIVER, "default")
    att = AttachmentInfo("a.pdf", "application/pdf", 1, "0" * 64, AttachmentStatus.SCANNED)
    f = Finding("mynumber", Confidence.LOW, "body", MASK)
    assert not needs_record(_report(), deliver)
    assert needs_record(_report(attachments=(att,)), deliver)
    assert needs_record(_report(findings=(f,)), deliver)
    assert needs_record(_report(), Verdict(Action.REJECT, "lookalike"))
    assert needs_record(_report(), Verdict(Action.TAG, "x"))


def test_findings_summary_is_counts_only() -> None:
    report = _report(
        findings=(
            Finding("mynumber", Confidence.HIGH, "attachment:a.csv!A", MASK, 5, "header 個人番号"),
            Finding("mynumber", Confidence.HIGH, "attachment:a.csv!A", MASK, 30),
            Finding("mynumber", Confidence.LOW, "body", MASK, 10),
            Finding("unscannable", Confidence.MEDIUM, "attachment:b.zip", "encrypted"),
        ),
        summaries={"mynumber": MyNumberSummary(total=3, distinct=2, high=1, low=1)},
    )
    s = summarise_findings(report)
    assert [(x.detector, x.confidence, x.count, x.distinct, x.locations) for x in s] == [
        ("mynumber", "high", 2, 1, 1),
        ("mynumber", "low", 1, 1, 1),
        ("unscannable", "medium", 1, 0, 1),
    ]
    blob = json.dumps([x.to_json() for x in s])
    assert "a.csv" not in blob and "offset" not in blob and "header" not in blob


def test_record_round_trips_through_json() -> None:
    rec = make_record(3, mynumbers=2, action=Action.HOLD)
    again = SendRecord.from_json(json.loads(canonical_json(rec.to_json())))
    assert again == rec
    assert rec.time.tzinfo is not None and rec.time.utcoffset() == timedelta(0)
    assert rec.to_outside is False
    assert rec.recipients[0].klass == "partner"


def test_record_time_is_utc_even_when_given_local() -> None:
    jst = timezone(timedelta(hours=9))
    rec = make_record(1, when=datetime(2026, 11, 2, 18, 0, tzinfo=jst))
    assert rec.to_json()["time"] == "2026-11-02T09:00:00.000000Z"
    with pytest.raises(ValueError):
        SendRecord(time=datetime(2026, 1, 1))


def test_reportable_scale_over_100_distinct() -> None:
    assert not make_record(1, mynumbers=100).reportable_scale
    assert make_record(1, mynumbers=101).reportable_scale


def test_events() -> None:
    ev = record_for_event(
        event="release", actor="suzuki", comment=f"確認 {VALID}", audit_key="Q1", detail={"id": 7}
    )
    assert ev.event == "release" and ev.detail == {"id": 7}
    assert VALID not in ev.comment
    with pytest.raises(ValueError, match="unknown send-log event"):
        record_for_event(event="rename", actor="x", comment="")
    with pytest.raises(ValueError, match="JSON scalar"):
        record_for_event(event="delete", actor="x", comment="", detail={"x": [1]})


def test_outcome_follows_a_pending_entry() -> None:
    out = record_for_outcome(audit_key="4FZK81Wc9z", entry_id=41, next_hop_reply="250 2.0.0 Ok")
    assert (out.event, out.actor, out.next_hop_reply) == ("outcome", "gateway", "250 2.0.0 Ok")
    assert out.detail == {"entry": 41} and not out.has_findings


# -- the chain, without a database --------------------------------------------


def _chain(n: int) -> list[ChainRow]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        payload = canonical_json({"n": seq})
        h = entry_hash(seq, prev, payload)
        rows.append(ChainRow(seq, prev, h, payload))
        prev = h
    return rows


def _verify(rows: list[ChainRow], head: tuple[int, str] | None = None):  # type: ignore[no-untyped-def]
    full = _chain(5)
    v = ChainVerifier(Checkpoint(), *(head or (full[-1].seq, full[-1].hash)))
    for r in rows:
        v.feed(r)
    return v.finish()


def test_chain_intact_and_breaks() -> None:
    rows = _chain(5)
    assert _verify(rows).ok
    changed = [*rows[:2], ChainRow(3, rows[2].prev_hash, rows[2].hash, '{"n":33}'), *rows[3:]]
    assert (_verify(changed).first_bad, _verify(changed).problem) == (3, "changed")
    deleted = rows[:2] + rows[3:]
    assert (_verify(deleted).first_bad, _verify(deleted).problem) == (3, "deleted")
    assert _verify(rows[:4]).problem == "deleted"
    assert _verify(rows[1:]).problem == "deleted"


@pytest.mark.parametrize("forger_hashes_correctly", [True, False])
def test_row_slipped_in_with_renumbering_is_named(forger_hashes_correctly: bool) -> None:
    rows = _chain(5)
    payload = canonical_json({"n": "forged"})
    good = entry_hash(3, rows[1].hash, payload)
    forged = ChainRow(3, rows[1].hash, good if forger_hashes_correctly else "f" * 64, payload)
    # the originals from 3 on moved up by one; their stored hashes no longer fit
    shifted = [ChainRow(r.seq + 1, r.prev_hash, r.hash, r.payload) for r in rows[2:]]
    res = _verify([*rows[:2], forged, *shifted], head=(6, shifted[-1].hash))
    assert (res.ok, res.first_bad, res.problem) == (False, 3, "inserted")


def test_hash_covers_sequence_and_previous() -> None:
    p = canonical_json({"a": 1})
    assert entry_hash(1, GENESIS, p) != entry_hash(2, GENESIS, p)
    assert entry_hash(1, GENESIS, p) != entry_hash(1, "1" * 64, p)
    assert canonical_json({"b": "日本", "a": 1}) == '{"a":1,"b":"日本"}'


def test_parse_when() -> None:
    jst = timezone(timedelta(hours=9))
    now = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)  # 12:00 JST
    assert parse_when("2026-11-01", tz=jst) == datetime(2026, 11, 1, tzinfo=jst)
    assert parse_when("2026-11-01", upper=True, tz=jst) == datetime(2026, 11, 2, tzinfo=jst)
    assert parse_when("7d", now=now, tz=jst) == now - timedelta(days=7)
    assert parse_when("today", now=now, tz=jst) == datetime(2026, 11, 26, tzinfo=jst)
    assert parse_when("2026-11-01 09:30", tz=jst) == datetime(2026, 11, 1, 9, 30, tzinfo=jst)
    assert parse_when("2026-11-01T00:00Z", tz=jst) == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_when("last tuesday")


def test_a_recipient_domain_that_is_a_number_is_masked() -> None:
    from dlp.model import RecipientClass

    rec = make_record(recipients=((f"x@{VALID}.com", RecipientClass.EXTERNAL),))
    assert VALID not in json.dumps(rec.to_json(), ensure_ascii=False)
    assert VALID not in repr(rec)


# A SHA-256 digest whose decimal run passes the check digit: about one purge in two
# hundred leaves such a hash as the checkpoint's (a CI run of 3 Dec 2026 met one).
_UNLUCKY_HASH = "ab" + "621498320257" + "cd" * 25


def test_purge_entry_keeps_the_digest_it_names() -> None:
    ev = record_for_event(
        event="purge",
        actor="retention",
        comment=f"through {_UNLUCKY_HASH}",
        detail={"through_seq": 4, "last_hash": _UNLUCKY_HASH, "note": _UNLUCKY_HASH},
    )
    assert ev.detail["last_hash"] == _UNLUCKY_HASH  # a digest: compared, not read
    assert "621498320257" not in str(ev.detail["note"]) + ev.comment  # text: scrubbed
    assert scrub(_UNLUCKY_HASH) != _UNLUCKY_HASH


@pytest.mark.parametrize("written", [_UNLUCKY_HASH, scrub(_UNLUCKY_HASH)])
def test_checkpoint_confirmed_by_its_purge_entry(written: str) -> None:
    """The purge entry confirms the checkpoint; one written masked (before digests were
    kept) still does, since the next entry must point to the checkpoint's hash too."""
    cp = Checkpoint(through_seq=4, last_hash=_UNLUCKY_HASH, purged_total=4)
    payload = canonical_json({"event": "purge", "detail": {"through_seq": 4, "last_hash": written}})
    row = ChainRow(5, _UNLUCKY_HASH, entry_hash(5, _UNLUCKY_HASH, payload), payload)
    v = ChainVerifier(cp, 5, row.hash)
    v.feed(row)
    assert v.finish().ok
    other = canonical_json({"event": "purge", "detail": {"through_seq": 4, "last_hash": "0" * 64}})
    v = ChainVerifier(cp, 5, entry_hash(5, _UNLUCKY_HASH, other))
    v.feed(ChainRow(5, _UNLUCKY_HASH, entry_hash(5, _UNLUCKY_HASH, other), other))
    assert v.finish().problem == "checkpoint"
