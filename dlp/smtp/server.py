"""The SMTP side: aiosmtpd's protocol, adjusted where its defaults lose or bounce mail.

Not aiosmtpd's stock ``Proxy`` handler (it answers 250 when the downstream
refused, so Postfix would drop mail the next hop never took).  What this subclass changes:

* only ``allowed_clients`` may talk to us: anyone else gets one ``554`` and is
  disconnected (the gateway must not be an open relay); while draining, new sessions get ``421``;
* EHLO announces PIPELINING, ENHANCEDSTATUSCODES, DSN and XFORWARD besides SIZE, 8BITMIME,
  SMTPUTF8 (and STARTTLS when configured); never AUTH;
* MAIL and RCPT accept the DSN parameters (RET, ENVID, NOTIFY, ORCPT) with their
  case intact instead of answering 555, and hand them to the next hop if it
  supports DSN;
* XFORWARD from the client (Postfix) is kept; its IDENT is the audit key;
* DATA is read in bulk (``datareader``), then decided by ``gateway.Gateway``;
* an exception anywhere is ``451 4.3.0`` (aiosmtpd's default is a permanent 500,
  which makes Postfix bounce the mail instead of retrying it).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, AnyStr, ClassVar

from aiosmtpd.smtp import (
    ALLOWED_BEFORE_STARTTLS,
    BOGUS_LIMIT,
    SMTP,
    Envelope,
    Session,
    TLSSetupException,
    login_always_fail,
    sanitized_log,
)

from dlp.smtp.addresses import (
    SOURCE_ROUTE,
    RoutingProblem,
    has_source_route,
    routing_problem,
    sender_refusal,
)
from dlp.smtp.datareader import read_data
from dlp.smtp.gateway import TEMPFAIL_INTERNAL, Gateway, SessionState
from dlp.smtp.relay import MailParams, RcptParams

log = logging.getLogger("dlp.smtp.server")
mail_log = logging.getLogger("mail.log")
"""aiosmtpd's logger: what its command loop wrote, this one writes too."""

# The address form nearly every MTA sends: <dot-atom-ish@domain> with no quoting,
# comments or source route.  aiosmtpd parses every address with the email
# package's RFC 5322 parser (about 0.2 ms each); anything else still goes there.
_SIMPLE_ADDRESS = re.compile(r"<([^\s<>()\[\]\\\",;:@]+@[^\s<>()\\\",;:@]+)>[ \t]*(.*)\Z", re.S)

_XFORWARD_ATTRS = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")
_SYNTAX_MAIL = "501 5.5.4 Syntax: MAIL FROM:<address> [SP <mail-parameters>]"
_SYNTAX_RCPT = "501 5.5.4 Syntax: RCPT TO:<address> [SP <rcpt-parameters>]"


