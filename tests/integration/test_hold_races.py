"""The hold queue under races and half-failures (issue 11), on files and on PostgreSQL.

Real parts only: the in-process gateway with real SMTP, an aiosmtpd next hop,
`dlp quarantine` / `dlp log` as separate processes, real files (a claim left by
a killed process; a held copy made undeletable with ``chattr +i``) and real
PostgreSQL (a claim left behind, triggers that make the send-log write and the
removal of the held copy fail, as a cut connection does).
"""

from __future__ import annotations

import json
import multiprocessing
import smtplib
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gwtools import InProcessGateway, LoopThread, Sink, env_for_subprocess, write_config
from sendlog_support import PG_HOWTO, QUARANTINE_KEY, Backend, pg_reachable
from support import my_number

from dlp.config import Settings, load_file
from dlp.holdqueue.decisions import ReleaseError, expire_held
from dlp.holdqueue.store import open_quarantine
from dlp.smtp.release import release

pytestmark = pytest.mark.timeout(120)

SENDER = "sender@example.lg.jp"
EXTERNAL = "someone@kaisha-abc.jp"
N1, N2, N3 = my_number("12345678901"), my_number("23456789012"), my_number("98765432109")
DLP = [sys.executable, "-c", "from dlp.cli import main; main()"]
KINDS = ["files", pytest.param("postgresql", marks=pytest.mark.postgres)]


def held_raw(subject: str) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {EXTERNAL}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.lg.jp>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"職員の個人番号を送ります。\r\n個人番号: {N1}\r\nマイナンバー {N2}\r\n個人番号：{N3}\r\n"
    ).encode()


@pytest.fixture
def sink(lt: LoopThread) -> Iterator[Sink]:
    s = Sink(lt).start()
    yield s
    s.stop()


