"""The send-log stores: one suite, run against SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sendlog_support import BACKENDS, T0, Backend, backend_fixture, make_record

from dlp.model import Action, RecipientClass
from dlp.sendlog import LogFilter, SendLogError, record_for_event
from dlp.sendlog.chain import entry_hash
from dlp.sendlog.migrations import CURRENT

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from backend_fixture(request, tmp_path)


def _fill(store, n: int = 6) -> list[int]:  # type: ignore[no-untyped-def]
    """Six varied messages and one event; returns the ids."""
    recs = [
        make_record(0),
        make_record(
            1,
            recipients=(("a@gmail.com", RecipientClass.EXTERNAL),),
            mynumbers=3,
            action=Action.HOLD,
        ),
        make_record(
            2,
            sender="sato@ward.example.lg.jp",
            recipients=(
                ("x@exp.com", RecipientClass.LOOKALIKE),
                ("y@city.example.lg.jp", RecipientClass.OWN),
            ),
            action=Action.REJECT,
            attachments=(("給与.csv", "cd" * 32), ("readme.txt", "ef" * 32)),
        ),
        make_record(3, when=T0 + timedelta(days=10), attachments=()),
        make_record(4, when=T0 + timedelta(days=20), mynumbers=101, action=Action.HOLD),
        make_record(5, when=T0 + timedelta(days=30), sender="TANAKA@City.Example.LG.jp"),
    ][:n]
    ids = [store.append(r) for r in recs]
    ids.append(
        store.append(
            record_for_event(
                event="release",
                actor="reviewer1",
                comment="確認済み",
                audit_key="Q000001",
                when=T0 + timedelta(days=31),
            )
        )
    )
    return ids


def test_append_and_read_back_every_field(backend: Backend) -> None:
    store = backend.open()
    assert store.schema_version == CURRENT
    rec = make_record(7, mynumbers=2, action=Action.HOLD)
    first = store.append(rec)
    second = store.append(make_record(8))
    assert (first, second) == (1, 2)
    got = store.get(first)
    assert got is not None
    assert got.record == rec
    assert got.record.time.tzinfo is not None
    assert got.record.findings[0].count == 2 and got.record.findings[0].distinct == 2
    assert store.get(99) is None
    # a second connection (another gateway process) sees the same entry
    other = backend.open()
    e2 = other.get(second)
    assert e2 is not None and e2.prev_hash == got.hash


def test_filters(backend: Backend) -> None:
    store = backend.open()
    ids = _fill(store)

    def ids_for(**kw: object) -> list[int]:
        flt = LogFilter(**kw)  # type: ignore[arg-type]
        found = [e.id for e in store.query(flt, limit=100, sort="oldest")]
        assert store.count(flt) == len(found)
        return found

    assert ids_for() == ids
    assert ids_for(sender="tanaka@city.example.lg.jp") == [1, 2, 4, 5, 6]
    assert ids_for(sender="@ward.example.lg.jp") == [3]
    assert ids_for(recipient_domain="gmail.com") == [2]
    assert ids_for(recipient_domain="EXP.COM") == [3]
    assert ids_for(recipient_class="lookalike") == [3]
    assert ids_for(recipient_class="partner") == [1, 4, 5, 6]
    assert ids_for(has_findings=True) == [2, 5]
    assert ids_for(has_findings=False, event="message") == [1, 3, 4, 6]
    assert ids_for(verdict="hold") == [2, 5]
    assert ids_for(attachment="給与") == [3]
    assert ids_for(attachment="XLSX") == [1, 2, 5, 6]
    assert ids_for(attachment="cd" * 32) == [3]
    assert ids_for(attachment="EF" * 32) == [3]
    assert ids_for(attachment="%") == []  # LIKE wildcards are literal
    assert ids_for(event="release") == [7]
    assert ids_for(audit_key="Q000001") == [2, 7]
    assert ids_for(exclude_events=("release",)) == ids[:-1]
    assert ids_for(exclude_events=("message", "release")) == []
    assert ids_for(since=T0 + timedelta(days=10)) == [4, 5, 6, 7]
    assert ids_for(since=T0 + timedelta(days=10), until=T0 + timedelta(days=30)) == [4, 5]
    assert ids_for(since=T0, until=T0 + timedelta(days=25), verdict="hold", has_findings=True) == [
        2,
        5,
    ]
    # newest first by default, and paging
    assert [e.id for e in store.query(limit=3)] == [7, 6, 5]
    assert [e.id for e in store.query(limit=3, offset=3)] == [4, 3, 2]
    assert [e.id for e in store.iter_entries(LogFilter(event="message"), batch=2)] == ids[:-1]
    big = store.get(5)
    assert big is not None and big.record.reportable_scale


def test_lookup_filters_same_results_as_exists_or_in(backend: Backend) -> None:
    """``EXISTS`` and ``e.seq IN (SELECT …)`` (chosen per filter for speed) agree."""
    store = backend.open()
    _fill(store)
    filters = [
        LogFilter(recipient_domain="gmail.com"),
        LogFilter(recipient_class="lookalike"),
        LogFilter(recipient_class="partner", since=T0 + timedelta(days=10)),
        LogFilter(attachment="cd" * 32),
        LogFilter(attachment="xlsx", recipient_class="partner"),
        LogFilter(attachment="ab" * 32, recipient_domain="exp.com"),
    ]
    every = frozenset({"domain", "class", "lookalike", "sha256", "name"})
    shipped = type(store).membership  # type: ignore[attr-defined]
    seen = []
    try:
        for use_in in (frozenset(), every):
            store.membership = {"query": use_in, "count": use_in}  # type: ignore[attr-defined]
            seen.append(
                [([e.id for e in store.query(f, limit=100)], store.count(f)) for f in filters]
            )
    finally:
        store.membership = shipped  # type: ignore[attr-defined]
    seen.append([([e.id for e in store.query(f, limit=100)], store.count(f)) for f in filters])
    assert seen[0] == seen[1] == seen[2]
    assert [c for _, c in seen[0]] == [1, 1, 3, 1, 3, 0]


def test_stats(backend: Backend) -> None:
    store = backend.open()
    _fill(store)
    by_day = store.stats(by="day")
    assert [r.day for r in by_day] == ["2026-11-02", "2026-11-12", "2026-11-22", "2026-12-02"]
    first = by_day[0]
    assert (first.messages, first.with_attachments, first.attachments_outside) == (3, 3, 2)
    assert (first.with_findings, first.held, first.rejected, first.reportable) == (1, 1, 1, 0)
    assert by_day[2].reportable == 1
    # 09:00 UTC + 15 h is the next day in a UTC+15 world: the offset moves the day
    assert store.stats(by="day", utc_offset_minutes=15 * 60)[0].day == "2026-11-03"
    per_sender = {r.sender: r.messages for r in store.stats(by="sender")}
    assert per_sender == {"tanaka@city.example.lg.jp": 5, "sato@ward.example.lg.jp": 1}
    both = store.stats(LogFilter(since=T0 + timedelta(days=5)), by="day+sender")
    assert next((r.day, r.sender) for r in both) == ("2026-11-12", "tanaka@city.example.lg.jp")


def test_verify_intact_and_empty(backend: Backend) -> None:
    store = backend.open()
    res = store.verify()
    assert res.ok and res.checked == 0
    _fill(store)
    res = store.verify()
    assert res.ok and res.checked == 7 and res.head_seq == 7
    assert res.head_hash == store.get(7).hash  # type: ignore[union-attr]


def test_tampered_payload_is_named(backend: Backend) -> None:
    store = backend.open()
    _fill(store)
    payload = backend.raw("SELECT payload FROM sendlog_entry WHERE seq = 3")[0][0]
    backend.raw(
        "UPDATE sendlog_entry SET payload = ? WHERE seq = 3",
        (payload.replace('"action":"reject"', '"action":"deliver"'),),
    )
    res = store.verify()
    assert not res.ok
    assert (res.first_bad, res.problem) == (3, "changed")
    assert "entry 3" in res.message


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE sendlog_entry SET action = 'deliver' WHERE seq = 2",
        "UPDATE sendlog_entry SET has_findings = 0 WHERE seq = 2",
        "UPDATE sendlog_rcpt SET domain = 'elsewhere.jp' WHERE seq = 2",
        "DELETE FROM sendlog_attach WHERE seq = 2",
    ],
)
def test_tampered_search_copy_is_named(backend: Backend, sql: str) -> None:
    store = backend.open()
    _fill(store)
    backend.raw(sql)
    res = store.verify()
    assert (res.ok, res.first_bad, res.problem) == (False, 2, "changed")


def test_deleted_rows_are_named(backend: Backend) -> None:
    store = backend.open()
    _fill(store)
    backend.raw("DELETE FROM sendlog_entry WHERE seq = 4")
    res = store.verify()
    assert (res.ok, res.first_bad, res.problem) == (False, 4, "deleted")
    assert "entry 4 was deleted" in res.message
    backend.raw("DELETE FROM sendlog_entry WHERE seq >= 2")
    res = store.verify()
    assert (res.first_bad, res.problem) == (2, "deleted")


def test_deleted_chain_head_is_caught(backend: Backend) -> None:
    store = backend.open()
    _fill(store)
    backend.raw("DELETE FROM sendlog_head")
    res = store.verify()
    assert (res.ok, res.problem) == (False, "head")
    with pytest.raises(SendLogError, match="chain head row is missing"):
        store.append(make_record(9))


def test_deleting_the_newest_entry_is_caught(backend: Backend) -> None:
    store = backend.open()
    _fill(store)
    backend.raw("DELETE FROM sendlog_entry WHERE seq = 7")
    res = store.verify()
    assert (res.ok, res.first_bad, res.problem) == (False, 7, "deleted")


def test_forged_rows_are_named(backend: Backend) -> None:
    store = backend.open()
    _fill(store)
    last = store.get(7)
    assert last is not None
    # appended behind dlp's back, even with a correctly computed hash
    payload = json.dumps(make_record(50).to_json(), sort_keys=True)
    h = entry_hash(8, last.hash, payload)
    backend.raw(
        "INSERT INTO sendlog_entry (seq, ts_us, event, audit_key, sender, sender_domain, action,"
        " has_findings, reportable, n_attach, outside, payload, prev_hash, hash)"
        " VALUES (8, 0, 'message', '', '', '', 'deliver', 0, 0, 0, 0, ?, ?, ?)",
        (payload, last.hash, h),
    )
    res = store.verify()
    assert (res.ok, res.first_bad, res.problem) == (False, 8, "inserted")


def test_replaced_and_rehashed_row_is_named(backend: Backend) -> None:
    store = backend.open()
    _fill(store)
    victim = store.get(3)
    assert victim is not None
    forged = json.loads(backend.raw("SELECT payload FROM sendlog_entry WHERE seq = 3")[0][0])
    forged["subject"] = "無害な件名"
    payload = json.dumps(forged, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    backend.raw(
        "UPDATE sendlog_entry SET payload = ?, hash = ? WHERE seq = 3",
        (payload, entry_hash(3, victim.prev_hash, payload)),
    )
    res = store.verify()
    assert (res.ok, res.first_bad, res.problem) == (False, 3, "replaced")


def test_two_rows_swapped_are_named_as_such(backend: Backend) -> None:
    """Reported as "entry 3 was inserted" before (a review of 3 Dec, fourth round)."""
    store = backend.open()
    _fill(store)
    (a,) = backend.raw("SELECT payload, prev_hash, hash FROM sendlog_entry WHERE seq = 3")
    (b,) = backend.raw("SELECT payload, prev_hash, hash FROM sendlog_entry WHERE seq = 4")
    update = "UPDATE sendlog_entry SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?"
    backend.raw(update, (*b, 3))
    backend.raw(update, (*a, 4))
    res = store.verify()
    assert (res.ok, res.first_bad, res.problem) == (False, 3, "reordered"), res


def test_purge_keeps_the_chain_verifiable(backend: Backend) -> None:
    store = backend.open()
    _fill(store)
    now = T0 + timedelta(days=40)
    res = store.purge(25, now=now, actor="admin")  # cutoff T0+15d: entries 1-4 go
    assert res.purged == 4 and res.checkpoint is not None
    assert res.checkpoint.through_seq == 4 and res.event_id == 8
    assert store.count() == 4
    v = store.verify()
    assert v.ok and v.checked == 4 and v.checkpoint.purged_total == 4
    ev = store.get(8)
    assert ev is not None and ev.record.event == "purge" and ev.record.actor == "admin"
    assert ev.record.detail["through_seq"] == 4
    # nothing more is old enough: no new entry, chain unchanged
    assert store.purge(25, now=now).purged == 0
    assert store.count() == 4
    # a second purge stacks on the first checkpoint
    store.append(make_record(9, when=now))
    res2 = store.purge(5, now=now)  # 5-7 go; the first purge's entry (at `now`) stays
    assert res2.purged == 3 and res2.checkpoint is not None
    assert res2.checkpoint.purged_total == 7
    assert store.verify().ok
    # and the chain after a checkpoint is still tamper-evident
    backend.raw("DELETE FROM sendlog_entry WHERE seq = 9")
    v = store.verify()
    assert (v.ok, v.first_bad, v.problem) == (False, 9, "deleted")


def test_big_purge_goes_in_batches(backend: Backend) -> None:
    store = backend.open()
    _fill(store)
    store.purge_batch = 3  # type: ignore[attr-defined]
    res = store.purge(1, now=T0 + timedelta(days=40))  # all 7 entries are old
    assert res.purged == 7
    assert res.checkpoint is not None and res.checkpoint.purged_total == 7
    events = [e.record for e in store.query(LogFilter(event="purge"), sort="oldest")]
    assert [ev.detail["purged"] for ev in events] == [3, 3, 1]
    assert [ev.detail["through_seq"] for ev in events] == [3, 6, 7]
    assert store.verify().ok


def test_purge_dry_run_changes_nothing(backend: Backend) -> None:
    store = backend.open()
    _fill(store)
    res = store.purge(1, now=T0 + timedelta(days=400), dry_run=True)
    assert res.purged == 7
    assert store.count() == 7 and store.verify().ok


def test_altered_checkpoint_is_caught(backend: Backend) -> None:
    store = backend.open()
    _fill(store)
    store.purge(25, now=T0 + timedelta(days=40))
    # hide two more deleted entries by moving the checkpoint forward
    backend.raw("DELETE FROM sendlog_entry WHERE seq IN (5, 6)")
    h6 = "f" * 64
    backend.raw(
        "UPDATE sendlog_checkpoint SET through_seq = 6, last_hash = ? WHERE through_seq = 4",
        (h6,),
    )
    res = store.verify()
    assert not res.ok and res.problem == "checkpoint"


def test_purge_refuses_to_erase_tampering(backend: Backend) -> None:
    store = backend.open()
    _fill(store)
    backend.raw("UPDATE sendlog_entry SET payload = payload || ' ' WHERE seq = 2")
    with pytest.raises(SendLogError, match="refusing to purge: entry 2 was changed"):
        store.purge(1, now=T0 + timedelta(days=400))
    assert store.count() == 7


def test_no_my_number_reaches_the_store(backend: Backend) -> None:
    store = backend.open()
    number = "123456789018"  # valid check digit
    rec = make_record(
        1,
        subject=f"個人番号 {number[:4]}-{number[4:8]}-{number[8:]} の件",
        attachments=((f"{number}.csv", "ab" * 32),),
        mynumbers=1,
    )
    store.append(rec)
    dump = json.dumps(backend.raw("SELECT * FROM sendlog_entry"), ensure_ascii=False)
    dump += json.dumps(backend.raw("SELECT * FROM sendlog_attach"), ensure_ascii=False)
    assert number not in dump and number[:4] + "-" + number[4:8] not in dump
    assert "****-****-****" in dump


def test_newer_schema_is_refused(backend: Backend) -> None:
    backend.open().close()
    backend.raw("UPDATE sendlog_schema SET version = 99")
    with pytest.raises(SendLogError, match="schema version 99, newer than this dlp"):
        backend.open()


def test_older_schema_is_upgraded(backend: Backend) -> None:
    old = backend.open(migrate_to=1)
    assert old.schema_version == 1
    old.close()
    # an entry written by the version-1 program (no sender_domain column)
    rec = make_record(1, sender="Suzuki@Town.Example.LG.jp")
    payload = json.dumps(rec.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    h = entry_hash(1, "0" * 64, payload)
    backend.raw(
        "INSERT INTO sendlog_entry (seq, ts_us, event, audit_key, sender, action, has_findings,"
        " reportable, n_attach, outside, payload, prev_hash, hash)"
        " VALUES (1, ?, 'message', ?, ?, 'deliver', 0, 0, 1, 0, ?, ?, ?)",
        (
            int(rec.time.timestamp() * 1_000_000),
            rec.audit_key,
            rec.sender.lower(),
            payload,
            "0" * 64,
            h,
        ),
    )
    backend.raw("INSERT INTO sendlog_rcpt VALUES (1, 'partner.co.jp', 'partner')")
    backend.raw(f"INSERT INTO sendlog_attach VALUES (1, 0, '名簿.xlsx', '{'ab' * 32}')")
    backend.raw("UPDATE sendlog_head SET last_seq = 1, last_hash = ?", (h,))
    store = backend.open()
    assert store.schema_version == CURRENT
    assert backend.raw("SELECT version FROM sendlog_schema") == [(CURRENT,)]
    assert [e.id for e in store.query(LogFilter(sender="@town.example.lg.jp"))] == [1]
    assert store.append(make_record(2)) == 2
    assert store.verify().ok


def test_write_failure_raises_sendlog_error_sqlite(tmp_path: Path) -> None:
    import sqlite3

    from dlp.sendlog.sqlite_store import SqliteStore

    store = SqliteStore(tmp_path / "s.db", busy_timeout=0.2)
    store.append(make_record(1))
    blocker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process stuck holding the database
    try:
        with pytest.raises(SendLogError, match="cannot write to the send log"):
            store.append(make_record(2))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.append(make_record(2)) == 2
    store.close()


def test_unopenable_sqlite_path(tmp_path: Path) -> None:
    from dlp.sendlog.sqlite_store import SqliteStore

    (tmp_path / "afile").write_text("x")
    with pytest.raises(SendLogError, match="cannot open the send log"):
        SqliteStore(tmp_path / "afile" / "sendlog.db")


@pytest.mark.postgres
def test_postgres_unreachable_and_reconnect(tmp_path: Path) -> None:
    from sendlog_support import pg_reachable

    from dlp.sendlog.pg_store import PostgresStore

    with pytest.raises(SendLogError, match="cannot open the send log at postgresql://"):
        PostgresStore("postgresql://postgres:secret@127.0.0.1:1/test", connect_timeout=2)
    if not pg_reachable():
        pytest.skip("PostgreSQL not reachable for the reconnect half")
    b = Backend("postgresql", tmp_path)
    try:
        store = b.open()
        store.append(make_record(1))
        pid = store.run("SELECT pg_backend_pid()")[0][0]  # type: ignore[attr-defined]
        b.raw("SELECT pg_terminate_backend(?)", (pid,))  # the server drops us
        with pytest.raises(SendLogError):
            store.append(make_record(2))
        assert store.append(make_record(2)) == 2  # and the next message gets through
        assert store.verify().ok
    finally:
        b.cleanup()


def test_secret_not_in_error(tmp_path: Path) -> None:
    from dlp.sendlog.pg_store import redact_dsn

    assert "s3cret" not in redact_dsn("postgresql://dlp:s3cret@db/x")
    assert "s3cret" not in redact_dsn("host=db password=s3cret dbname=x")


# -- concurrent writers -----------------------------------------------------------


def _writer(kind: str, where: str, n: int, tag: int, start: Any) -> None:
    if kind == "sqlite":
        from dlp.sendlog.sqlite_store import SqliteStore

        store = SqliteStore(where)
    else:
        from dlp.sendlog.pg_store import PostgresStore

        store = PostgresStore(where)  # type: ignore[assignment]
    start.wait(60)  # all writers begin together
    for i in range(n):
        store.append(make_record(tag * 1000 + i, when=datetime.now(UTC)))
        time.sleep(0.002)  # messages arrive spaced, as at a gateway
    store.close()


def test_concurrent_processes_keep_one_chain(backend: Backend) -> None:
    backend.open().close()  # schema in place
    where = str(backend.path) if backend.kind == "sqlite" else backend.dsn
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(3)
    procs = [
        ctx.Process(target=_writer, args=(backend.kind, where, 150, t, start)) for t in (1, 2, 3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(90)
        assert p.exitcode == 0
    store = backend.open()
    assert store.count() == 450
    res = store.verify()
    assert res.ok and res.checked == 450 and res.head_seq == 450
    keys = [e.record.audit_key for e in store.iter_entries()]
    assert len(set(keys)) == 450
    # the writers really interleaved (not one after the other)
    writers = [k[1:4] for k in keys]  # Q<tag:03d><i:03d>
    switches = sum(a != b for a, b in itertools.pairwise(writers))
    assert switches > 2