class GatewaySMTP(SMTP):
    # Long enough for a RCPT with ORCPT (RFC 3461 allows 500 more octets); the
    # DATA phase does not use the line reader at all.
    line_length_limit = 4096

    _HOOKS: _Hooks | None = None
    _SMTP_VERBS: ClassVar[dict[str, str]] = {}
    """Verb -> the method's name, found once per class."""

    def __init__(self, gateway: Gateway, *, tls_context: ssl.SSLContext | None = None) -> None:
        """What aiosmtpd 1.4.6's ``SMTP.__init__`` sets up, for our fixed options.

        The stock constructor rebuilds, for every connection, tables found with
        ``inspect.getmembers`` and ``dir`` over the protocol and the handler:
        about 0.4 ms of CPU per connection, and Postfix opens one per message.
        Here the names are found once per class.  ``test_gateway`` checks that
        the instance ends up with exactly the attributes the stock constructor
        gives, so an aiosmtpd upgrade that adds one fails a test, not the mail.
        """
        settings = gateway.settings.smtp
        loop = asyncio.get_running_loop()
        self.__ident__ = "ESMTP dlp"
        self.loop = loop
        asyncio.StreamReaderProtocol.__init__(
            self,
            asyncio.StreamReader(loop=loop, limit=self.line_length_limit),
            client_connected_cb=self._cb_client_connected,
            loop=loop,
        )
        cls = type(self)
        if cls._HOOKS is None:
            cls._HOOKS = _Hooks()
            cls._SMTP_VERBS = {m[5:]: m for m in dir(cls) if m.startswith("smtp_")}
        self.event_handler = cls._HOOKS
        self.data_size_limit = settings.max_message_size
        self.enable_SMTPUTF8 = True
        self._decode_data = False
        self.hostname = gateway.hostname
        self.tls_context = tls_context
        self.require_starttls = bool(tls_context is not None and settings.require_tls)
        self._timeout_duration = settings.idle_timeout
        self._timeout_handle = None
        self._timeout_at = 0.0
        self._timer_at = 0.0
        self._tls_handshake_okay = True
        self._tls_protocol = None
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        self._auth_require_tls = True
        self._proxy_timeout = None
        self._authenticator = None
        self._auth_callback = login_always_fail
        self._auth_required = False
        self._auth_methods = {}  # no AUTH: clients are authorised by network
        self._handle_hooks = {
            "EHLO": self.event_handler.handle_EHLO,
            "exception": self.event_handler.handle_exception,
        }
        self._ehlo_hook_ver = "new"
        # Bound when asked for (aiosmtpd's HELP; the command loop binds the one verb it
        # runs): binding all fourteen showed as 1 % of a serving process's time.
        # aiosmtpd declares a dict; it only calls get() and items(), which a Mapping has.
        self._smtp_methods = _BoundVerbs(self, cls._SMTP_VERBS)  # type: ignore[assignment]
        self._enforce_call_limit = False
        self.gateway = gateway
        limits: collections.defaultdict[str, int] = collections.defaultdict(lambda: 1024)
        limits["RCPT"] = limits["MAIL"] = 2048
        self.command_size_limits = limits
        self.state: SessionState | None = None
        self._busy = False
        self._batch: list[bytes] | None = None
        # PIPELINING (RFC 2920): replies held while the client's next command is
        # already here, sent with the next reply that is not (see ``push``).
        self._held: list[bytes] = []
        self._may_hold = False

    # -- connection ------------------------------------------------------

    def _reset_timeout(self, duration: float | None = None) -> None:
        """aiosmtpd's idle timer, moved instead of replaced.

        aiosmtpd cancels its timer and schedules a new one on every command (and
        ``read_data`` on every chunk of DATA); here the deadline is a number, and the
        one timer, when it fires early, waits again for what is left.  The session
        still closes ``idle_timeout`` after the last command."""
        at = self.loop.time() + (duration or self._timeout_duration)
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
        self._timeout_cb()

    async def _handle_client(self) -> None:
        assert self.session is not None and self.transport is not None
        if not self.gateway.client_allowed(self.session.peer):
            log.warning(
                "client refused",
                extra={
                    "dlp": {
                        "event": "client refused",
                        "client": str(self.session.peer[0] if self.session.peer else ""),
                    }
                },
            )
            await self.push("554 5.7.1 Access denied / 接続は許可されていません")
            self.transport.close()
            return
        if self.gateway.draining:
            await self.push("421 4.3.2 Service shutting down, try again later")
            self.transport.close()
            return
        refusal = self.gateway.admit(self.session.peer)
        if refusal is not None:
            await self.push(refusal)
            self.transport.close()
            return
        self.state = self.gateway.new_session(self.session.peer)
        self.gateway.sessions.add(self)
        try:
            await self._command_loop()
        except ConnectionResetError:
            # The client went away mid-DATA, or was cut off for trickling it: aiosmtpd
            # has closed the connection; an exception left on the task would only be
            # logged later as "never retrieved".
            pass
        finally:
            await self._end_session()

    async def _command_loop(self) -> None:
        """aiosmtpd 1.4.6's ``SMTP._handle_client`` for this class's fixed options.

        The same replies in the same cases, without what these options never use (the
        PROXY handshake, per-command call limits) and with aiosmtpd's per-line logging
        (``mail.log`` at DEBUG and INFO, every line sanitized first) done only when
        that logger would write it: it cost a few microseconds a command, and Postfix
        sends six commands a message.  ``test_gateway`` runs a session through every
        reply this loop gives."""
        assert self.session is not None
        mail_log.info("%r handling connection", self.session.peer)
        await self.push(f"220 {self.hostname} {self.__ident__}")
        bogus_budget = BOGUS_LIMIT
        reader = self._reader
        while self.transport is not None:
            try:
                try:
                    line: bytes = await reader.readuntil()
                except asyncio.LimitOverrunError as error:
                    # Line too long: read to its end before answering 500.
                    await reader.read(error.consumed)
                    while True:
                        try:
                            await reader.readuntil()
                            break
                        except asyncio.LimitOverrunError as e:
                            await reader.read(e.consumed)
                    await self.push("500 Command line too long")
                    continue
                if mail_log.isEnabledFor(logging.DEBUG):
                    sanitized_log(mail_log.debug, "_handle_client readline: %r", line)
                line = line.rstrip(b"\r\n")
                if mail_log.isEnabledFor(logging.INFO):
                    sanitized_log(mail_log.info, "%r >> %r", self.session.peer, line)
                if not line:
                    await self.push("500 Error: bad syntax")
                    continue
                command_bytes, _, arg_bytes = line.partition(b" ")
                try:
                    command = command_bytes.upper().decode("ascii")
                except UnicodeDecodeError:
                    await self.push("500 Error: bad syntax")
                    continue
                # enable_SMTPUTF8 is always on here: the argument is UTF-8, and any
                # other byte survives as a surrogate escape.
                arg = str(arg_bytes.strip(), "utf-8", "surrogateescape") if arg_bytes else None
                max_sz = (
                    self.command_size_limits[command]
                    if self.session.extended_smtp
                    else self.command_size_limit
                )
                if len(line) > max_sz:
                    await self.push("500 Command line too long")
                    continue
                if not self._tls_handshake_okay and command != "QUIT":
                    await self.push("554 Command refused due to lack of security")
                    continue
                if (
                    self.require_starttls
                    and not self._tls_protocol
                    and command not in ALLOWED_BEFORE_STARTTLS
                ):
                    await self.push("530 Must issue a STARTTLS command first")
                    continue
                name = self._SMTP_VERBS.get(command)
                method = getattr(self, name) if name is not None else None
                if method is None:
                    mail_log.warning("%r unrecognised: %s", self.session.peer, command)
                    bogus_budget -= 1
                    if bogus_budget < 1:
                        mail_log.warning("%r too many bogus commands", self.session.peer)
                        await self.push("502 5.5.1 Too many unrecognized commands, goodbye.")
                        self.transport.close()
                        continue
                    await self.push(f'500 Error: command "{command}" not recognized')
                    continue
                self._reset_timeout()
                await method(arg)
            except asyncio.CancelledError:
                mail_log.info("%r Connection lost during _handle_client()", self.session.peer)
                self._writer.close()
                raise
            except ConnectionResetError:
                mail_log.info("%r Connection lost during _handle_client()", self.session.peer)
                self._writer.close()
                raise
            except Exception as error:
                status = None
                try:
                    status = await self.handle_exception(error)
                except Exception as inner_error:
                    try:
                        mail_log.exception("%r Exception in handle_exception()", self.session.peer)
                        status = f"500 Error: ({inner_error.__class__.__name__}) {inner_error}"
                    except Exception:
                        status = "500 Error: Cannot describe error"
                finally:
                    if isinstance(error, TLSSetupException):
                        self.transport.close()
                        self.connection_lost(error)
                    else:
                        await self.push(status or "500 Error: Cannot describe error")

    async def _end_session(self) -> None:
        state, self.state = self.state, None
        self.gateway.sessions.discard(self)
        if state is not None:
            assert self.session is not None
            self.gateway.session_closed(self.session.peer)
            await state.next_hop.close()
        self.gateway.check_drained()

    def close_if_idle(self) -> None:
        """While draining: an idle session is told 421 and closed now."""
        if not self._busy and self.transport is not None:
            self._writer.write(b"421 4.3.2 Service shutting down, try again later\r\n")
            self.transport.close()

    async def _close_after_transaction_if_draining(self) -> None:
        if self.gateway.draining and self.transport is not None:
            self._may_hold = False  # the 421 and anything held go out before the close
            await self.push("421 4.3.2 Service shutting down, try again later")
            self.transport.close()

    # -- commands ----------------------------------------------------------

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        m = _SIMPLE_ADDRESS.match(arg.lstrip())
        if m is not None:
            return m.group(1), m.group(2)
        return super()._getaddr(arg)

    async def smtp_MAIL(self, arg: str | None) -> None:
        await self._group_command(self._mail, arg)

    async def _mail(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        assert self.session is not None and self.envelope is not None and self.state is not None
        if self.gateway.draining:
            await self._close_after_transaction_if_draining()
            return
        rest = self._strip_command_keyword("FROM:", arg or "")
        if rest is None:
            await self.push(_SYNTAX_MAIL)
            return
        address, params_text = self._getaddr(rest)
        if address is None:
            await self.push("553 5.1.3 Error: malformed address")
            return
        if not address:
            await self.push(_SYNTAX_MAIL)
            return
        if self.envelope.mail_from:
            await self.push("503 5.5.1 Error: nested MAIL command")
            return
        options = (params_text or "").split()
        if options and not self.session.extended_smtp:
            await self.push(_SYNTAX_MAIL)
            return
        parsed = _parse_mail_params(options, self.data_size_limit)
        if isinstance(parsed, str):
            await self.push(parsed)
            return
        sender = "" if address == "<>" else address
        problem = _routing(sender, rest) if sender else None
        if problem is not None:
            self.gateway.log_routing_refusal(self.state, sender, problem)
            await self.push(sender_refusal(problem))
            return
        self._busy = True
        status = await self.gateway.mail(self.state, sender, parsed, options)
        if status.startswith("2"):
            self.envelope.mail_from = address
            self.envelope.mail_options.extend(options)
            self.envelope.smtp_utf8 = parsed.smtputf8
        else:
            self._busy = False
        await self.push(status)

    async def smtp_RCPT(self, arg: str | None) -> None:
        await self._group_command(self._rcpt, arg)

    async def _rcpt(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        assert self.session is not None and self.envelope is not None and self.state is not None
        if not self.envelope.mail_from or self.state.txn is None:
            await self.push("503 5.5.1 Error: need MAIL command")
            return
        rest = self._strip_command_keyword("TO:", arg or "")
        if rest is None:
            await self.push(_SYNTAX_RCPT)
            return
        address, params_text = self._getaddr(rest)
        if address is None:
            await self.push("553 5.1.3 Error: malformed address")
            return
        if not address or address == "<>":
            await self.push(_SYNTAX_RCPT)
            return
        options = (params_text or "").split()
        parsed = _parse_rcpt_params(options)
        if isinstance(parsed, str):
            await self.push(parsed)
            return
        status, accepted = await self.gateway.rcpt(
            self.state, address, parsed, routing=_routing(address, rest)
        )
        if accepted:
            self.envelope.rcpt_tos.append(address)
            self.envelope.rcpt_options.extend(options)
        await self.push(status)

    async def smtp_DATA(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        assert self.envelope is not None and self.state is not None
        if not self.envelope.rcpt_tos or self.state.txn is None:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        self.gateway.data_started(self.state)
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        limit = self.gateway.settings.smtp.max_data_seconds
        started = time.monotonic()
        try:
            # Not wait_for: that runs the reader as a task of its own (one more task
            # and loop step per message); a deadline on this one does the same.
            async with asyncio.timeout(limit):
                result = await read_data(self._reader, self.data_size_limit, self._reset_timeout)
        except TimeoutError:
            await self._data_too_slow(limit, time.monotonic() - started)
            raise ConnectionResetError("DATA time limit") from None
        if result.too_large:
            self._set_post_data_state()
            await self._abort_transaction()
            await self.push("552 5.3.4 Message too big for this gateway")
            return
        try:
            status = await self.gateway.data(self.state, result.content)
        except Exception:
            log.exception("internal error after DATA")
            await self.state.next_hop.close()
            status = TEMPFAIL_INTERNAL
        self._set_post_data_state()
        self.state.xforward = {}
        self._busy = False
        await self.push(status)
        await self._close_after_transaction_if_draining()

    async def _data_too_slow(self, limit: float, elapsed: float) -> None:
        """Slow loris: the client trickled DATA past ``max_data_seconds``.

        421 and close (RFC 5321 3.8): the MTA keeps the message and retries it,
        and the next hop's open transaction is abandoned, so nothing is sent.
        The rest of what the client sends is never read as commands: the caller
        raises ``ConnectionResetError``, which ends aiosmtpd's command loop."""
        assert self.state is not None and self.session is not None
        txn = self.state.txn
        self.gateway.cap_reached(
            "data_time",
            limit,
            str(self.session.peer[0] if self.session.peer else ""),
            audit_key=txn.audit_key if txn is not None else "",
            seconds=round(elapsed, 1),
        )
        self.state.txn = None
        await self.state.next_hop.close()
        self._set_rset_state()
        self._busy = False
        with contextlib.suppress(Exception):
            await self.push(
                f"421 4.4.2 DATA took longer than {limit:g} s, closing; try again later"
                " / 受信に時間がかかりすぎたため切断します。後で再送してください"
            )
        assert self.transport is not None
        self.transport.close()

    async def smtp_XFORWARD(self, arg: str | None) -> None:
        await self._group_command(self._xforward, arg)

    async def _xforward(self, arg: str | None) -> None:
        """Postfix's client attributes (XFORWARD_README); IDENT becomes the audit key."""
        assert self.envelope is not None and self.state is not None
        if self.envelope.mail_from:
            await self.push("503 5.5.1 Error: XFORWARD not allowed in a mail transaction")
            return
        attrs: dict[str, str] = {}
        for item in (arg or "").split():
            name, eq, value = item.partition("=")
            if not eq or name.upper() not in _XFORWARD_ATTRS:
                await self.push(f"501 5.5.4 Bad XFORWARD attribute: {name[:32]}")
                return
            attrs[name.upper()] = value
        if not attrs:
            await self.push("501 5.5.4 Syntax: XFORWARD attribute=value...")
            return
        self.state.xforward.update(attrs)
        await self.push("250 2.0.0 Ok")

    async def smtp_RSET(self, arg: str | None) -> None:
        if arg:
            await self.push("501 5.5.4 Syntax: RSET")
            return
        self._set_rset_state()
        await self._abort_transaction()
        if self.state is not None:
            self.state.xforward = {}
        await self.push("250 2.0.0 Ok")
        await self._close_after_transaction_if_draining()

    async def smtp_NOOP(self, arg: str | None) -> None:
        await self.push("250 2.0.0 Ok")

    async def smtp_QUIT(self, arg: str | None) -> None:
        if arg:
            await self.push("501 5.5.4 Syntax: QUIT")
            return
        await self._abort_transaction()
        await self.push("221 2.0.0 Bye")
        assert self.transport is not None
        self.transport.close()

    async def smtp_EHLO(self, hostname: str) -> None:
        await self._abort_transaction()
        if self.state is not None:
            self.state.helo = hostname or ""
        # aiosmtpd writes the ten-odd EHLO lines one by one: one send() each, and
        # on loopback every send() costs the kernel's whole delivery path.
        self._batch = []
        try:
            await super().smtp_EHLO(hostname)
        finally:
            lines, self._batch = self._batch, None
        if lines:
            # Through our push: replies held for the commands before this EHLO in a
            # pipelined group go out first, in order (RFC 2920 3.2).
            await self.push(b"\r\n".join(lines))

    async def push(self, status: AnyStr) -> None:
        data = status.encode("utf-8") if isinstance(status, str) else status
        if self._batch is not None:
            self._batch.append(data)
            return
        # RFC 2920 3.2: a server may hold replies while more commands are
        # waiting, and must send them before it waits for input.  Held only for
        # the commands of a pipelined group before DATA (XFORWARD, MAIL, RCPT;
        # ``_group_command``), and only while a whole command line is buffered:
        # the loop then reads it without waiting, and the next reply that is
        # not held takes these with it, in one send().
        if self._may_hold and b"\n" in _buffered(self._reader):
            self._held.append(data)
            return
        if self._held:
            data = b"\r\n".join([*self._held, data])
            self._held.clear()
        await super().push(data)

    async def _group_command(
        self, handler: Callable[[str | None], Awaitable[None]], arg: str | None
    ) -> None:
        self._may_hold = True
        try:
            await handler(arg)
        finally:
            self._may_hold = False

    async def smtp_HELO(self, hostname: str) -> None:
        await self._abort_transaction()
        if self.state is not None:
            self.state.helo = hostname or ""
        await super().smtp_HELO(hostname)

    async def _abort_transaction(self) -> None:
        self._busy = False
        if self.state is not None and self.state.txn is not None:
            self.state.txn = None
            await self.state.next_hop.reset()


class _BoundVerbs(Mapping[str, Any]):
    """aiosmtpd's ``_smtp_methods`` (verb -> bound method), each bound when looked up."""

    __slots__ = ("_names", "_server")

    def __init__(self, server: SMTP, names: dict[str, str]) -> None:
        self._server = server
        self._names = names

    def __getitem__(self, verb: str) -> Any:
        return getattr(self._server, self._names[verb])

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class _Hooks:
    """aiosmtpd handler hooks: only what the protocol subclass does not do itself."""

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        out = [r for r in responses if not r.startswith("250-AUTH") and r != "250 HELP"]
        out += [
            "250-PIPELINING",
            "250-ENHANCEDSTATUSCODES",
            "250-DSN",
            "250-XFORWARD " + " ".join(_XFORWARD_ATTRS),
            "250 HELP",
        ]
        return out

    async def handle_exception(self, error: Exception) -> str:
        # Never aiosmtpd's "500 Error: ...": a 5xx makes the upstream bounce the mail.
        log.error(
            "internal error",
            exc_info=(type(error), error, error.__traceback__),
            extra={"dlp": {"event": "exception"}},
        )
        return TEMPFAIL_INTERNAL


def _buffered(reader: asyncio.StreamReader) -> bytes | bytearray:
    """What the client sent that the command loop has not read yet.

    asyncio's StreamReader keeps it in ``_buffer`` (CPython 3.11 and later, under
    uvloop too); if that ever changes, nothing is held and PIPELINING still works,
    one reply per send()."""
    buffered: bytes | bytearray = getattr(reader, "_buffer", b"")
    return buffered


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
