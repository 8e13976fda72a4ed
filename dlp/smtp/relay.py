"""The next hop, spoken to in lockstep with the upstream client.

One ``NextHop`` belongs to one upstream session: the downstream transaction is
opened when the client sends MAIL, each RCPT is passed on as it arrives (so the
client gets the next hop's own answer for that recipient), and the message goes
out only after the scan.  The connection is kept for the session's next message.

Round trips are what a relay costs at 20 KB (bench/RESULTS-gateway.md), so where
the next hop announces them (Postfix does):

* XFORWARD and MAIL go out as one PIPELINING group (RFC 2920): one round trip;
* DATA is sent as soon as the client sends its DATA (``open_data``), so the
  next hop's 354 comes back while the client is still sending the message, and
  after the scan only the message itself is left: one round trip.  A message
  that is then held or refused is never ended with the dot: the connection is
  dropped, and an SMTP server discards a transaction whose DATA did not end;
* with CHUNKING (RFC 3030) the message goes as one ``BDAT n LAST`` in the same
  write as its text, with no dot-stuffing.

Every failure is turned into a reply the gateway can pass upstream as it is:
the next hop's own 4xx/5xx verbatim (a 421 becomes 451, because *we* are not
closing), and for a refused connection, a time-out or a dropped connection a
4xx, so the upstream MTA keeps the mail and retries (mail is never lost: a 5xx
would make it bounce).  Only
the next hop's explicit 5xx ever reaches the client as a 5xx.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
import time
from dataclasses import dataclass, field

from dlp.config import SmtpSettings
from dlp.smtp.client import Reply, ReplyError, SmtpClient
from dlp.smtp.datareader import dot_stuff_parts, with_crlf_line_ends

__all__ = ["ConnectionPool", "MailParams", "NextHop", "RcptParams", "Reply", "xtext"]

log = logging.getLogger("dlp.smtp.relay")


@dataclass(frozen=True, slots=True)
class MailParams:
    """MAIL FROM parameters worth passing on, each only if the next hop announces it."""

    body: str = ""  # 7BIT | 8BITMIME
    smtputf8: bool = False
    size: int | None = None
    ret: str = ""  # DSN: FULL | HDRS
    envid: str = ""  # DSN envelope id (xtext, passed as received)


@dataclass(frozen=True, slots=True)
class RcptParams:
    notify: str = ""  # DSN: NEVER | SUCCESS,FAILURE,DELAY
    orcpt: str = ""  # DSN: addr-type;xtext


class ConnectionPool:
    """Idle next-hop connections shared by the sessions of one process.

    Postfix's content_filter client (and smtp-source) opens a new connection for
    every message; without a pool each one costs us a new downstream connection,
    banner, EHLO and QUIT too.  A connection goes back to the pool only between
    transactions and in a known state; one idle longer than ``max_idle``
    (well under Postfix smtpd's 300 s timeout) is closed rather than reused,
    and a reused connection that turns out dead is replaced once, transparently.
    """

    def __init__(self, size: int = 64, max_idle: float = 30.0) -> None:
        self.size = size
        self.max_idle = max_idle
        self._idle: list[tuple[float, SmtpClient]] = []

    def take(self) -> SmtpClient | None:
        now = time.monotonic()
        while self._idle:
            since, smtp = self._idle.pop()
            if now - since <= self.max_idle and smtp.is_connected:
                return smtp
            smtp.close()
        return None

    def give(self, smtp: SmtpClient) -> bool:
        # Only a connection with every reply read: one that still owes a reply
        # would answer the next session's first command with it.
        if len(self._idle) >= self.size or not smtp.in_step:
            return False
        self._idle.append((time.monotonic(), smtp))
        return True

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, smtp in idle:
            try:
                await asyncio.wait_for(smtp.quit(), timeout=2)
            except Exception:
                smtp.close()


@dataclass
class NextHop:
    settings: SmtpSettings
    local_hostname: str
    pool: ConnectionPool | None = None
    _smtp: SmtpClient | None = field(default=None, init=False)
    _in_transaction: bool = field(default=False, init=False)
    _reused: bool = field(default=False, init=False)
    # DATA has been written and its reply not read yet (``open_data``).
    _data_sent: bool = field(default=False, init=False)
    # A pipelined MAIL group not yet written (``begin``; it goes out with the
    # first RCPT, in the same write): the group, and how many replies it will be
    # owed.  ``_pending`` is 0 once it is written; the group is kept until its
    # replies are read, to send again on a new connection (``_recipient``).
    _group: bytes = field(default=b"", init=False)
    _pending: int = field(default=0, init=False)
    # The next hop's refusal of the sender, the answer to every RCPT after it.
    _refused: Reply | None = field(default=None, init=False)
    # This transaction's MAIL group and accepted RCPT lines, to open it again on
    # a new connection if the first dies before the message went out (``data``).
    _envelope: list[bytes] = field(default_factory=list, init=False)
    # Why the last command got no answer of the next hop's own (the connection
    # failed), in words for ``dlp quarantine release``: the 451 the gateway
    # answers upstream instead says "try again later", not what went wrong.
    failure: str = field(default="", init=False)

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    def supports(self, extension: str) -> bool:
        return self._smtp is not None and self._smtp.supports(extension)

    async def begin(
        self, sender: str, params: MailParams, xforward: dict[str, str] | None = None
    ) -> Reply:
        """Open a downstream transaction (connecting first if needed): MAIL FROM.

        Where the next hop offers PIPELINING, MAIL (with XFORWARD) is written with
        the first RCPT, in one write, and its reply read with that RCPT's
        (``recipient``): the client is told 250 at once, and a refusal of the
        sender by the next hop is the answer to each RCPT instead, as with
        Postfix's ``smtpd_delay_reject``.  A transaction that never gets a
        recipient (every one refused here, or RSET) costs the next hop nothing."""
        try:
            if self._in_transaction:
                await self.reset()
            self._refused = None
            if not self.connected:
                await self._connect()
            group = self._mail_group(sender, params, xforward)
            self._envelope = group.split(b"\r\n")[:-1]
            smtp = self._smtp
            assert smtp is not None
            if smtp.supports("pipelining"):
                self._group, self._pending = group, group.count(b"\n")
                self._in_transaction = True
                return Reply(250, "2.1.0 Ok")
            try:
                return await self._mail_in_turn(group)
            except ConnectionError:
                if not self._reused:
                    raise
                # A pooled connection the next hop had closed: once more, afresh.
                self._drop()
                await self._connect(pooled=False)
                return await self._mail_in_turn(group)
        except Exception as exc:  # every failure becomes a 4xx, never a 5xx
            return await self._failed("MAIL", exc)

    def _mail_group(
        self, sender: str, params: MailParams, xforward: dict[str, str] | None
    ) -> bytes:
        """XFORWARD (if the next hop takes any of the attributes) and MAIL, CRLF-ended."""
        mail = b" ".join([b"MAIL FROM:<" + sender.encode("utf-8") + b">", *self._mail_args(params)])
        xforward_line = self._xforward_line(xforward) if xforward else None
        if xforward_line is None:
            return mail + b"\r\n"
        return xforward_line + b"\r\n" + mail + b"\r\n"

    async def _mail_in_turn(self, group: bytes) -> Reply:
        """The group one command at a time, each reply awaited (no PIPELINING)."""
        assert self._smtp is not None
        replies = [await self._smtp.command(line) for line in group.splitlines()]
        return await self._mail_replies(replies)

    async def _mail_replies(self, replies: list[Reply]) -> Reply:
        """The MAIL reply (the last); XFORWARD's refusal only logged, as it changes
        nothing but the next hop's log."""
        if len(replies) > 1 and not replies[0].ok:
            log.warning("next hop refused XFORWARD: %s", replies[0].line)
        self._in_transaction = True
        reply = self._pass(replies[-1])
        if not reply.ok:
            # Clears the XFORWARD attributes too, so the next sender cannot inherit them.
            await self.reset()
        return reply

    async def recipient(self, address: str, params: RcptParams) -> Reply:
        try:
            if self._refused is not None:
                return self._refused
            args = [b"RCPT TO:<" + address.encode("utf-8") + b">"]
            if self.supports("dsn"):
                if params.notify:
                    args.append(b"NOTIFY=" + params.notify.encode("ascii"))
                if params.orcpt:
                    args.append(b"ORCPT=" + params.orcpt.encode("utf-8"))
            line = b" ".join(args)
            reply = await self._recipient(line)
            if reply.ok:
                self._envelope.append(line)
            return reply
        except Exception as exc:
            return await self._failed("RCPT", exc)

    async def _recipient(self, line: bytes) -> Reply:
        if not self._pending:
            return await self._command(line)
        try:
            return await self._first_recipient(line)
        except ConnectionError:
            if not self._reused:
                raise
            # The pooled connection had gone before MAIL reached it (a next hop
            # that closed it while idle): the group and this RCPT again, afresh.
            group = self._group
            self._drop()
            await self._connect(pooled=False)
            self._group, self._pending = group, group.count(b"\n")
            self._in_transaction = True
            return await self._first_recipient(line)

    async def _first_recipient(self, line: bytes) -> Reply:
        """The first RCPT after a pipelined MAIL: written with the MAIL group in
        one write (one system call here, one read at the next hop), then the
        group's replies and its own read in order."""
        smtp = self._smtp
        assert smtp is not None
        owed, self._pending = self._pending, 0
        if owed == 0:
            return await self._command(line)
        smtp.send((self._group, line, b"\r\n"))
        replies = [await smtp.reply() for _ in range(owed)]
        rcpt = await smtp.reply()
        self._group = b""
        mail = await self._mail_replies(replies)
        if not mail.ok:
            # The RCPT that went with a refused MAIL was refused as out of
            # sequence; the sender's refusal is the one that says why.
            self._refused = mail
            return mail
        return self._pass(rcpt)

    def open_data(self) -> None:
        """The client has sent DATA: send ours now, and read its 354 in ``data``.

        Only for a transaction with recipients, and not where ``data`` will use
        BDAT.  Never raises: a connection that failed here fails in ``data``."""
        smtp = self._smtp
        if (
            not self._in_transaction
            or self._pending
            or self._data_sent
            or smtp is None
            or not smtp.is_connected
            or smtp.supports("chunking")
        ):
            return
        try:
            smtp.send(b"DATA\r\n")
            self._data_sent = True
        except ConnectionError:
            pass

    async def data(self, content: bytes) -> Reply:
        """Send the message; the reply is the next hop's answer to its end."""
        try:
            if self._smtp is not None and not self._smtp.is_connected and self._envelope:
                # The connection died while the client was still sending (a next
                # hop that timed out waiting for our DATA, or restarted).  It never
                # saw the message's end, so nothing was delivered: the same
                # transaction again on a new connection, once.
                await self._reopen()
            smtp = self._smtp
            if smtp is None:
                raise ConnectionError("next hop connection lost")
            if smtp.supports("chunking") and not self._data_sent:
                # RFC 3030: the size, then exactly that many octets.  No end
                # marker, so nothing in the message can be read as one; line
                # ends are made CRLF as for DATA, so both send the same message.
                content = with_crlf_line_ends(content)
                smtp.send((b"BDAT %d LAST\r\n" % len(content), content))
            else:
                if not self._data_sent:
                    smtp.send(b"DATA\r\n")
                    self._data_sent = True
                start = self._pass(await smtp.reply())
                if start.code < 400 and start.code != 354:
                    # DATA is answered 354 or refused; anything else is a reply
                    # out of step (a 250 here must never pass for the message's).
                    raise ConnectionError(f"next hop answered DATA with {start.line[:60]}")
                if start.code != 354:
                    # Refused: still in the transaction, where RSET works.
                    self._data_sent = False
                    return start
                # In the DATA phase now (``_data_sent`` stays set): if anything
                # below fails, the connection is dropped, and with it the
                # unfinished message.
                smtp.send(dot_stuff_parts(content))
            reply = self._pass(await smtp.reply(timeout=self._final_timeout(len(content))))
            self._data_sent = False
            self._in_transaction = False
            self._envelope = []
            return reply
        except Exception as exc:
            return await self._failed("DATA", exc)

    def _final_timeout(self, size: int) -> float:
        """The wait for the answer to the message's end: the next hop's own time
        (``next_hop_timeout``) plus the message's transfer, which the same wait
        covers (it was queued in one write), allowed at 64 KiB/s so a large
        message over a slow link is not cut off and sent again - at most one
        more ``next_hop_timeout``, the share of the session's idle budget
        (``config._check_timeouts``) that waiting for the 354 would take
        without early DATA."""
        nh = self.settings.next_hop_timeout
        return nh + min(size / 65536, nh)

    @property
    def ready(self) -> bool:
        """The open transaction can still be given its message: connected, or
        able to open it again (``data``)."""
        return self.connected or (self._smtp is not None and bool(self._envelope))

    async def _reopen(self) -> None:
        """This transaction's MAIL and accepted RCPTs on a new connection, one
        command at a time (a rare path); the next hop must accept each again,
        else ``ReplyError`` (a 4xx upstream: the MTA tries again later)."""
        envelope = self._envelope
        self._drop()
        await self._connect(pooled=False)
        assert self._smtp is not None
        self._in_transaction = True
        for line in envelope:
            reply = self._pass(await self._smtp.command(line))
            if not reply.ok and not line.startswith(b"XFORWARD"):
                raise ReplyError(
                    "reopen", Reply(451, f"4.4.2 next hop answered differently: {reply.line}")
                )
        self._envelope = envelope
        log.info("next hop connection lost before the message; transaction opened again")

    async def reset(self) -> None:
        """End the downstream transaction without delivering anything."""
        if not self._in_transaction:
            return
        self._in_transaction = False
        self._envelope = []
        if self._pending:
            # MAIL never went out (no recipient reached the next hop): nothing to end.
            self._pending, self._group = 0, b""
            return
        if self._data_sent:
            # DATA is out: RSET would be read as message text after a 354.  A
            # dropped connection is the one way to end it that never delivers.
            self._drop()
            return
        try:
            reply = await self._command(b"RSET")
            if not reply.ok:
                self._drop()
        except Exception:
            self._drop()

    async def close(self, *, polite: bool = True) -> None:
        """Hand the connection back to the pool, or QUIT (when ``polite``) and close.

        Never raises.  After a failure the connection is dropped without QUIT: a
        next hop still working on our DATA then sees the connection go before it
        could answer, which is its cue to discard the message rather than
        deliver a copy the upstream will send again.
        """
        smtp, self._smtp = self._smtp, None
        # A transaction whose MAIL is still unwritten has sent the next hop nothing.
        in_transaction = self._in_transaction and not self._pending
        self._in_transaction = self._data_sent = False
        self._pending, self._group, self._envelope = 0, b"", []
        if smtp is None:
            return
        if in_transaction:
            # Mid-transaction (perhaps mid-DATA, where a QUIT would be read as
            # message text): drop the connection, the next hop discards it all.
            polite = False
        if polite and self.pool is not None and self.pool.give(smtp):
            return
        try:
            if polite and smtp.is_connected:
                await asyncio.wait_for(smtp.quit(), timeout=5)
        except Exception:
            pass
        finally:
            smtp.close()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        self._in_transaction = self._data_sent = False
        self._pending, self._group = 0, b""
        if smtp is not None:
            smtp.close()

    # ------------------------------------------------------------------

    async def _connect(self, *, pooled: bool = True) -> None:
        if pooled and self.pool is not None:
            smtp_ = self.pool.take()
            if smtp_ is not None:
                self._smtp, self._reused = smtp_, True
                return
        self._reused = False
        host, port = self.settings.next_hop_addr
        mode = self.settings.next_hop_tls
        context: ssl.SSLContext | None = None
        if mode != "none":
            context = ssl.create_default_context()
            if not self.settings.next_hop_tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        smtp = SmtpClient(
            host, port, timeout=self.settings.next_hop_timeout, local_hostname=self.local_hostname
        )
        await smtp.connect(tls=mode, context=context)
        self._smtp = smtp

    def _mail_args(self, p: MailParams) -> list[bytes]:
        args: list[bytes] = []
        if p.body and self.supports("8bitmime"):
            args.append(b"BODY=" + p.body.encode("ascii"))
        if p.smtputf8:
            # Passed even when not announced: the next hop's refusal then comes
            # back to the client, as it would have without us in the path.
            args.append(b"SMTPUTF8")
        if p.size is not None and self.supports("size"):
            args.append(b"SIZE=%d" % p.size)
        if self.supports("dsn"):
            if p.ret:
                args.append(b"RET=" + p.ret.encode("ascii"))
            if p.envid:
                args.append(b"ENVID=" + p.envid.encode("ascii"))
        return args

    def _xforward_line(self, attrs: dict[str, str]) -> bytes | None:
        """The XFORWARD command for the attributes the next hop takes, if any."""
        assert self._smtp is not None
        if not self._smtp.supports("xforward"):
            return None
        offered = {a.upper() for a in self._smtp.extensions.get("xforward", "").split()}
        # Values are xtext (XFORWARD_README): printable ASCII without spaces.  Ours
        # are made so (``xtext``); a value that is not is left out rather than
        # let a control character (a bare CR) into the command line.
        args = [
            f"{k}={v}".encode("ascii")
            for k, v in attrs.items()
            if k in offered and v and v.isascii() and v.isprintable() and " " not in v
        ]
        return b" ".join([b"XFORWARD", *args]) if args else None

    async def _command(self, line: bytes) -> Reply:
        if self._smtp is None:
            raise ConnectionError("next hop connection lost")
        return self._pass(await self._smtp.command(line))

    def _pass(self, reply: Reply) -> Reply:
        if reply.code == 421:
            # The next hop is closing; the upstream session with us is not.
            self._drop()
            return Reply(451, f"4.4.2 next hop closing: {reply.message}")
        return reply

    async def _failed(self, stage: str, exc: Exception) -> Reply:
        await self.close(polite=False)
        self.failure = _failure(exc, self.settings.next_hop_timeout)
        if isinstance(exc, TimeoutError):
            log.warning("next hop timed out at %s", stage)
            return Reply(451, "4.4.2 next hop timed out, try again later")
        if isinstance(exc, ReplyError) and exc.reply.code >= 400:
            log.warning("next hop refused the connection at %s: %s", exc.stage, exc.reply.line)
            if exc.reply.code >= 500:
                # A next hop that will not talk to us (its banner, EHLO or STARTTLS
                # refused) is a fault of this hop, not of the message: the sending
                # MTA must try again later, never bounce (Postfix, too, treats a
                # 5xx greeting as a reason to defer).
                return Reply(451, f"4.4.1 next hop refused the connection: {exc.reply.line}")
            return self._pass(exc.reply)
        if isinstance(exc, ConnectionError | OSError):
            log.warning("next hop unavailable at %s: %s", stage, exc)
            return Reply(451, "4.4.1 next hop unavailable, try again later")
        log.warning("next hop failed at %s: %s", stage, type(exc).__name__)
        return Reply(451, "4.4.2 next hop connection failed, try again later")


def _failure(exc: Exception, timeout: float) -> str:
    """What happened to the connection, after "the next hop HOST:PORT"."""
    if isinstance(exc, TimeoutError):
        return f"did not answer within {timeout:g} s"
    if isinstance(exc, ReplyError):
        return f"refused the connection ({exc.stage}): {exc.reply.line}"
    if isinstance(exc, OSError) and exc.errno:
        return f"could not be reached: {os.strerror(exc.errno)}"
    if isinstance(exc, ConnectionError | OSError):
        return f"closed the connection ({exc or type(exc).__name__})"
    return f"failed ({type(exc).__name__})"


def xtext(value: str) -> str:
    """``value`` as RFC 3461 xtext, the encoding of XFORWARD values: every octet
    outside "!" to "~", and "+" and "=", as "+" and two hex digits."""
    if _XTEXT_PLAIN.fullmatch(value):
        return value  # a host name: nothing to escape
    out = []
    for b in value.encode("utf-8", "surrogateescape"):
        out.append(chr(b) if 0x21 <= b <= 0x7E and b not in (0x2B, 0x3D) else f"+{b:02X}")
    return "".join(out)


_XTEXT_PLAIN = re.compile(r"[!-*,-<>-~]*")  # "!" to "~" without "+" (2B) and "=" (3D)
