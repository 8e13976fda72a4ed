"""Helpers for the gateway integration tests: a real aiosmtpd sink, an
in-process gateway on its own event-loop thread, config files on disk."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from support import free_port

from dlp.config import Settings, load_file

ROOT = Path(__file__).resolve().parents[2]


class LoopThread:
    """An asyncio loop running in a daemon thread; ``call`` runs a coroutine on it.

    The servers under test (the gateway, the next-hop sink) live here rather than on
    pytest-asyncio's loop: most gateway tests talk to them with the blocking
    ``smtplib`` client, as Postfix does from outside, which would stall a server on
    the test's own loop.  Tests that drive coroutines themselves (many concurrent
    clients, the protocol objects) are ``async def`` tests on pytest-asyncio."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    mail_options: list[str]
    rcpt_options: list[str]
    xforward: dict[str, str]


@dataclass
class SinkBehaviour:
    """What the sink does; tests change it while running."""

    refuse_rcpt: set[str] = field(default_factory=set)
    tempfail_rcpt: set[str] = field(default_factory=set)
    refuse_mail: str = ""
    data_reply: str = ""
    data_delay: float = 0.0
    rcpt_delay: float = 0.0
    mail_delay: float = 0.0
    rset_delay: float = 0.0


class _SinkSMTP(SMTP):
    """A next hop that also speaks XFORWARD and DSN (like Postfix's re-injection smtpd)."""

    async def smtp_XFORWARD(self, arg: str) -> None:
        assert self.session is not None
        xf = getattr(self.session, "xforward", {})
        for item in (arg or "").split():
            k, _, v = item.partition("=")
            xf[k] = v
        self.session.xforward = xf  # type: ignore[attr-defined]
        await self.push("250 2.0.0 Ok")

    async def smtp_RSET(self, arg: str | None) -> None:
        delay = self.event_handler.sink.behaviour.rset_delay
        if delay:
            await asyncio.sleep(delay)
        await super().smtp_RSET(arg)

    def _getparams(self, params: Any) -> Any:
        out = super()._getparams(params)
        return out

    async def smtp_RCPT(self, arg: str | None) -> None:
        # Accept (and keep) DSN parameters, which stock aiosmtpd refuses.
        assert self.envelope is not None
        if arg and " " in arg.strip():
            addr_part, _, params = arg.strip().partition(" ")
            self.envelope.rcpt_options.extend(params.split())
            arg = addr_part
        await super().smtp_RCPT(arg)

    async def smtp_MAIL(self, arg: str | None) -> None:
        assert self.envelope is not None
        keep = []
        if arg:
            words = arg.split()
            plain = [w for w in words if not w.upper().startswith(("RET=", "ENVID="))]
            keep = [w for w in words if w.upper().startswith(("RET=", "ENVID="))]
            arg = " ".join(plain)
        await super().smtp_MAIL(arg)
        self.envelope.mail_options.extend(keep)