class Setup:
    def __init__(self, kind: str, root: Path, sink: Sink) -> None:
        self.kind = kind
        self.pg: Backend | None = None
        sections: dict[str, dict[str, object]] = {"quarantine": {"encryption_key": QUARANTINE_KEY}}
        if kind == "postgresql":
            if not pg_reachable():
                pytest.skip(PG_HOWTO)
            self.pg = Backend("postgresql", root)
            sections["sendlog"] = {"backend": "postgresql", "postgresql_dsn": self.pg.dsn}
        else:
            sections["sendlog"] = {"sqlite_path": str(root / "sendlog.db")}
        self.config = write_config(root, next_hop_port=sink.port, sections=sections)
        self.settings: Settings = load_file(self.config)

    def dlp(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*DLP, *args, "--config", str(self.config)],
            capture_output=True, text=True, timeout=60, env=env_for_subprocess(), check=False,
        )  # fmt: skip

    def raw_sql(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        if self.pg is not None:
            return self.pg.raw(sql, params)
        with sqlite3.connect(self.settings.sqlite_path) as c:
            return c.execute(sql, params).fetchall()

    def events(self, event: str) -> list[dict[str, object]]:
        from dlp.sendlog import LogFilter, open_store

        with open_store(self.settings) as store:
            return [e.to_json() for e in store.query(LogFilter(event=event), limit=100)]

    def subjects(self) -> list[str]:
        return sorted(h.subject for h in open_quarantine(self.settings).list())

    def cleanup(self) -> None:
        if self.pg is not None:
            self.pg.cleanup()


@pytest.fixture(params=KINDS)
def setup(request: pytest.FixtureRequest, tmp_path: Path, sink: Sink) -> Iterator[Setup]:
    s = Setup(request.param, tmp_path, sink)
    try:
        yield s
    finally:
        s.cleanup()


def send(port: int, raw: bytes, ident: str = "") -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
        c.ehlo("mta.example.lg.jp")
        if ident:
            assert c.docmd(f"XFORWARD IDENT={ident}")[0] == 250
        c.mail(SENDER)
        c.rcpt(EXTERNAL)
        code, text = c.data(raw)
        return code, text.decode()


def _crash_inside_claim(settings: Settings, held_id: str, ready: object) -> None:
    """A reviewer's process that dies (SIGKILL-like) in the middle of a release."""
    with open_quarantine(settings).claim(held_id):
        ready.set()  # type: ignore[attr-defined]
        time.sleep(60)


def test_racing_takeover_of_a_stale_claim_releases_once(
    lt: LoopThread, sink: Sink, setup: Setup
) -> None:
    gw = InProcessGateway(setup.config, lt)
    try:
        code, _ = send(gw.port, held_raw("stale claim"))
        assert code == 250
        (held,) = gw.gateway.quarantine.list()
    finally:
        gw.stop()
    # A release crashed while it had the claim.
    ctx = multiprocessing.get_context("fork")  # starts in milliseconds; it only claims
    ready = ctx.Event()
    crashed = ctx.Process(target=_crash_inside_claim, args=(setup.settings, held.id, ready))
    crashed.start()
    assert ready.wait(30)
    crashed.kill()
    crashed.join(10)
    if setup.kind == "postgresql":
        # The claim is still in the row; the database cannot know its holder
        # died.  An hour later it is stale.
        assert setup.raw_sql("SELECT claimed_by FROM quarantine_held")[0][0]
        setup.raw_sql("UPDATE quarantine_held SET claimed_at = claimed_at - interval '1 hour'")
    else:
        assert (setup.settings.quarantine_dir / f".{held.id}.claim").exists()  # left behind
    # Three reviewers take it over at the same moment.
    sink.behaviour.data_delay = 0.5
    procs = [
        subprocess.Popen(
            [*DLP, "quarantine", "release", held.id, "--config", str(setup.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env_for_subprocess(),
        )
        for _ in range(3)
    ]
    results = [(p.wait(60), *p.communicate()) for p in procs]
    sink.behaviour.data_delay = 0
    assert sorted(rc for rc, _, _ in results) == [0, 1, 1], results
    assert len(sink.wait_for(1)) == 1
    time.sleep(0.5)
    assert len(sink.messages) == 1  # delivered once
    assert len(setup.events("release")) == 1
    assert setup.subjects() == []


def _break_pg(setup: Setup, *, commit: bool = False) -> None:
    """What a cut connection does to the hold path: the send-log write (or the
    commit) fails, and so does removing the held copy."""
    setup.raw_sql(
        "CREATE FUNCTION injected_fault() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected: connection lost'; END $$"
    )
    if commit:
        setup.raw_sql(
            "CREATE TRIGGER no_commit BEFORE UPDATE OF pending ON quarantine_held"
            " FOR EACH ROW EXECUTE FUNCTION injected_fault()"
        )
    else:
        setup.raw_sql(
            "CREATE TRIGGER no_log BEFORE INSERT ON sendlog_entry"
            " FOR EACH ROW EXECUTE FUNCTION injected_fault()"
        )
    setup.raw_sql(
        "CREATE TRIGGER no_delete BEFORE DELETE ON quarantine_held"
        " FOR EACH ROW EXECUTE FUNCTION injected_fault()"
    )


def _heal_pg(setup: Setup) -> None:
    setup.raw_sql("DROP FUNCTION injected_fault() CASCADE")


def _send_failing_files(setup: Setup, port: int, raw: bytes, ident: str) -> tuple[int, str]:
    """Files: the SQLite send log refuses the entry (after a moment), and the held
    copy cannot be removed (immutable: even root cannot unlink it)."""
    setup.raw_sql("CREATE TABLE ballast (x INTEGER)")
    setup.raw_sql(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000)"
        " INSERT INTO ballast SELECT x FROM c"
    )
    setup.raw_sql(
        "CREATE TRIGGER no_log BEFORE INSERT ON sendlog_entry BEGIN "
        "SELECT RAISE(ABORT, 'injected: disk I/O error') "
        "FROM (SELECT count(*) AS n FROM ballast a, ballast b) WHERE n >= 0; END"
    )
    qdir = setup.settings.quarantine_dir
    result: list[tuple[int, str]] = []
    t = threading.Thread(target=lambda: result.append(send(port, raw, ident)))
    t.start()
    locked: list[Path] = []
    try:
        deadline = time.monotonic() + 30
        while not locked and time.monotonic() < deadline:
            locked = list(qdir.glob("*.pending.enc")) if qdir.is_dir() else []
            time.sleep(0.005)
        assert locked, "no pending copy appeared"
        r = subprocess.run(["chattr", "+i", str(locked[0])], capture_output=True, check=False)
        if r.returncode != 0:
            t.join(60)
            pytest.skip(f"chattr +i not supported here: {r.stderr.decode().strip()}")
        t.join(60)
    finally:
        for p in locked:
            subprocess.run(["chattr", "-i", str(p)], capture_output=True, check=False)
    setup.raw_sql("DROP TRIGGER no_log")
    return result[0]


@pytest.mark.parametrize("ident", ["ABCD1234EF", ""], ids=["postfix-queue-id", "no-ident"])
def test_failed_hold_leaves_nothing_releasable_and_the_retry_one_copy(
    lt: LoopThread, sink: Sink, setup: Setup, ident: str
) -> None:
    gw = InProcessGateway(setup.config, lt)
    try:
        raw = held_raw("half failed")
        assert send(gw.port, held_raw("warm-up"), "WARM1")[0] == 250  # tables exist
        if setup.kind == "postgresql":
            _break_pg(setup)
            code, text = send(gw.port, raw, ident)
            _heal_pg(setup)
        else:
            code, text = _send_failing_files(setup, gw.port, raw, ident)
        assert code == 451, text
        # The copy is still there, but nobody can see or release it.
        listed = setup.dlp("quarantine", "list", "--json").stdout.splitlines()
        assert [json.loads(x)["subject"] for x in listed] == ["warm-up"]
        (pending,) = gw.gateway.quarantine.expired(datetime.now(UTC) + timedelta(hours=2))
        assert pending.pending and pending.subject == "half failed"
        with pytest.raises(ReleaseError, match="no held message"):
            release(setup.settings, pending.id, "reviewer", "")
        # The MTA retries: one copy, releasable, once.
        code, text = send(gw.port, raw, ident)
        assert code == 250, text
        assert setup.subjects() == ["half failed", "warm-up"]
        retried = next(h for h in gw.gateway.quarantine.list() if h.subject == "half failed")
        assert (retried.id == pending.id) is bool(ident)  # same queue id: the same copy
        assert setup.dlp("quarantine", "release", retried.id).returncode == 0
        assert len(sink.wait_for(1)) == 1
        # Retention removes a leftover unconfirmed copy, and says so in the send log.
        res = expire_held(setup.settings, datetime.now(UTC) + timedelta(hours=2))
        assert res.expired == (0 if ident else 1) and res.error == ""
        expired = setup.events("expire")
        assert len(expired) == (0 if ident else 1)
        if expired:
            assert expired[0]["detail"]["state"] == "unconfirmed"  # type: ignore[index]
            assert expired[0]["actor"] == "retention"
        time.sleep(0.3)
        assert len(sink.messages) == 1
        from dlp.sendlog import open_store

        with open_store(setup.settings) as store:
            assert store.verify().ok
    finally:
        gw.stop()


@pytest.mark.postgres
def test_commit_that_fails_is_a_tempfail_and_the_retry_reuses_the_copy(
    lt: LoopThread, sink: Sink, tmp_path: Path
) -> None:
    setup = Setup("postgresql", tmp_path, sink)
    gw = InProcessGateway(setup.config, lt)
    try:
        assert send(gw.port, held_raw("warm-up"), "WARM2")[0] == 250
        raw = held_raw("commit lost")
        _break_pg(setup, commit=True)
        code, _ = send(gw.port, raw, "QID77")
        _heal_pg(setup)
        assert code == 451
        assert setup.raw_sql("SELECT count(*) FROM quarantine_held WHERE pending") == [(1,)]
        code, text = send(gw.port, raw, "QID77")
        assert code == 250, text
        assert setup.raw_sql("SELECT count(*), bool_or(pending) FROM quarantine_held") == [
            (2, False)
        ]
        # Both attempts are in the send log, under the one audit key and one held id.
        held = [m for m in setup.events("message") if m["audit_key"] == "QID77"]
        replies = {m["next_hop_reply"] for m in held}
        assert len(held) == 2 and len(replies) == 1
    finally:
        gw.stop()
        setup.cleanup()


@pytest.mark.postgres
def test_log_purge_records_each_expired_hold(lt: LoopThread, sink: Sink, tmp_path: Path) -> None:
    setup = Setup("postgresql", tmp_path, sink)
    gw = InProcessGateway(setup.config, lt)
    try:
        for i in range(2):
            assert send(gw.port, held_raw(f"old {i}"), f"OLD{i}")[0] == 250
        assert send(gw.port, held_raw("young"), "YOUNG")[0] == 250
    finally:
        gw.stop()
    try:
        setup.raw_sql(
            "UPDATE quarantine_held SET held_at = held_at - interval '31 days'"
            " WHERE id <> (SELECT id FROM quarantine_held ORDER BY held_at DESC LIMIT 1)"
        )
        r = setup.dlp("log", "purge")
        assert r.returncode == 0, r.stderr
        assert "quarantine: 2 expired held messages deleted" in r.stdout
        expired = setup.events("expire")
        assert sorted(str(e["audit_key"]) for e in expired) == ["OLD0", "OLD1"]
        for e in expired:
            assert e["actor"] == "retention" and "retention period" in str(e["comment"])
            # linked to the message's own entry by audit key and held id
            (msg,) = [
                json.dumps(m) for m in setup.events("message") if m["audit_key"] == e["audit_key"]
            ]
            assert json.loads(msg)["next_hop_reply"] == f"held {e['detail']['held_id']}"
        assert setup.subjects() == ["young"]
    finally:
        setup.cleanup()
