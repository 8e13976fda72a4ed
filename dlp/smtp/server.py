"""The SMTP side: one ``asyncio.Protocol`` per session, feeding one command loop.

Our own session layer, not aiosmtpd's.  aiosmtpd (and its ``Proxy`` handler,
which answers 250 when the downstream refused, so Postfix would drop mail the
next hop never took) ran this gateway's first rounds; by issue 17 its session
object and asyncio's streams under it cost more CPU per 20 KB message than
parsing, relaying and logging it together.  The replies are aiosmtpd's where a
client could tell, so that MTAs see the same server:

* only ``allowed_clients`` may talk to us: anyone else gets one ``554`` and is
  disconnected (the gateway must not be an open relay); while draining, new sessions
  get ``421``, and the session caps give ``421`` too;
* EHLO announces SIZE, 8BITMIME, SMTPUTF8, PIPELINING, ENHANCEDSTATUSCODES, DSN,
  XFORWARD (and STARTTLS when configured); never AUTH;
* MAIL and RCPT accept the DSN parameters (RET, ENVID, NOTIFY, ORCPT) with their
  case intact, and hand them to the next hop if it supports DSN;
* XFORWARD from the client (Postfix) is kept; its IDENT is the audit key;
* DATA is read in bulk (``datareader``), then decided by ``gateway.Gateway``;
* PIPELINING (RFC 2920): the replies to XFORWARD, MAIL and RCPT are held while the
  client's next command is already here, and leave with the next reply in one write;
* an exception anywhere is ``451 4.3.0`` (a permanent 500 would make Postfix
  bounce the mail instead of retrying it);
* a client that goes away ends the session at once: its task is cancelled wherever
  it is, so a message whose client left while it was read or scanned is never
  relayed; once it is being relayed, held or refused (``SessionState.committed``)
  it is finished instead, its log line and send-log outcome written (the MTA, with
  no answer, sends it again: the duplicate window every relay has).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any, cast

from dlp.smtp.addresses import (
    SOURCE_ROUTE,
    RoutingProblem,
    has_source_route,
    routing_problem,
    sender_refusal,
)
from dlp.smtp.datareader import Inbox, read_data
from dlp.smtp.gateway import TEMPFAIL_INTERNAL, Gateway, SessionState
from dlp.smtp.relay import MailParams, RcptParams

log = logging.getLogger("dlp.smtp.server")

# The address form nearly every MTA sends: <dot-atom-ish@domain> with no quoting,
# comments or source route.  Anything else goes to the email package's RFC 5322
# parser (about 0.2 ms each).
_SIMPLE_ADDRESS = re.compile(r"<([^\s<>()\[\]\\\",;:@]+@[^\s<>()\\\",;:@]+)>[ \t]*(.*)\Z", re.S)

_XFORWARD_ATTRS = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")
_MAX_JUNK = 100
"""NOOP, RSET, VRFY and HELP a session may send without a transaction (Postfix: 100)."""
_SYNTAX_MAIL = "501 5.5.4 Syntax: MAIL FROM:<address> [SP <mail-parameters>]"
_SYNTAX_RCPT = "501 5.5.4 Syntax: RCPT TO:<address> [SP <rcpt-parameters>]"
_SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"

LINE_LIMIT = 4096
"""Longest command line read, line end included: a RCPT with ORCPT (RFC 3461
allows 500 more octets) fits.  DATA does not use the line reader."""
_LIMIT_BEFORE_EHLO = 512
"""RFC 5321 4.5.3.1.4: a command line is at most 512 octets..."""
_LIMITS_AFTER_EHLO = {"MAIL": 2048 + 26 + 10, "RCPT": 2048}
"""...and after EHLO, with the parameters of the extensions offered (RFC 1870 adds
26 for SIZE, RFC 6531 10 for SMTPUTF8), as aiosmtpd counts them."""
_LIMIT_AFTER_EHLO = 1024
_BOGUS_LIMIT = 5
"""Unknown verbs until the session is closed."""
_BEFORE_STARTTLS = frozenset({"NOOP", "EHLO", "STARTTLS", "QUIT"})

_HELP = {
    "DATA": "DATA",
    "EHLO": "EHLO hostname",
    "HELO": "HELO hostname",
    "HELP": "HELP [command]",
    "MAIL": "MAIL FROM:<address> [SP <mail-parameters>]",
    "NOOP": "NOOP [ignored]",
    "QUIT": "QUIT",
    "RCPT": "RCPT TO:<address> [SP <rcpt-parameters>]",
    "RSET": "RSET",
    "STARTTLS": "STARTTLS",
    "VRFY": "VRFY <address>",
    "XFORWARD": "XFORWARD attribute=value...",
}


class GatewaySMTP(asyncio.Protocol):
    """One client connection: the transport's callbacks fill an ``Inbox`` that one
    task, the command loop, reads.  Every command runs to its reply before the
    next is read, so a session's commands never overlap."""

    def __init__(self, gateway: Gateway, *, tls_context: ssl.SSLContext | None = None) -> None:
        settings = gateway.settings.smtp
        self.gateway = gateway
        self.loop = asyncio.get_running_loop()
        self.hostname = gateway.hostname
        self.tls_context = tls_context
        self.require_starttls = bool(tls_context is not None and settings.require_tls)
        self.data_size_limit: int | None = settings.max_message_size
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.state: SessionState | None = None
        self._inbox = Inbox(self.loop)
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._ended = False
        self._closing = False
        """The session is over once the current command is: no more are read."""
        self._handshaking = False
        # What the session knows (RFC 5321 4.1.4: HELO/EHLO and RSET clear the rest).
        self._helo: str | None = None
        self._extended = False
        self._tls = False
        self._mail_from: str | None = None
        self._recipients = 0
        self._junk = 0
        self._busy = False
        """A transaction is open: a drain waits for it."""
        # RFC 2920 3.2: replies held while the client's next command is already here.
        self._held: list[bytes] = []
        self._may_hold = False
        # The client stopped reading its replies: wait before reading more commands.
        self._drained: asyncio.Future[None] | None = None
        self._write_paused = False
        # The idle timer: a deadline moved by each command, one timer that, when it
        # fires early, waits again for what is left (no cancel and re-arm per command).
        self._idle = settings.idle_timeout
        self._timeout_handle: asyncio.TimerHandle | None = None
        self._timeout_at = 0.0
        self._timer_at = 0.0

    # -- the transport's callbacks ---------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self._inbox.transport = transport
        self.peer = transport.get_extra_info("peername")
        refusal = self._refusal()
        if refusal is not None:
            transport.write(refusal.encode() + b"\r\n")
            transport.close()
            self._ended = True
            return
        # admit() counted the session in: no await before it is in ``sessions``.
        self.state = self.gateway.new_session(self.peer)
        self.gateway.sessions.add(self)
        self._reset_timeout()
        transport.write(f"220 {self.hostname} ESMTP dlp\r\n".encode())
        self._task = self.loop.create_task(self._run())

    def data_received(self, data: bytes) -> None:
        self._inbox.feed(data)

    def eof_received(self) -> bool:
        # The client is gone (or will never send again): whatever the session was
        # doing, stop, as a closed connection does.  False: close our side too.
        self._inbox.feed_eof()
        self._cancel()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._inbox.feed_eof()
        self._cancel()
        self._wake_drained()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drained()

    def _wake_drained(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def _until_drained(self) -> None:
        """Wait while the client is not reading its replies (writing is paused)."""
        while self._write_paused and self.transport is not None:
            self._drained = self.loop.create_future()
            await self._drained

    def _cancel(self) -> None:
        # Only a loop that has started: a task cancelled before its first step never
        # runs its ``finally``, and the session would stay counted.  One that has not
        # started sees ``_closing`` and finishes by itself, running no command (as a
        # started one would not: the client is gone).
        self._closing = True
        if self.state is not None and self.state.committed:
            # Relaying or holding it already: finish, so that the log line and the
            # send-log outcome are written; the session ends after this command.
            return
        if self._task is not None and self._started and not self._ended:
            self._task.cancel()

    def _refusal(self) -> str | None:
        gateway = self.gateway
        if not gateway.client_allowed(self.peer):
            log.warning(
                "client refused",
                extra={
                    "dlp": {
                        "event": "client refused",
                        "client": str(self.peer[0] if self.peer else ""),
                    }
                },
            )
            return "554 5.7.1 Access denied / 接続は許可されていません"
        if gateway.draining:
            return _SHUTTING_DOWN
        return gateway.admit(self.peer)

    # -- timers, replies ---------------------------------------------------

    def _reset_timeout(self) -> None:
        at = self.loop.time() + self._idle
        self._timeout_at = at
        if self._timeout_handle is None or at < self._timer_at:
            if self._timeout_handle is not None:
                self._timeout_handle.cancel()
            self._timer_at = at
            self._timeout_handle = self.loop.call_at(at, self._timeout_due)

    def _timeout_due(self) -> None:
        if self.loop.time() < self._timeout_at:
            self._timer_at = self._timeout_at
            self._timeout_handle = self.loop.call_at(self._timeout_at, self._timeout_due)
            return
        self._timeout_handle = None
        if self.transport is not None:
            log.info("idle timeout", extra={"dlp": {"event": "idle timeout"}})
            self._hang_up(f"421 4.4.2 {self.hostname} Error: timeout exceeded")

    def _hang_up(self, reply: str) -> None:
        """End the session from outside its loop (idle timer, drain): ``reply``, then
        the connection closed and the loop stopped wherever it waits.

        Not left to ``connection_lost``: a client that stopped reading its replies
        never lets a close finish (its window stays shut), and a TLS close waits
        up to 30 s for the client's close_notify; the session would stay counted
        against the caps, and a drain would wait for it, all that time."""
        transport = self.transport
        if transport is None:
            return
        if self._handshaking:
            transport.abort()  # no clear text into a TLS handshake
        else:
            self._may_hold = False  # the reply and anything held go out together
            self.push(reply)
            if transport.get_write_buffer_size() > 0:
                transport.abort()  # replies are waiting unread: the client is not listening
            else:
                transport.close()
        self._closing = True
        self._inbox.feed_eof()
        self._cancel()

    def push(self, status: str | bytes) -> None:
        """Send one reply (its line end added), or hold it (PIPELINING).

        RFC 2920 3.2: a server may hold replies while more commands are waiting,
        and must send them before it waits for input.  Held only for the commands
        of a pipelined group before DATA (XFORWARD, MAIL, RCPT; ``_group``), and
        only while a whole command line is buffered: the loop then reads it
        without waiting, and the next reply that is not held takes these with
        it, in one write."""
        data = status.encode("utf-8") if isinstance(status, str) else status
        if self._may_hold and self._inbox.has_line():
            self._held.append(data)
            return
        if self._held:
            data = b"\r\n".join([*self._held, data])
            self._held.clear()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data + b"\r\n")

    # -- the session -------------------------------------------------------

    async def _run(self) -> None:
        self._started = True
        try:
            await self._command_loop()
        except (ConnectionResetError, asyncio.CancelledError):
            # The client went away (mid-DATA, mid-scan, between commands), or was
            # cut off for trickling DATA: nothing is owed to anyone.
            pass
        finally:
            self._ended = True
            await self._end_session()

    async def _command_loop(self) -> None:
        """Read a line, answer it; the same replies in the same cases as aiosmtpd."""
        bogus_budget = _BOGUS_LIMIT
        inbox = self._inbox
        verbs = _VERBS
        while not self._closing and self.transport is not None:
            if self._write_paused:
                # The client sends commands but does not read replies: stop reading.
                await self._until_drained()
                continue
            raw = await inbox.line(LINE_LIMIT)
            if raw is None:
                self.push("500 Command line too long")
                continue
            line = raw.rstrip(b"\r\n")
            if not line:
                self.push("500 Error: bad syntax")
                continue
            verb_bytes, _, arg_bytes = line.partition(b" ")
            try:
                verb = verb_bytes.upper().decode("ascii")
            except UnicodeDecodeError:
                self.push("500 Error: bad syntax")
                continue
            limit = (
                _LIMITS_AFTER_EHLO.get(verb, _LIMIT_AFTER_EHLO)
                if self._extended
                else _LIMIT_BEFORE_EHLO
            )
            if len(line) > limit:
                self.push("500 Command line too long")
                continue
            if self.require_starttls and not self._tls and verb not in _BEFORE_STARTTLS:
                self.push("530 Must issue a STARTTLS command first")
                continue
            handler = verbs.get(verb)
            if handler is None:
                log.warning(
                    "unrecognised command",
                    extra={"dlp": {"event": "bad command", "verb": verb[:32]}},
                )
                bogus_budget -= 1
                if bogus_budget < 1:
                    self.push("502 5.5.1 Too many unrecognized commands, goodbye.")
                    self._close()
                    continue
                self.push(f'500 Error: command "{verb}" not recognized')
                continue
            # The argument is UTF-8 (SMTPUTF8 is always offered); any other byte
            # survives as a surrogate escape.
            arg = str(arg_bytes.strip(), "utf-8", "surrogateescape") if arg_bytes else None
            self._reset_timeout()
            try:
                await handler(self, arg)
            except (ConnectionResetError, asyncio.CancelledError):
                raise
            except Exception as error:
                log.error(
                    "internal error",
                    exc_info=(type(error), error, error.__traceback__),
                    extra={"dlp": {"event": "exception"}},
                )
                self._may_hold = False
                self.push(TEMPFAIL_INTERNAL)

    def _close(self) -> None:
        """Close the connection and end the command loop after the current command
        (not at ``connection_lost``, which under TLS comes only when the client
        answers the close, or after 30 s)."""
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    async def _end_session(self) -> None:
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
            self._timeout_handle = None
        state, self.state = self.state, None
        self.gateway.sessions.discard(self)
        if state is not None:
            self.gateway.session_closed(self.peer)
            await state.next_hop.close()
        self._close()
        self.gateway.check_drained()

    def close_if_idle(self) -> None:
        """While draining: an idle session is told 421 and closed now."""
        if not self._busy:
            self._hang_up(_SHUTTING_DOWN)

    def _close_after_transaction_if_draining(self) -> None:
        if self.gateway.draining and self.transport is not None:
            self._may_hold = False  # the 421 and anything held go out before the close
            self.push(_SHUTTING_DOWN)
            self._close()

    def _need_helo(self) -> bool:
        if not self._helo:
            self.push("503 Error: send HELO first")
            return True
        return False

    def _reset_transaction(self) -> None:
        self._mail_from = None
        self._recipients = 0

    async def _abort_transaction(self) -> None:
        self._busy = False
        self._reset_transaction()
        if self.state is not None and self.state.txn is not None:
            self.state.txn = None
            await self.state.next_hop.reset()

    async def _group(
        self, handler: Callable[[str | None], Awaitable[None]], arg: str | None
    ) -> None:
        self._may_hold = True
        try:
            await handler(arg)
        finally:
            self._may_hold = False

    # -- commands ----------------------------------------------------------

    async def _greeted(self, verb: str, hostname: str | None) -> bool:
        """HELO or EHLO: a new start (RFC 5321 4.1.4), or ``False`` with no name."""
        if not hostname:
            self.push(f"501 Syntax: {verb} hostname")
            return False
        await self._abort_transaction()
        assert self.state is not None
        self.state.helo = hostname
        self._helo = hostname
        self._extended = verb == "EHLO"
        return True

    async def smtp_HELO(self, hostname: str | None) -> None:
        if await self._greeted("HELO", hostname):
            self.push(f"250 {self.hostname}")

    async def smtp_EHLO(self, hostname: str | None) -> None:
        if not await self._greeted("EHLO", hostname):
            return
        lines = [f"250-{self.hostname}"]
        if self.data_size_limit:
            lines.append(f"250-SIZE {self.data_size_limit}")
        lines += ["250-8BITMIME", "250-SMTPUTF8"]
        if self.tls_context is not None and not self._tls:
            lines.append("250-STARTTLS")
        lines += [
            "250-PIPELINING",
            "250-ENHANCEDSTATUSCODES",
            "250-DSN",
            "250-XFORWARD " + " ".join(_XFORWARD_ATTRS),
            "250 HELP",
        ]
        # One write for all: replies held for the commands before this EHLO in a
        # pipelined group go out first, in order (RFC 2920 3.2).
        self.push("\r\n".join(lines))

    def _too_much_junk(self) -> bool:
        """A client that only sends NOOP, RSET, VRFY or HELP keeps a session for ever
        (each command restarts the idle timeout): after _MAX_JUNK of them without a
        MAIL between them, it goes, as Postfix's smtpd_junk_command_limit sends it (a review of
        3 Dec 2026)."""
        self._junk += 1
        if self._junk <= _MAX_JUNK:
            return False
        self.push("421 4.7.0 Too many commands without a message, closing / 切断します")
        self._close()
        return True

    async def smtp_NOOP(self, arg: str | None) -> None:
        if not self._too_much_junk():
            self.push("250 2.0.0 Ok")

    async def smtp_QUIT(self, arg: str | None) -> None:
        if arg:
            self.push("501 5.5.4 Syntax: QUIT")
            return
        await self._abort_transaction()
        self.push("221 2.0.0 Bye")
        self._close()

    async def smtp_RSET(self, arg: str | None) -> None:
        if self._too_much_junk():
            return
        if arg:
            self.push("501 5.5.4 Syntax: RSET")
            return
        await self._abort_transaction()
        if self.state is not None:
            self.state.xforward = {}
        self.push("250 2.0.0 Ok")
        self._close_after_transaction_if_draining()

    async def smtp_HELP(self, arg: str | None) -> None:
        if self._too_much_junk():
            return
        verbs = sorted(v for v in _HELP if v != "STARTTLS" or self.tls_context is not None)
        if arg:
            verb = arg.upper()
            if verb in verbs:
                self.push(f"250 Syntax: {_HELP[verb]}")
                return
            self.push("501 Supported commands: " + " ".join(verbs))
            return
        self.push("250 Supported commands: " + " ".join(verbs))

    async def smtp_VRFY(self, arg: str | None) -> None:
        if self._too_much_junk():
            return
        if not arg:
            self.push("501 Syntax: VRFY <address>")
        elif self._getaddr(arg)[0] is None:
            self.push("502 Could not VRFY " + arg)
        else:
            self.push("252 Cannot VRFY user, but will accept message and attempt delivery")

    async def smtp_EXPN(self, arg: str | None) -> None:
        self.push("502 EXPN not implemented")

    async def smtp_AUTH(self, arg: str | None) -> None:
        # Clients are authorised by network (``allowed_clients``), never by AUTH.
        self.push("503 5.5.1 Error: authentication not enabled")

    async def smtp_STARTTLS(self, arg: str | None) -> None:
        if arg:
            self.push("501 Syntax: STARTTLS")
            return
        if self.tls_context is None:
            self.push("454 TLS not available")
            return
        if self._tls:
            self.push("503 5.5.1 Error: TLS already active")
            return
        self.push("220 Ready to start TLS")
        # start_tls takes the transport over: no flow-control wait may be left
        # pending on the clear-text side.
        await self._until_drained()
        transport = self.transport
        if transport is None or self._closing:
            raise ConnectionResetError("closed before the TLS handshake")
        # RFC 3207 4.2 (CVE-2011-0411): commands sent in clear behind STARTTLS
        # must not run inside the TLS session.
        self._inbox.discard()
        self._handshaking = True
        try:
            tls = await self.loop.start_tls(transport, self, self.tls_context, server_side=True)
        except (OSError, ssl.SSLError, ConnectionError, TimeoutError) as error:
            log.info(
                "TLS handshake failed",
                extra={"dlp": {"event": "tls failed", "error": type(error).__name__}},
            )
            transport.close()
            raise ConnectionResetError("TLS handshake failed") from error
        finally:
            self._handshaking = False
        if tls is None or tls.is_closing() or self._closing:
            # Closed during the handshake (idle timer, drain): asyncio returns None,
            # uvloop a transport already closing, and neither calls connection_lost.
            transport.abort()
            raise ConnectionResetError("closed during the TLS handshake")
        self.transport = tls
        self._inbox.transport = tls
        self._write_paused = False
        # RFC 3207 4.2: the client starts again with EHLO; nothing it said before counts.
        await self._abort_transaction()
        self._tls = True
        self._helo = None
        self._extended = False
        assert self.state is not None
        self.state.helo = ""
        self.state.xforward = {}

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The address and what follows it; ``(None, None)`` when it does not parse
        (aiosmtpd's parse, through the email package, for all but the usual form)."""
        m = _SIMPLE_ADDRESS.match(arg.lstrip())
        if m is not None:
            return m.group(1), m.group(2)
        if not arg:
            return "", ""
        address: Any
        try:
            if arg.lstrip().startswith("<"):
                address, rest = get_angle_addr(arg)
            else:
                address, rest = get_addr_spec(arg)
        except HeaderParseError:
            return None, None
        return address.addr_spec, rest

    async def smtp_MAIL(self, arg: str | None) -> None:
        await self._group(self._mail, arg)

    async def _mail(self, arg: str | None) -> None:
        if self._need_helo():
            return
        assert self.state is not None
        if self.gateway.draining:
            self._close_after_transaction_if_draining()
            return
        rest = _after_keyword("FROM:", arg or "")
        if rest is None:
            self.push(_SYNTAX_MAIL)
            return
        address, params_text = self._getaddr(rest)
        if address is None:
            self.push("553 5.1.3 Error: malformed address")
            return
        if not address:
            self.push(_SYNTAX_MAIL)
            return
        if self._mail_from:
            self.push("503 5.5.1 Error: nested MAIL command")
            return
        options = (params_text or "").split()
        if options and not self._extended:
            self.push(_SYNTAX_MAIL)
            return
        parsed = _parse_mail_params(options, self.data_size_limit)
        if isinstance(parsed, str):
            self.push(parsed)
            return
        sender = "" if address == "<>" else address
        problem = _routing(sender, rest) if sender else None
        if problem is not None:
            self.gateway.log_routing_refusal(self.state, sender, problem)
            self.push(sender_refusal(problem))
            return
        self._busy = True
        status = await self.gateway.mail(self.state, sender, parsed, options)
        if status.startswith("2"):
            self._mail_from = address
            self._junk = 0  # a transaction begun: an RSET after it is no idling
        else:
            self._busy = False
        self.push(status)

    async def smtp_RCPT(self, arg: str | None) -> None:
        await self._group(self._rcpt, arg)

    async def _rcpt(self, arg: str | None) -> None:
        if self._need_helo():
            return
        assert self.state is not None
        if not self._mail_from or self.state.txn is None:
            self.push("503 5.5.1 Error: need MAIL command")
            return
        rest = _after_keyword("TO:", arg or "")
        if rest is None:
            self.push(_SYNTAX_RCPT)
            return
        address, params_text = self._getaddr(rest)
        if address is None:
            self.push("553 5.1.3 Error: malformed address")
            return
        if not address or address == "<>":
            self.push(_SYNTAX_RCPT)
            return
        if self._recipients >= self.gateway.settings.smtp.max_recipients:
            # The MTA sends the rest in a further message (RFC 5321 4.5.3.1.10).
            self.push("452 4.5.3 Error: too many recipients")
            return
        parsed = _parse_rcpt_params((params_text or "").split())
        if isinstance(parsed, str):
            self.push(parsed)
            return
        status, accepted = await self.gateway.rcpt(
            self.state, address, parsed, routing=_routing(address, rest)
        )
        if accepted:
            self._recipients += 1
        self.push(status)

    async def smtp_DATA(self, arg: str | None) -> None:
        if self._need_helo():
            return
        assert self.state is not None
        if not self._recipients or self.state.txn is None:
            self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            self.push("501 5.5.4 Syntax: DATA")
            return
        self.gateway.data_started(self.state)
        self.push("354 End data with <CR><LF>.<CR><LF>")
        limit = self.gateway.settings.smtp.max_data_seconds
        started = time.monotonic()
        try:
            # Not wait_for: that runs the reader as a task of its own (one more task
            # and loop step per message); a deadline on this one does the same.
            async with asyncio.timeout(limit):
                result = await read_data(self._inbox, self.data_size_limit, self._reset_timeout)
        except TimeoutError:
            await self._data_too_slow(limit, time.monotonic() - started)
            raise ConnectionResetError("DATA time limit") from None
        if result.too_large:
            await self._abort_transaction()
            self.push("552 5.3.4 Message too big for this gateway")
            return
        try:
            status = await self.gateway.data(self.state, result.content)
        except Exception:
            log.exception("internal error after DATA")
            await self.state.next_hop.close()
            status = TEMPFAIL_INTERNAL
        self._reset_transaction()
        self.state.xforward = {}
        self._busy = False
        self.push(status)
        self._close_after_transaction_if_draining()

    async def _data_too_slow(self, limit: float, elapsed: float) -> None:
        """Slow loris: the client trickled DATA past ``max_data_seconds``.

        421 and close (RFC 5321 3.8): the MTA keeps the message and retries it,
        and the next hop's open transaction is abandoned, so nothing is sent.
        The rest of what the client sends is never read as commands: the caller
        raises ``ConnectionResetError``, which ends the session."""
        assert self.state is not None
        txn = self.state.txn
        self.gateway.cap_reached(
            "data_time",
            limit,
            str(self.peer[0] if self.peer else ""),
            audit_key=txn.audit_key if txn is not None else "",
            seconds=round(elapsed, 1),
        )
        self.state.txn = None
        await self.state.next_hop.close()
        self._reset_transaction()
        self._busy = False
        with contextlib.suppress(Exception):
            self.push(
                f"421 4.4.2 DATA took longer than {limit:g} s, closing; try again later"
                " / 受信に時間がかかりすぎたため切断します。後で再送してください"
            )
        self._close()

    async def smtp_XFORWARD(self, arg: str | None) -> None:
        await self._group(self._xforward, arg)

    async def _xforward(self, arg: str | None) -> None:
        """Postfix's client attributes (XFORWARD_README); IDENT becomes the audit key."""
        assert self.state is not None
        if self._mail_from:
            self.push("503 5.5.1 Error: XFORWARD not allowed in a mail transaction")
            return
        attrs: dict[str, str] = {}
        for item in (arg or "").split():
            name, eq, value = item.partition("=")
            if not eq or name.upper() not in _XFORWARD_ATTRS:
                self.push(f"501 5.5.4 Bad XFORWARD attribute: {name[:32]}")
                return
            attrs[name.upper()] = value
        if not attrs:
            self.push("501 5.5.4 Syntax: XFORWARD attribute=value...")
            return
        self.state.xforward.update(attrs)
        self.push("250 2.0.0 Ok")


_VERBS: dict[str, Callable[[GatewaySMTP, str | None], Awaitable[None]]] = {
    name[5:]: method for name, method in vars(GatewaySMTP).items() if name.startswith("smtp_")
}
"""Verb -> its handler, found once."""


def _after_keyword(keyword: str, arg: str) -> str | None:
    """``arg`` after ``FROM:`` or ``TO:`` (any case), or ``None`` without it."""
    if arg[: len(keyword)].upper() == keyword:
        return arg[len(keyword) :].strip()
    return None


def _routing(address: str, arg: str) -> RoutingProblem | None:
    """Routing syntax in the parsed address, or a source route in the argument
    (which the parse dropped).  A route needs a ":", so most arguments skip the
    second, slower parse."""
    problem = routing_problem(address)
    if problem is None and ":" in arg and has_source_route(arg):
        problem = SOURCE_ROUTE
    return problem


def _parse_mail_params(options: list[str], size_limit: int | None) -> MailParams | str:
    body, smtputf8, size, ret, envid = "", False, None, "", ""
    for option in options:
        key, eq, value = option.partition("=")
        key = key.upper()
        if not key.isalnum() or (eq and not value):
            return _SYNTAX_MAIL
        if key == "BODY":
            body = value.upper()
            if body not in ("7BIT", "8BITMIME"):
                return "501 5.5.4 BODY can only be one of 7BIT, 8BITMIME"
        elif key == "SMTPUTF8":
            if eq:
                return "501 5.5.4 SMTPUTF8 takes no arguments"
            smtputf8 = True
        elif key == "SIZE":
            if not value.isdigit():
                return _SYNTAX_MAIL
            size = int(value)
            if size_limit and size > size_limit:
                return "552 5.3.4 Message size exceeds fixed maximum message size"
        elif key == "RET":
            ret = value.upper()
            if ret not in ("FULL", "HDRS"):
                return "501 5.5.4 RET must be FULL or HDRS"
        elif key == "ENVID":
            if not value.isascii() or len(value) > 100:
                return "501 5.5.4 Bad ENVID"
            envid = value
        else:
            return "555 5.5.4 MAIL FROM parameter not recognized or not implemented"
    return MailParams(body=body, smtputf8=smtputf8, size=size, ret=ret, envid=envid)


def _parse_rcpt_params(options: list[str]) -> RcptParams | str:
    notify, orcpt = "", ""
    for option in options:
        key, eq, value = option.partition("=")
        key = key.upper()
        if not key.isalnum() or not eq or not value:
            return _SYNTAX_RCPT
        if key == "NOTIFY":
            words = value.upper().split(",")
            allowed = {"SUCCESS", "FAILURE", "DELAY"}
            if not (words == ["NEVER"] or all(w in allowed for w in words)):
                return "501 5.5.4 Bad NOTIFY"
            notify = value.upper()
        elif key == "ORCPT":
            if ";" not in value:
                return "501 5.5.4 Bad ORCPT"
            orcpt = value
        else:
            return "555 5.5.4 RCPT TO parameter not recognized or not implemented"
    return RcptParams(notify=notify, orcpt=orcpt)


async def start_server(
    gateway: Gateway, host: str, port: int, *, reuse_port: bool = False
) -> asyncio.base_events.Server:
    """Listen for sessions; each connection gets its own ``GatewaySMTP``."""
    tls = tls_context(gateway)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: GatewaySMTP(gateway, tls_context=tls),
        host=host,
        port=port,
        reuse_port=reuse_port,
        backlog=1024,
    )


def tls_context(gateway: Gateway) -> ssl.SSLContext | None:
    s = gateway.settings.smtp
    if not s.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(
        str(gateway.settings.resolve(s.tls_cert)), str(gateway.settings.resolve(s.tls_key))
    )
    return context
