"""A small SMTP client for the next hop: pipelined commands, CHUNKING, one write a step.

Why not aiosmtplib, which this replaced: it reads exactly one reply per command
written and drops replies that arrive while none is awaited (its
``read_response`` says so), so it cannot send PIPELINING groups (RFC 2920) or
``BDAT`` (RFC 3030) with the message in the same write.  Behind Postfix and
in front of ``smtp-sink`` every next-hop round trip the gateway saves is a
system call pair and an event-loop wake-up per message, which at 20 KB is most
of what the gateway costs (bench/RESULTS-gateway.md).

What it does, and only that:

* connect (plain, implicit TLS, or STARTTLS), read the banner, EHLO (HELO if
  EHLO is refused) and remember the extensions;
* ``send`` writes any number of command lines (or a BDAT chunk) in one system
  call; ``reply`` returns the next reply in the order the commands went out, so
  a pipelined group is read back one reply at a time.  Replies that arrived
  early wait in a queue: nothing is ever dropped or paired with the wrong
  command.
* every failure is an exception: ``ReplyError`` for a reply that made the
  connection unusable (banner, EHLO, STARTTLS), ``ConnectionError`` for a lost or
  garbled connection, ``TimeoutError`` for a next hop that went quiet.
  ``relay.NextHop`` turns them into upstream replies.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

# A reply line is at most 512 octets (RFC 5321 4.5.3.1.5); real servers stay far
# below.  A whole reply (EHLO's is the longest) larger than this is not SMTP.
_MAX_LINE = 4096
_MAX_REPLY = 65536


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    message: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def line(self) -> str:
        """One reply line for the upstream client (multi-line text folded)."""
        return f"{self.code} {' '.join(self.message.split())}"


class ReplyError(Exception):
    """A reply that leaves the connection unusable (banner, EHLO, STARTTLS refused)."""

    def __init__(self, stage: str, reply: Reply) -> None:
        super().__init__(f"{stage}: {reply.line}")
        self.stage = stage
        self.reply = reply


class _Protocol(asyncio.Protocol):
    """Splits what the server sends into replies; hands each to the oldest waiter."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.replies: collections.deque[Reply] = collections.deque()
        self.waiters: collections.deque[asyncio.Future[Reply]] = collections.deque()
        self.error: Exception | None = None
        self._lines: list[bytes] = []
        self._paused: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end == -1:
                break
            line = bytes(buf[start:end]).rstrip(b"\r")
            start = end + 1
            if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in (b"", b" ", b"-"):
                self._fail(
                    ConnectionError(f"next hop sent something that is not SMTP: {line[:60]!r}")
                )
                return
            self._lines.append(line)
            if line[3:4] == b"-":
                if len(self._lines) > 200:
                    self._fail(ConnectionError("next hop sent an endless multi-line reply"))
                    return
                continue
            lines, self._lines = self._lines, []
            text = "\n".join(x[4:].decode("utf-8", "surrogateescape").strip() for x in lines)
            self._deliver(Reply(int(line[:3]), text))
        if start:
            del buf[:start]
        if len(buf) > _MAX_LINE or sum(map(len, self._lines)) > _MAX_REPLY:
            self._fail(ConnectionError("next hop sent a reply line too long for SMTP"))

    def _deliver(self, reply: Reply) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():  # a waiter whose caller timed out is skipped
                waiter.set_result(reply)
                return
        self.replies.append(reply)

    def _fail(self, exc: Exception) -> None:
        if self.error is None:
            self.error = exc
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)
                waiter.exception()  # retrieved: a caller that gave up must not log it
        if self.transport is not None:
            transport, self.transport = self.transport, None
            transport.abort()

    def eof_received(self) -> bool:
        self._fail(ConnectionError("next hop closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(
            ConnectionError(f"next hop connection lost: {exc}")
            if exc is not None
            else ConnectionError("next hop closed the connection")
        )
        if self._paused is not None and not self._paused.done():
            self._paused.set_result(None)

    def pause_writing(self) -> None:
        if self._paused is None or self._paused.done():
            self._paused = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._paused is not None and not self._paused.done():
            self._paused.set_result(None)

    async def drain(self) -> None:
        if self._paused is not None and not self._paused.done():
            await self._paused


class SmtpClient:
    """One connection to an SMTP server.  Not safe for two tasks at once."""

    def __init__(self, host: str, port: int, *, timeout: float, local_hostname: str) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.extensions: dict[str, str] = {}
        self._protocol: _Protocol | None = None

    # -- connection ---------------------------------------------------------

    async def connect(self, *, tls: str = "none", context: ssl.SSLContext | None = None) -> None:
        """Connect, read the banner, EHLO; ``tls`` is ``none``, ``tls`` or ``starttls``."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.timeout):
            _, protocol = await loop.create_connection(
                lambda: _Protocol(loop),
                self.host,
                self.port,
                ssl=context if tls == "tls" else None,
                server_hostname=self.host if tls == "tls" else None,
            )
        self._protocol = protocol
        try:
            banner = await self.reply()
            if banner.code != 220:
                raise ReplyError("banner", banner)
            await self._hello()
            if tls == "starttls":
                await self._starttls(context)
        except BaseException:
            self.close()
            raise

    async def _hello(self) -> None:
        ehlo = await self.command(b"EHLO " + self.local_hostname.encode("ascii", "replace"))
        if ehlo.ok:
            self.extensions = _extensions(ehlo.message)
            return
        # RFC 5321 3.2: a server that does not know EHLO gets HELO.
        helo = await self.command(b"HELO " + self.local_hostname.encode("ascii", "replace"))
        if not helo.ok:
            raise ReplyError("EHLO", ehlo if ehlo.code >= 500 else helo)
        self.extensions = {}

    async def _starttls(self, context: ssl.SSLContext | None) -> None:
        if not self.supports("starttls"):
            raise ReplyError("STARTTLS", Reply(454, "4.7.0 next hop does not offer STARTTLS"))
        reply = await self.command(b"STARTTLS")
        if reply.code != 220:
            raise ReplyError("STARTTLS", reply)
        protocol = self._protocol
        assert protocol is not None and protocol.transport is not None
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.timeout):
            transport = await loop.start_tls(
                protocol.transport,
                protocol,
                context or ssl.create_default_context(),
                server_hostname=self.host,
            )
        if transport is None:
            raise ConnectionError("next hop connection lost during the TLS handshake")
        protocol.transport = transport
        # RFC 3207 4.2: forget what was said before TLS; ask again.
        await self._hello()

    @property
    def is_connected(self) -> bool:
        p = self._protocol
        return (
            p is not None
            and p.error is None
            and p.transport is not None
            and not (p.transport.is_closing())
        )

    @property
    def in_step(self) -> bool:
        """Connected, and no reply received and not yet read, nor awaited: every
        command sent has been answered and read (what the pool requires)."""
        p = self._protocol
        return (
            self.is_connected
            and p is not None
            and not p.replies
            and not p._lines
            and not p.buffer
            and not any(not w.done() for w in p.waiters)
        )

    def supports(self, extension: str) -> bool:
        return extension.lower() in self.extensions

    def close(self) -> None:
        """Close at once, without QUIT."""
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            transport, protocol.transport = protocol.transport, None
            transport.abort()

    async def quit(self) -> None:
        """QUIT politely (bounded by the timeout), then close."""
        try:
            if self.is_connected:
                await self.command(b"QUIT")
        finally:
            self.close()

    # -- commands -----------------------------------------------------------

    def send(self, data: bytes | Iterable[bytes]) -> None:
        """Write now, without waiting for any reply (one system call where possible)."""
        protocol = self._protocol
        if protocol is None or protocol.transport is None:
            raise ConnectionError(
                str(protocol.error) if protocol and protocol.error else "not connected"
            )
        if isinstance(data, bytes):
            protocol.transport.write(data)
        else:
            protocol.transport.writelines(data)

    async def drain(self) -> None:
        """Wait while the transport's buffer is above its high-water mark."""
        if self._protocol is not None:
            await self._protocol.drain()

    async def reply(self, timeout: float | None = None) -> Reply:
        """The next reply, in the order the commands were sent."""
        protocol = self._protocol
        if protocol is None:
            raise ConnectionError("not connected")
        if protocol.replies:
            return protocol.replies.popleft()
        if protocol.error is not None:
            raise protocol.error
        waiter: asyncio.Future[Reply] = protocol.loop.create_future()
        protocol.waiters.append(waiter)
        # One timer handle, not asyncio.timeout's context (a third of this
        # method's cost, three times a message): on expiry the waiter fails.
        timer = protocol.loop.call_later(
            self.timeout if timeout is None else timeout, _expire, waiter
        )
        try:
            return await waiter
        except BaseException:
            # A wait that ends without its reply - timed out, or cancelled because
            # the upstream client went away - leaves a reply owed: it may still
            # come and would then answer the *next* command, so a later session
            # handed this connection would be told the wrong thing.  No longer
            # usable: closed, and a closed connection is never pooled.
            self.close()
            raise
        finally:
            timer.cancel()

    async def command(self, line: bytes) -> Reply:
        """Send one command line and wait for its reply."""
        self.send(line + b"\r\n")
        return await self.reply()


def _expire(waiter: asyncio.Future[Reply]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("next hop did not answer in time"))


def _extensions(ehlo_text: str) -> dict[str, str]:
    """EHLO keywords (lower case) and their parameters, from the reply's text."""
    found: dict[str, str] = {}
    for line in ehlo_text.split("\n")[1:]:
        keyword, _, params = line.strip().partition(" ")
        if keyword:
            found[keyword.lower()] = params.strip()
    return found
