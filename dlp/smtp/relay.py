"""The next hop, spoken to in lockstep with the upstream client.

One ``NextHop`` belongs to one upstream session: the downstream transaction is
opened when the client sends MAIL, each RCPT is passed on as it arrives (so the
client gets the next hop's own answer for that recipient), and DATA goes out
only after the scan.  The connection is kept for the session's next message.

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
import ssl
import time
from dataclasses import dataclass, field

import aiosmtplib

from dlp.config import SmtpSettings
from dlp.smtp.datareader import dot_stuff_parts

log = logging.getLogger("dlp.smtp.relay")


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
        self._idle: list[tuple[float, aiosmtplib.SMTP]] = []

    def take(self) -> aiosmtplib.SMTP | None:
        now = time.monotonic()
        while self._idle:
            since, smtp = self._idle.pop()
            if now - since <= self.max_idle and smtp.is_connected:
                return smtp
            smtp.close()
        return None

    def give(self, smtp: aiosmtplib.SMTP) -> bool:
        if len(self._idle) >= self.size or not smtp.is_connected:
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
    _smtp: aiosmtplib.SMTP | None = field(default=None, init=False)
    _in_transaction: bool = field(default=False, init=False)
    _reused: bool = field(default=False, init=False)

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    def supports(self, extension: str) -> bool:
        return self._smtp is not None and self._smtp.supports_extension(extension)

    async def begin(
        self, sender: str, params: MailParams, xforward: dict[str, str] | None = None
    ) -> Reply:
        """Open a downstream transaction (connecting first if needed): MAIL FROM."""
        try:
            if self._in_transaction:
                await self.reset()
            if not self.connected:
                await self._connect()
            try:
                return await self._mail(sender, params, xforward)
            except (ConnectionError, aiosmtplib.SMTPServerDisconnected):
                if not self._reused:
                    raise
                # A pooled connection the next hop had closed: once more, afresh.
                self._drop()
                await self._connect(pooled=False)
                return await self._mail(sender, params, xforward)
        except Exception as exc:  # every failure becomes a 4xx, never a 5xx
            return await self._failed("MAIL", exc)

    async def _mail(
        self, sender: str, params: MailParams, xforward: dict[str, str] | None
    ) -> Reply:
        if xforward and self.supports("xforward"):
            reply = await self._xforward(xforward)
            if not reply.ok:
                log.warning("next hop refused XFORWARD: %s", reply.line)
        args = [b"FROM:<" + sender.encode("utf-8") + b">", *self._mail_args(params)]
        reply = await self._command(b"MAIL", *args)
        self._in_transaction = True
        if not reply.ok:
            # Clears the XFORWARD attributes too, so the next sender cannot inherit them.
            await self.reset()
        return reply

    async def recipient(self, address: str, params: RcptParams) -> Reply:
        try:
            args = [b"TO:<" + address.encode("utf-8") + b">"]
            if self.supports("dsn"):
                if params.notify:
                    args.append(b"NOTIFY=" + params.notify.encode("ascii"))
                if params.orcpt:
                    args.append(b"ORCPT=" + params.orcpt.encode("utf-8"))
            return await self._command(b"RCPT", *args)
        except Exception as exc:
            return await self._failed("RCPT", exc)

    async def data(self, content: bytes) -> Reply:
        """Send the message; the reply is the next hop's answer to the final dot."""
        try:
            assert self._smtp is not None and self._smtp.protocol is not None
            start = await self._command(b"DATA")
            if start.code != 354:
                return start
            protocol = self._smtp.protocol
            # aiosmtplib's own data() re-normalises every line with regular
            # expressions (27 ms per 2 MB); dot_stuff does the same job with byte
            # counts and, only when a line starts with a dot, one replace.
            # Writing and then reading the reply is what aiosmtplib's
            # execute_data_command does, minus that pass.
            for part in dot_stuff_parts(content):
                protocol.write(part)
            response = await protocol.read_response(timeout=self.settings.next_hop_timeout)
            self._in_transaction = False
            return self._pass(Reply(response.code, response.message))
        except Exception as exc:
            return await self._failed("DATA", exc)

    async def reset(self) -> None:
        """End the downstream transaction without sending anything (RSET)."""
        if not self._in_transaction:
            return
        self._in_transaction = False
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
        in_transaction, self._in_transaction = self._in_transaction, False
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
        self._in_transaction = False
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
        smtp = aiosmtplib.SMTP(
            hostname=host,
            port=port,
            timeout=self.settings.next_hop_timeout,
            local_hostname=self.local_hostname,
            use_tls=mode == "tls",
            start_tls=mode == "starttls",
            validate_certs=self.settings.next_hop_tls_verify,
            tls_context=context,
        )
        self._smtp = smtp
        await smtp.connect()
        if smtp.last_ehlo_response is None:
            await smtp.ehlo()

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

    async def _xforward(self, attrs: dict[str, str]) -> Reply:
        assert self._smtp is not None
        offered = {a.upper() for a in self._smtp.esmtp_extensions.get("xforward", "").split()}
        args = [
            f"{k}={v}".encode("ascii", "replace")
            for k, v in attrs.items()
            if k in offered and v and " " not in v
        ]
        if not args:
            return Reply(250, "nothing to forward")
        return await self._command(b"XFORWARD", *args)

    async def _command(self, *args: bytes) -> Reply:
        assert self._smtp is not None
        response = await self._smtp.execute_command(*args)
        return self._pass(Reply(response.code, response.message))

    def _pass(self, reply: Reply) -> Reply:
        if reply.code == 421:
            # The next hop is closing; the upstream session with us is not.
            self._drop()
            return Reply(451, f"4.4.2 next hop closing: {reply.message}")
        return reply

    async def _failed(self, stage: str, exc: Exception) -> Reply:
        await self.close(polite=False)
        if isinstance(exc, aiosmtplib.SMTPTimeoutError | asyncio.TimeoutError):
            log.warning("next hop timed out at %s", stage)
            return Reply(451, "4.4.2 next hop timed out, try again later")
        if isinstance(exc, aiosmtplib.SMTPConnectError | ConnectionError | OSError):
            log.warning("next hop unavailable at %s: %s", stage, type(exc).__name__)
            return Reply(451, "4.4.1 next hop unavailable, try again later")
        if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 400:
            return self._pass(Reply(exc.code, exc.message))
        log.warning("next hop failed at %s: %s", stage, type(exc).__name__)
        return Reply(451, "4.4.2 next hop connection failed, try again later")
