"""The hold queue in PostgreSQL (issue 6): one gateway holds, another lists and releases.

Real parts throughout: an in-process gateway with its worker pool, real SMTP to it, an
aiosmtpd next hop, PostgreSQL at 127.0.0.1:5432 in a schema of its own per test (dropped
afterwards), and ``dlp quarantine`` in a separate process as the "second gateway".
Skipped, saying how to enable them, when PostgreSQL is not reachable.
"""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from gwtools import InProcessGateway, LoopThread, Sink, write_config
from sendlog_support import PG_HOWTO, QUARANTINE_KEY, Backend, pg_reachable
from support import my_number

from dlp.config import Settings, load_file
from dlp.holdqueue.pg_store import PgQuarantine
from dlp.holdqueue.store import QuarantineError, open_quarantine
from dlp.model import Action, ScanReport, Verdict

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(90)]

SENDER = "sender@example.lg.jp"
EXTERNAL = "someone@kaisha-abc.jp"
N1, N2, N3 = my_number("12345678901"), my_number("23456789012"), my_number("98765432109")
SUBJECT = "職員名簿の送付"
BODY_TEXT = "職員の個人番号を送ります"
DLP = [sys.executable, "-c", "from dlp.cli import main; main()"]


def message() -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {EXTERNAL}\r\nSubject: {SUBJECT}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.lg.jp>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{BODY_TEXT}。\r\n個人番号: {N1}\r\nマイナンバー {N2}\r\n個人番号：{N3}\r\n"
    ).encode()


@pytest.fixture
def pg(tmp_path: Path, sink: Sink) -> Iterator[Backend]:
    if not pg_reachable():
        pytest.skip(PG_HOWTO.replace("send-log", "hold-queue"))
    sink.messages.clear()
    b = Backend("postgresql", tmp_path)
    try:
        yield b
    finally:
        b.cleanup()


def gateway_config(root: Path, sink: Sink, pg: Backend, key: str = QUARANTINE_KEY) -> Path:
    return write_config(
        root,
        next_hop_port=sink.port,
        sections={
            "sendlog": {"backend": "postgresql", "postgresql_dsn": pg.dsn},
            "quarantine": {"encryption_key": key},
        },
    )


def queue(pg: Backend, key: str = QUARANTINE_KEY) -> PgQuarantine:
    """A queue with a connection of its own (another gateway, as far as the database knows)."""
    return PgQuarantine(pg.dsn, key.encode(), 30)


def hold_one(q: PgQuarantine, raw: bytes | None = None, audit_key: str = "AK1") -> str:
    held = q.hold(
        raw or message(),
        audit_key=audit_key,
        sender=SENDER,
        recipients=[EXTERNAL],
        mail_options=[],
        verdict=Verdict(action=Action.HOLD, rule="mynumber-outside", reasons=("個人番号",)),
        report=ScanReport(source="<test>", size=10, subject=SUBJECT),
    )
    q.commit(held.id)
    return held.id


def test_held_by_one_gateway_listed_and_released_by_another(
    lt: LoopThread, sink: Sink, pg: Backend, tmp_path: Path
) -> None:
    from dlp.smtp.release import release

    gw = InProcessGateway(gateway_config(tmp_path / "gw-a", sink, pg), lt)
    try:
        raw = message()
        with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as c:
            c.ehlo("mta.example.lg.jp")
            c.mail(SENDER)
            c.rcpt(EXTERNAL)
            code, reply = c.data(raw)
        assert code == 250 and "2.6.0" in reply.decode()
        assert sink.messages == []
    finally:
        gw.stop()
    # Nothing on gateway A's disk: the queue is the table.
    assert not gw.settings.quarantine_dir.exists() or not any(gw.settings.quarantine_dir.iterdir())

    # Gateway B: another directory, another process.
    cfg_b = gateway_config(tmp_path / "gw-b", sink, pg)
    out = subprocess.run(
        [*DLP, "quarantine", "list", "--json", "--config", str(cfg_b)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "DLP_CONFIG"},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    listed = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(listed) == 1
    held = listed[0]
    assert held["subject"] == SUBJECT and held["recipients"] == [EXTERNAL]
    assert held["findings"]["mynumber_distinct"] == 3
    assert str(held["id"]) in reply.decode()

    # At rest: neither the subject, the text nor a number is readable in the table.
    rows = pg.raw("SELECT meta, body FROM quarantine_held")
    assert len(rows) == 1
    stored = bytes(rows[0][0]) + bytes(rows[0][1])
    for plain in (SUBJECT, BODY_TEXT, N1, N2, N3, SENDER, EXTERNAL, "Subject"):
        assert plain.encode() not in stored

    settings_b = load_file(cfg_b)
    answer = release(settings_b, held["id"], "reviewer", "確認済み")
    assert answer.startswith("250")
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].content == raw and got[0].rcpt_tos == [EXTERNAL]
    assert pg.raw("SELECT count(*) FROM quarantine_held")[0][0] == 0
    # Both the hold and the release are in the one shared send log.
    from dlp.sendlog import LogFilter, open_store

    with open_store(settings_b) as store:
        assert store.count(LogFilter(verdict="hold")) == 1
        assert store.count(LogFilter(event="release")) == 1
    sink.wait_for(2, timeout=0.5)
    assert len(sink.messages) == 1  # once


