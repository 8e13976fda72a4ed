"""The SMTP sink that stands for the Internet: Postfix's relayhost in the e2e instance.

It accepts everything (SMTPUTF8 and 8-bit included) and keeps each transaction exactly as
received, so tests can assert what left the organisation, how often, and byte for byte.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Delivery:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    mail_options: tuple[str, ...]
    data: bytes
    at: float = 0.0
    """When it was received (``time.time()``), before the 250 was sent."""

    @property
    def smtputf8(self) -> bool:
        return "SMTPUTF8" in (o.upper() for o in self.mail_options)

    @property
    def is_bounce(self) -> bool:
        return self.mail_from in ("", "<>")

    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    def header(self, name: str) -> str:
        return str(self.message().get(name, ""))


class _Handler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        del server, session
        await self.sink.wait_stall()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        del server, session
        data = envelope.original_content or b""
        # Kept before the (possibly stalled) answer: like a real MTA whose queue file is
        # written before it replies, a message the client gave up on is still delivered.
        self.sink.add(
            Delivery(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                mail_options=tuple(envelope.mail_options),
                data=bytes(data),
                at=time.time(),
            )
        )
        await self.sink.wait_stall()
        return "250 2.0.0 Ok: delivered to the sink"


class Sink:
    def __init__(self, port: int) -> None:
        self.port = port
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._stall_until = 0.0
        self._controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=port,
            enable_SMTPUTF8=True,
            decode_data=False,
            data_size_limit=50_000_000,
            ident="e2e-sink",
        )

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def stall(self, seconds: float) -> None:
        """Stop answering MAIL and end-of-DATA for ``seconds`` (a next hop that hangs);
        a message whose DATA arrives meanwhile is kept, its 250 comes late."""
        self._stall_until = time.monotonic() + seconds

    async def wait_stall(self) -> None:
        while (left := self._stall_until - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.2))

    def add(self, delivery: Delivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def to(self, recipient: str) -> list[Delivery]:
        """Deliveries (not bounces) that carried ``recipient``."""
        return [d for d in self.deliveries() if recipient in d.rcpt_tos and not d.is_bounce]

    def with_marker(self, marker: str) -> list[Delivery]:
        """Deliveries whose raw bytes contain ``marker`` (each test tags its mail uniquely)."""
        raw = marker.encode()
        return [d for d in self.deliveries() if raw in d.data and not d.is_bounce]

    def bounces_about(self, marker: str) -> list[Delivery]:
        raw = marker.encode()
        return [d for d in self.deliveries() if d.is_bounce and raw in d.data]

    def wait(self, probe: Any, timeout: float, what: str) -> list[Delivery]:
        """Poll ``probe()`` (a list of deliveries) until non-empty."""
        deadline = time.monotonic() + timeout
        while True:
            found = probe()
            if found:
                return list(found)
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.05)
