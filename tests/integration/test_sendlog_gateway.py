"""The send log through the running gateway (issue 6): `dlp serve` as a real
process, real SMTP from smtplib, a real aiosmtpd next hop, the real store.

Every attachment send appears exactly once with the right fields and no
number; a send log that cannot be written tempfails the message and nothing
reaches the next hop.  Run against SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import pytest
from gwtools import LoopThread, Sink, write_config
from sendlog_support import BACKENDS, QUARANTINE_KEY, Backend, backend_fixture
from support import digitless_token, free_port, my_number

pytestmark = pytest.mark.timeout(180)

SENDER = "tanaka@example.lg.jp"  # own domain in write_config's allowlist
PARTNER = "keiri@exp.co.jp"
EXTERNAL = "someone@kaisha-abc.jp"
NUMBERS = [my_number(b) for b in ("12345678901", "23456789012", "98765432109")]


@pytest.fixture
def sink(lt: LoopThread) -> Iterator[Sink]:
    s = Sink(lt).start()
    yield s
    s.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from backend_fixture(request, tmp_path)


class Served:
    """`dlp serve` in its own process group, stopped with SIGTERM."""

    def __init__(self, root: Path, sink: Sink, sendlog_toml: str) -> None:
        cfg = write_config(
            root,
            next_hop_port=sink.port,
            sections={"quarantine": {"encryption_key": QUARANTINE_KEY}},
        )
        text = cfg.read_text(encoding="utf-8")
        start = text.index("[sendlog]\n")
        end = text.index("\n[", start + 1)
        cfg.write_text(text[:start] + sendlog_toml + text[end:], encoding="utf-8")
        self.config = cfg
        self.port = free_port()
        self.logfile = root / "gateway.log"
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from dlp.cli import main; main()",
                    "serve",
                    "--config",
                    str(cfg),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dlp serve exited: {self.log()}")
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=5) as c:
                    if c.noop()[0] == 250:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"dlp serve did not start: {self.log()}")

    def log(self) -> str:
        return self.logfile.read_text(encoding="utf-8", errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def dlp_log(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from dlp.cli import main; main()", "log", *args,
             "--config", str(self.config)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    def entries(self) -> list[dict[str, object]]:
        r = self.dlp_log("list", "--limit", "500", "--oldest", "--json")
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines()]


def message(subject: str, to: list[str], attachments: list[tuple[str, str, bytes]]) -> bytes:
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = f"田中 <{SENDER}>"
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    # Letters only: the scanner stars out runs of 8+ digits in header text.
    msg["Message-ID"] = f"<{digitless_token()}@example.lg.jp>"
    msg.set_content("資料を送ります。\n")
    for name, ctype, data in attachments:
        main, sub = ctype.split("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg.as_bytes()


def _pdf(text: str) -> bytes:
    """A real PDF, made with reportlab, that the scanner can read."""
    import io

    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.drawString(72, 720, text)
    c.save()
    return buf.getvalue()


def send(port: int, to: list[str], raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
        c.ehlo("mta.example.lg.jp")
        c.mail(SENDER)
        for r in to:
            code, text = c.rcpt(r)
            assert code == 250, (r, code, text)
        return c.data(raw)


def _mid(raw: bytes) -> str:
    for line in raw.split(b"\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError("no Message-ID")


def test_every_attachment_send_is_recorded_once(
    backend: Backend, sink: Sink, tmp_path: Path
) -> None:
    gw = Served(tmp_path, sink, backend.toml())
    try:
        pdf = _pdf("Quotation No. 2026-118 / total 1,200,000 yen")
        roster = "氏名,個人番号\n" + "".join(f"職員{i},{n}\n" for i, n in enumerate(NUMBERS))
        roster_bytes = roster.encode("utf-8")
        sent = {
            "clean": message("見積書の送付", [PARTNER, EXTERNAL], [("見積書.pdf", "application/pdf", pdf)]),
            "plain": message("打合せ", [EXTERNAL], []),
            "numbers": message("職員名簿", [EXTERNAL], [("職員名簿.csv", "text/csv", roster_bytes)]),
        }  # fmt: skip
        replies = {
            "clean": send(gw.port, [PARTNER, EXTERNAL], sent["clean"]),
            "plain": send(gw.port, [EXTERNAL], sent["plain"]),
            "numbers": send(gw.port, [EXTERNAL], sent["numbers"]),
        }
        assert all(code == 250 for code, _ in replies.values()), (replies, gw.log())
        assert len(sink.wait_for(2)) == 2  # clean and plain delivered; numbers held

        entries = gw.entries()
        by_mid = {}
        for e in entries:
            by_mid.setdefault(e["message_id"], []).append(e)
        assert _mid(sent["plain"]) not in by_mid  # no attachment, no finding, delivered
        (clean,) = by_mid[_mid(sent["clean"])]  # exactly once
        (held,) = by_mid[_mid(sent["numbers"])]

        assert clean["event"] == "message" and clean["sender"] == SENDER
        assert clean["client_address"] == "127.0.0.1"
        assert clean["subject"] == "見積書の送付" and SENDER in str(clean["header_from"])
        assert clean["audit_key"]
        assert sorted((r["address"], r["class"]) for r in clean["recipients"]) == [  # type: ignore[index,union-attr]
            (PARTNER, "partner"),
            (EXTERNAL, "external"),
        ]
        (att,) = clean["attachments"]  # type: ignore[misc]
        assert att["filename"] == "見積書.pdf" and att["size"] == len(pdf)
        assert att["sha256"] == hashlib.sha256(pdf).hexdigest()
        assert att["content_type"] == "application/pdf"
        assert clean["verdict"]["action"] == "deliver" and clean["findings"] == []  # type: ignore[index]

        # the next hop's answer follows as an outcome entry linked to the message entry
        deadline = time.monotonic() + 10
        outcomes: list[dict[str, object]] = []
        while time.monotonic() < deadline and not outcomes:
            outcomes = [
                e
                for e in gw.entries()
                if e["event"] == "outcome" and e["audit_key"] == clean["audit_key"]
            ]
            time.sleep(0.2)
        (outcome,) = outcomes
        assert outcome["detail"] == {"entry": clean["id"]}
        assert str(outcome["next_hop_reply"]).startswith("250") and "SINK" in str(
            outcome["next_hop_reply"]
        )

        assert held["verdict"]["action"] == "hold"  # type: ignore[index]
        assert held["verdict"]["rule"] == "mynumber-external"  # type: ignore[index]
        assert held["mynumber_distinct"] == 3 and held["reportable_scale"] is False
        assert held["findings"][0]["detector"] == "mynumber"  # type: ignore[index]
        assert held["attachments"][0]["sha256"] == hashlib.sha256(roster_bytes).hexdigest()  # type: ignore[index]

        # no number, not even in part, anywhere in the stored log
        r = gw.dlp_log("export", "--format", "jsonl")
        dump = r.stdout
        if backend.kind == "sqlite":
            dump += backend.path.read_bytes().decode("latin-1")
        for n in NUMBERS:
            assert n not in dump and n[:8] not in dump

        # a filtered search finds the held one by its attachment hash
        r = gw.dlp_log("search", "--attachment", hashlib.sha256(roster_bytes).hexdigest(), "--json")
        assert [json.loads(x)["message_id"] for x in r.stdout.splitlines()] == [
            _mid(sent["numbers"])
        ]
        assert gw.dlp_log("verify").returncode == 0
    finally:
        gw.stop()


def test_sqlite_log_that_cannot_be_written_tempfails(sink: Sink, tmp_path: Path) -> None:
    backend = Backend("sqlite", tmp_path)
    gw = Served(tmp_path, sink, backend.toml())
    # a readable file: a damaged one would be held (issue 11), not delivered
    attach = [("a.csv", "text/csv", "品名,数量\nりんご,3\n".encode() * 20)]
    try:
        assert send(gw.port, [EXTERNAL], message("first", [EXTERNAL], attach))[0] == 250
        sink.wait_for(1)
        # another process holds the database's write lock past the busy timeout
        blocker = sqlite3.connect(backend.path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            code, text = send(gw.port, [EXTERNAL], message("blocked", [EXTERNAL], attach))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert code == 451, (code, text, gw.log())
        time.sleep(0.5)
        assert len(sink.messages) == 1  # nothing sent without its record
        # and once the log is writable again, mail flows and is recorded
        assert send(gw.port, [EXTERNAL], message("again", [EXTERNAL], attach))[0] == 250
        messages = [e for e in gw.entries() if e["event"] == "message"]
        assert [e["subject"] for e in messages] == ["first", "again"]
    finally:
        gw.stop()


@pytest.mark.postgres
def test_unreachable_postgresql_tempfails(sink: Sink, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    toml = (
        '[sendlog]\nbackend = "postgresql"\n'
        f'postgresql_dsn = "postgresql://postgres@127.0.0.1:{dead}/test?connect_timeout=2"\n'
    )
    gw = Served(tmp_path, sink, toml)
    try:
        code, _ = send(
            gw.port,
            [EXTERNAL],
            message("with file", [EXTERNAL], [("a.pdf", "application/pdf", b"%PDF-1.4\nx")]),
        )
        assert code == 451, gw.log()
        # a message that needs no record still flows
        assert send(gw.port, [EXTERNAL], message("no file", [EXTERNAL], []))[0] == 250
        got = sink.wait_for(1)
        assert len(got) == 1 and b"no file" in got[0].content
    finally:
        gw.stop()