class Sink:
    def __init__(
        self,
        lt: LoopThread,
        *,
        dsn: bool = True,
        tls_context: Any = None,
        implicit_tls: bool = False,
        pipelining: bool = True,
    ) -> None:
        """``pipelining``: announce PIPELINING (RFC 2920), as Postfix does; aiosmtpd
        reads pipelined commands in order like any other."""
        self.lt = lt
        self.pipelining = pipelining
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.messages: list[Received] = []
        self.data_started = 0
        self.behaviour = SinkBehaviour()
        self.dsn = dsn
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.connections = 0
        self.mails = 0  # MAIL commands seen, refused ones too
        self.transports: list[Any] = []
        self.tls_seen: list[bool] = []

    def drop_connections(self) -> None:
        """Close every session from the sink's side (an idle timeout, a restart)."""

        async def go() -> None:
            for t in self.transports:
                if t is not None:
                    t.close()
            self.transports.clear()

        self.lt.call(go())

    async def _start(self, port: int = 0) -> None:
        handler = _SinkHandler(self)
        self.server = await self.lt.loop.create_server(
            lambda: _SinkSMTP(
                handler,
                enable_SMTPUTF8=True,
                hostname="sink.test",
                data_size_limit=None,
                tls_context=None if self.implicit_tls else self.tls_context,
            ),
            "127.0.0.1",
            port,
            ssl=self.tls_context if self.implicit_tls else None,
        )
        self.port = self.server.sockets[0].getsockname()[1]

    def start(self, port: int = 0) -> Sink:
        self.lt.call(self._start(port))
        return self

    def stop(self) -> None:
        async def go() -> None:
            if self.server is not None:
                self.server.close()
                await self.server.wait_closed()

        self.lt.call(go())

    def wait_for(self, n: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


class _SinkHandler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        self.sink.connections += 1
        self.sink.transports.append(server.transport)
        extra = ["250-XFORWARD NAME ADDR PROTO HELO IDENT SOURCE PORT"]
        if self.sink.pipelining:
            extra.append("250-PIPELINING")
        if self.sink.dsn:
            extra.append("250-DSN")
        return responses[:-1] + extra + responses[-1:]

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.sink.mails += 1
        if self.sink.behaviour.mail_delay:
            await asyncio.sleep(self.sink.behaviour.mail_delay)
        if self.sink.behaviour.refuse_mail:
            return self.sink.behaviour.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"  # aiosmtpd's own answer

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        b = self.sink.behaviour
        if b.rcpt_delay:
            await asyncio.sleep(b.rcpt_delay)
        if address in b.refuse_rcpt:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in b.tempfail_rcpt:
            return f"451 4.3.0 <{address}>: Temporary lookup failure"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        b = self.sink.behaviour
        self.sink.data_started += 1  # the message is here; its answer may be delayed
        if b.data_delay:
            await asyncio.sleep(b.data_delay)
        if b.data_reply:
            return b.data_reply
        self.sink.tls_seen.append(
            session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        )
        self.sink.messages.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content or b"",
                list(envelope.mail_options),
                list(envelope.rcpt_options),
                dict(getattr(session, "xforward", {})),
            )
        )
        return f"250 2.0.0 Ok: queued as SINK{len(self.sink.messages)}"


def write_config(
    directory: Path,
    *,
    next_hop_port: int,
    listen_port: int = 0,
    smtp: dict[str, Any] | None = None,
    scan: dict[str, Any] | None = None,
    domains: dict[str, Any] | None = None,
    sections: dict[str, dict[str, Any]] | None = None,
    allowlist: str = "[own]\nexample.lg.jp\n\n[partner]\nexp.co.jp\npayroll.example.jp mynumber\n",
) -> Path:
    """A config/dlp.toml under ``directory`` from the project's defaults plus overrides."""
    cfg_dir = directory / "config"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    (cfg_dir / "allowed_domains.txt").write_text(allowlist, encoding="utf-8")
    text = (ROOT / "config" / "dlp.toml").read_text(encoding="utf-8")
    values = {
        "smtp": {
            "listen": f"127.0.0.1:{listen_port or free_port()}",
            "next_hop": f"127.0.0.1:{next_hop_port}",
            "hostname": "gw.test",
            "processes": 1,
            "next_hop_timeout": 5.0,
            **(smtp or {}),
        },
        "scan": {"workers": 1, **(scan or {})},
        "domains": domains or {},
        **(sections or {}),
    }
    for section, items in values.items():
        for key, value in items.items():
            text = _set(text, section, key, value)
    path = cfg_dir / "dlp.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _set(text: str, section: str, key: str, value: Any) -> str:
    import json
    import re

    rendered = json.dumps(value) if not isinstance(value, bool) else ("true" if value else "false")
    start = text.index(f"[{section}]\n")
    end = text.find("\n[", start + 1)
    end = len(text) if end == -1 else end
    block = text[start:end]
    pattern = re.compile(rf"^{re.escape(key)} = .*$", re.M)
    if pattern.search(block):
        block = pattern.sub(lambda _m: f"{key} = {rendered}", block, count=1)
    else:
        block = block.replace(f"[{section}]\n", f"[{section}]\n{key} = {rendered}\n", 1)
    return text[:start] + block + text[end:]


