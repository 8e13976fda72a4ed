"""Test support for the console: settings in a temp dir, a real SMTP sink on
loopback, a seeded send log and real held messages."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from argon2 import PasswordHasher
from support import free_port, my_number

from dlp.config import (
    ConsoleSettings,
    DomainSettings,
    PathSettings,
    QuarantineSettings,
    SendLogSettings,
    Settings,
    SmtpSettings,
    load_file,
)
from dlp.holdqueue.store import HeldMessage, open_quarantine
from dlp.model import (
    Action,
    AttachmentInfo,
    AttachmentStatus,
    Confidence,
    Finding,
    MyNumberSummary,
    Recipient,
    RecipientClass,
    ScanReport,
    Verdict,
)
from dlp.sendlog import SendLogStore, record_for_event, record_for_message

if TYPE_CHECKING:
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery staple"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""Argon2's defaults cost ~50 ms and 64 MiB a hash on purpose; tests log in often."""
ROLES = ("reviewer", "approver", "admin")
ALLOWLIST = """\
# test allowlist
[own]
example.lg.jp

[partner]
partner.co.jp
payroll.example.co.jp  mynumber
"""


def make_settings(root: Path, next_hop_port: int) -> Settings:
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config" / "allowed_domains.txt").write_text(ALLOWLIST, encoding="utf-8")
    return Settings(
        paths=PathSettings(var_dir="var"),
        smtp=SmtpSettings(next_hop=f"127.0.0.1:{next_hop_port}", next_hop_timeout=10.0),
        domains=DomainSettings(allowlist="config/allowed_domains.txt"),
        sendlog=SendLogSettings(sqlite_path="var/sendlog.db"),
        quarantine=QuarantineSettings(dir="var/quarantine"),
        # Every TestClient comes from one address ("testclient") and the tests sign
        # in many times a minute; test_console_login_guard.py tests the limit itself.
        console=ConsoleSettings(login_attempts_per_minute=0),
        # the shipped rules: the held pages show a rule's reason in the page's language
        policy=_SHIPPED_POLICY,
        base_dir=str(root),
        source="<console tests>",
    )


_SHIPPED_POLICY = load_file(Path(__file__).resolve().parents[2] / "config" / "dlp.toml").policy


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self.arrived:
            self.messages.append((envelope.mail_from or "", list(envelope.rcpt_tos), content))
            self.arrived.notify_all()
        return "250 2.0.0 Ok: queued as SINK1"


class Sink:
    """A real SMTP server on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.handler = _Collect()
        self.port = free_port()
        self._controller: Controller | None = None

    def start(self) -> None:
        # A Controller cannot be restarted; a fresh one on the same port can.
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[tuple[str, list[str], bytes]]:
        return self.handler.messages

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        with self.handler.arrived:
            return self.handler.arrived.wait_for(lambda: len(self.messages) >= n, timeout)


def _recipient(address: str, klass: RecipientClass, resembles: str | None = None) -> Recipient:
    return Recipient(address, address.rpartition("@")[2], klass, resembles=resembles)


def seed_log(store: SendLogStore, now: datetime | None = None) -> None:
    """A small, known send log (counts the tests rely on are in the docstrings below).

    - 30 messages over the last 30 hours, one an hour, sender user<i%3>@example.lg.jp
    - every message has attachment 名簿<i>.csv; i % 5 == 0 goes to lookalike exp.com
      (meant exp.co.jp) and was rejected, the rest go to external client<i%4>.co.jp
    - i % 3 == 0 has a high-confidence My Number finding and was held (10 messages)
    - one allowlist_add event by 'admin'
    """
    now = now or datetime.now(UTC)
    records = []
    for i in range(30):
        lookalike = i % 5 == 0
        rcpt = (
            _recipient(f"staff{i}@exp.com", RecipientClass.LOOKALIKE, "exp.co.jp")
            if lookalike
            else _recipient(f"staff{i}@client{i % 4}.co.jp", RecipientClass.EXTERNAL)
        )
        finding = i % 3 == 0
        report = ScanReport(
            source=f"msg{i}",
            findings=(
                Finding("mynumber", Confidence.HIGH, f"attachment:名簿{i}.csv!B", "****-****-****"),
            )
            if finding
            else (),
            summaries={
                "mynumber": MyNumberSummary(1, 1, 1, 0, 0) if finding else MyNumberSummary()
            },
            attachments=(
                AttachmentInfo(
                    f"名簿{i}.csv", "text/csv", 100 + i, f"{i:064x}", AttachmentStatus.SCANNED
                ),
            ),
            message_id=f"<m{i}@example.lg.jp>",
            subject=f"送付資料 {i}",
            header_from=f"user{i % 3}@example.lg.jp",
        )
        action = Action.REJECT if lookalike else Action.HOLD if finding else Action.DELIVER
        records.append(
            record_for_message(
                audit_key=f"QUEUE{i:04d}",
                client_address="127.0.0.1",
                sender=f"user{i % 3}@example.lg.jp",
                recipients=[rcpt],
                report=report,
                verdict=Verdict(action, "test-rule", ("because",)),
                next_hop_reply="250 2.0.0 Ok" if action is Action.DELIVER else "",
                when=now - timedelta(hours=i, minutes=1),
            )
        )
    records.append(
        record_for_event(
            event="allowlist_add", actor="admin", comment="seed", detail={"domain": "x.co.jp"}
        )
    )
    store.append_many(records)  # one transaction: tests seed a fresh log each time


def held_numbers(numbers: int = 3) -> list[str]:
    return [my_number(f"{31234567890 + i * 7919:011d}") for i in range(numbers)]


def held_raw(numbers: int = 3) -> bytes:
    """A message whose CSV attachment holds ``held_numbers(numbers)`` under 個人番号."""
    msg = EmailMessage()
    msg["From"] = "taro@example.lg.jp"
    msg["To"] = "someone@client.co.jp"
    msg["Subject"] = "職員名簿の送付"
    msg["Message-ID"] = "<held-test@example.lg.jp>"
    msg.set_content("名簿を送ります。\n")
    rows = ["氏名,個人番号"] + [f"職員{i},{n}" for i, n in enumerate(held_numbers(numbers))]
    msg.add_attachment(
        ("\r\n".join(rows) + "\r\n").encode("utf-8"),
        maintype="text",
        subtype="csv",
        filename="meibo.csv",
    )
    return msg.as_bytes()


def hold_message(settings: Settings, raw: bytes | None = None) -> HeldMessage:
    """Hold a message the way the gateway does: real scan, real policy verdict shape."""
    from dlp.scanner import scan_message

    raw = raw or held_raw()
    report = scan_message(raw, settings.scan, source="test")
    verdict = Verdict(
        Action.HOLD,
        "mynumber-external",
        ("個人番号（マイナンバー）と思われる情報が含まれているため、送信を保留しました。",),
    )
    queue = open_quarantine(settings)
    held = queue.hold(
        raw,
        audit_key="ABC123DEF",
        sender="taro@example.lg.jp",
        recipients=["someone@client.co.jp"],
        mail_options=[],
        verdict=verdict,
        report=report,
        client_address="127.0.0.1",
    )
    queue.commit(held.id)  # the gateway commits once the send-log entry is written
    return held


def login(c: TestClient, name: str, password: str) -> None:
    page = c.get("/login")
    token = csrf_of(page.text)
    r = c.post("/login", data={"csrf_token": token, "name": name, "password": password})
    assert r.status_code == 303, r.text


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "page has no CSRF field"
    return m.group(1)