def test_concurrent_claims_have_one_winner(pg: Backend) -> None:
    held_id = hold_one(queue(pg))
    contenders = [queue(pg) for _ in range(4)]  # four connections: four gateways
    barrier = threading.Barrier(len(contenders))
    inside = threading.Event()
    won: list[int] = []
    lost: list[str] = []

    def contend(i: int) -> None:
        barrier.wait(10)
        try:
            with contenders[i].claim(held_id):
                won.append(i)
                inside.set()
                # Keep it while the others try (a release takes this long and more).
                threading.Event().wait(0.5)
        except QuarantineError as exc:
            lost.append(str(exc))

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(contenders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(won) == 1 and len(lost) == 3
    assert all("someone else" in m for m in lost)
    # Released at the end of the winner's block: claimable again.
    with contenders[0].claim(held_id):
        pass
    for q in contenders:
        q.close()


def test_concurrent_releases_deliver_once(
    lt: LoopThread, sink: Sink, pg: Backend, tmp_path: Path
) -> None:
    from dlp.holdqueue.decisions import ReleaseError
    from dlp.smtp.release import release

    settings = load_file(gateway_config(tmp_path, sink, pg))
    held_id = hold_one(queue(pg))
    sink.behaviour.data_delay = 0.5  # both are in flight at once
    results: list[str] = []
    barrier = threading.Barrier(2)

    def go(s: Settings) -> None:
        barrier.wait(10)
        try:
            results.append(release(s, held_id, "reviewer", ""))
        except ReleaseError as exc:
            results.append(f"error: {exc}")

    # Two consoles: two settings objects with their own quarantine connections.
    other = replace(settings, quarantine=replace(settings.quarantine, retention_days=31))
    threads = [threading.Thread(target=go, args=(s,)) for s in (settings, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    sink.behaviour.data_delay = 0
    assert sorted(r[:3] for r in results) == ["250", "err"], results
    assert len(sink.wait_for(1)) == 1
    sink.wait_for(2, timeout=0.5)
    assert len(sink.messages) == 1


def test_stale_claim_is_taken_over(pg: Backend) -> None:
    a, b = queue(pg), queue(pg)
    held_id = hold_one(a)
    with a.claim(held_id):
        with pytest.raises(QuarantineError, match="someone else"), b.claim(held_id):
            pass
        with b.claim(held_id, stale_after=0):  # the first one "crashed" long ago
            assert b.get(held_id) is not None


def test_key_is_required_and_must_match(pg: Backend, sink: Sink, tmp_path: Path) -> None:
    settings = load_file(gateway_config(tmp_path, sink, pg))
    no_key = replace(settings, quarantine=replace(settings.quarantine, encryption_key=""))
    with pytest.raises(QuarantineError, match=r"encryption_key must be set.*every host"):
        open_quarantine(no_key)
    # The gateway refuses to start rather than hold mail nobody else could read.
    from dlp.smtp.gateway import Gateway

    with pytest.raises(QuarantineError, match="encryption_key must be set"):
        Gateway(no_key)
    bad = replace(settings, quarantine=replace(settings.quarantine, encryption_key="nope"))
    with pytest.raises(QuarantineError, match="not a valid Fernet key"):
        open_quarantine(bad)

    raw = message()
    held_id = hold_one(queue(pg), raw)
    other = queue(pg, Fernet.generate_key().decode())
    with pytest.raises(QuarantineError, match="cannot be decrypted"):
        other.read(held_id)
    assert queue(pg).read(held_id) == raw


def test_get_read_delete_expire(pg: Backend) -> None:
    q = queue(pg)
    raw = message()
    old, new = hold_one(q, raw), hold_one(q)
    assert [h.id for h in q.list()] == [old, new] and q.depth() == 2
    got = q.get(old)
    assert got is not None and got.subject == SUBJECT and got.held_at.tzinfo is not None
    assert q.read(old) == raw
    assert q.get("20990101000000-000000000000") is None
    with pytest.raises(QuarantineError, match="no held message"):
        q.read("20990101000000-000000000000")
    with pytest.raises(QuarantineError, match="not a held-message id"):
        q.get("../etc/passwd")

    pg.raw(
        "UPDATE quarantine_held SET held_at = ? WHERE id = ?",
        (datetime.now(UTC) - timedelta(days=31), old),
    )
    assert [h.id for h in q.expired()] == [old]
    assert q.delete(old) is True
    assert [h.id for h in q.list()] == [new]
    assert q.delete(new) is True and q.delete(new) is False
    assert q.depth() == 0


def test_schema_is_versioned(pg: Backend) -> None:
    assert queue(pg).depth() == 0  # created on first use
    assert pg.raw("SELECT version FROM quarantine_schema") == [(2,)]
    assert queue(pg).depth() == 0  # a second opening changes nothing
    assert pg.raw("SELECT count(*) FROM quarantine_schema") == [(1,)]
    pg.raw("UPDATE quarantine_schema SET version = 99")
    with pytest.raises(QuarantineError, match="schema version 99, newer"):
        queue(pg).list()


def test_unreachable_database_is_a_clear_error_without_the_password() -> None:
    # The queue opens (a gateway starts while the database is down) and says so on use.
    q = PgQuarantine(
        "postgresql://postgres:s3cret@127.0.0.1:1/test",
        Fernet.generate_key(),
        30,
        connect_timeout=2,
    )
    with pytest.raises(QuarantineError, match="cannot open the hold queue") as err:
        q.depth()
    assert "s3cret" not in str(err.value) and "postgres:***@" in str(err.value)


def test_hold_failure_tempfails_and_relays_nothing(
    lt: LoopThread, sink: Sink, pg: Backend, tmp_path: Path
) -> None:
    queue(pg).depth()  # creates the table
    gw = InProcessGateway(gateway_config(tmp_path, sink, pg), lt)
    try:
        pg.raw("ALTER TABLE quarantine_held RENAME TO quarantine_gone")  # the queue is unusable
        with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as c:
            c.ehlo("mta.example.lg.jp")
            c.mail(SENDER)
            c.rcpt(EXTERNAL)
            code, reply = c.data(message())
        assert code == 451, reply
        assert sink.messages == []
    finally:
        gw.stop()