class InProcessGateway:
    """A real gateway (real pool, quarantine, send log) on a loop thread."""

    def __init__(
        self, config: Path, lt: LoopThread, scan_fn: Callable[..., Any] | None = None
    ) -> None:
        from dlp.smtp.gateway import Gateway
        from dlp.smtp.server import start_server

        self.settings: Settings = load_file(config)
        self.lt = lt

        async def go() -> tuple[Any, Any]:
            gw = Gateway(self.settings, scan_fn=scan_fn)
            await gw.start()
            host, _ = self.settings.smtp.listen_addr
            srv = await start_server(gw, host, 0)
            return gw, srv

        self.gateway, self.server = lt.call(go(), timeout=60)
        self.port = self.server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def go() -> None:
            self.server.close()
            for s in list(self.gateway.sessions):
                if s.transport is not None:
                    s.transport.close()
            await self.gateway.close()

        self.lt.call(go())


def sendlog_entries(settings: Settings) -> list[Any]:
    from dlp.sendlog import open_store

    if not settings.sqlite_path.exists():
        return []
    with open_store(settings) as store:
        return list(store.query(None, limit=1000))


def env_for_subprocess() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DLP_CONFIG", None)
    return env


def fault_scan(raw: bytes, settings: Any, source: str) -> Any:
    """The real scanner, plus two faults a test can ask for by header, acted on
    only inside a worker process (never in the serving loop)."""
    import multiprocessing

    from dlp.scanner import scan_message

    if multiprocessing.parent_process() is None and b"X-Test-Inline-Timeout: yes" in raw:
        from dlp.model import ScanReport

        return ScanReport(source=source, size=len(raw), error="timeout: simulated slow inline scan")
    if multiprocessing.parent_process() is not None:
        if b"X-Test-Crash: yes" in raw:
            os._exit(9)
        if b"X-Test-Sleep: yes" in raw:
            time.sleep(30)
    return scan_message(raw, settings, source)


def mime_with_attachment(
    subject: str, text: str, filename: str, data: bytes, extra_headers: str = ""
) -> bytes:
    from email.message import EmailMessage
    from email.policy import SMTP as SMTP_POLICY

    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = "sender@example.lg.jp"
    msg["To"] = "someone@kaisha-abc.jp"
    msg["Subject"] = subject
    msg.set_content(text)
    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    raw = msg.as_bytes()
    return extra_headers.encode() + raw


SENDER = "sender@example.lg.jp"
EXTERNAL = "someone@kaisha-abc.jp"


def plain(subject: str, body: str, extra: str = "", *, first: str = "") -> bytes:
    """A plain UTF-8 message from SENDER to EXTERNAL: ``extra`` header lines go
    after Message-ID, ``first`` ones before From."""
    return (
        f"{first}From: {SENDER}\r\nTo: {EXTERNAL}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.lg.jp>\r\n{extra}"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode()


class RawClient:
    """SMTP over a bare socket: commands sent as they are (several in one write,
    as RFC 2920 allows), each reply read whole, and free to walk away without
    waiting (as Postfix does after QUIT with ``smtp_skip_quit_response = yes``)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        assert self.reply()[0] == 220

    def reply(self) -> tuple[int, bytes]:
        """The next reply's code and its lines."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError(b"\n".join(lines) + self.buf)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), b"\n".join(lines)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, line: str) -> tuple[int, bytes]:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def leave(self, last: str = "") -> None:
        """Close, after sending ``last`` (if any) without reading its reply."""
        if last:
            self.send(last.encode() + b"\r\n")
        self.sock.close()
