"""One gateway process: what happens to a transaction, from MAIL to the reply to DATA.

``server.py`` speaks SMTP; this module decides.  For every message:

1. MAIL opens the next hop's transaction (``relay.NextHop``); its absence is
   the client's answer (a 4xx when it is unreachable), and its refusal too, at
   MAIL or, where the next hop pipelines, at each RCPT.
2. Each RCPT is classified (own / partner / external / lookalike).  A lookalike
   recipient is refused on the spot (or marked for hold); every other one is
   passed on and the next hop's own answer goes back for that recipient.
3. After DATA the message is scanned (inline when small and attachment-free,
   else in a worker process within the budget) and ``policy.decide`` gives the
   verdict.
4. The verdict is carried out in an order that never loses mail and never
   leaves an unrecorded send:

   * deliver / tag: send-log entry first (``next_hop_reply = "pending"``), then
     DATA to the next hop, then the next hop's answer to the client, then an
     ``outcome`` entry linked to the first with that answer.  If the first
     entry cannot be written the message is tempfailed and nothing was sent.
     The reverse order could deliver mail with no entry or, tempfailed after
     delivery, twice.  A refused attempt thus leaves an entry plus its
     ``outcome`` (and a retry writes another pair).
   * hold: a pending copy written and fsync'd to the hold queue, then the
     entry, then the copy committed (releasable); if the entry or the commit
     fails the copy is removed (or, if that fails too, left pending, which
     nobody can release) and the client gets 451.
   * reject: entry, then 550; tempfail: 451 (entry best effort).

   Any exception on the way is a 451 4.3.0 (never a 500, which would bounce the mail).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from email.header import Header
from typing import Any, assert_never

from dlp import ownaddress, policy
from dlp.config import Settings, parse_duration
from dlp.detect.mynumber import scrub
from dlp.holdqueue.store import HeldMessage, Quarantine, QuarantineError, open_quarantine
from dlp.model import Action, Recipient, RecipientClass, ScanReport, Verdict
from dlp.notify.routes import approvers_for
from dlp.sendlog import (
    SendLogError,
    needs_record,
    open_store,
    record_for_event,
    record_for_message,
    record_for_outcome,
)
from dlp.sendlog.redact import is_ip_address, scrub_tree
from dlp.smtp import metrics, senderloop
from dlp.smtp.addresses import ROUTING_RULE, RoutingProblem, recipient_refusal
from dlp.smtp.headers import ALWAYS, strip_fields
from dlp.smtp.relay import ConnectionPool, MailParams, NextHop, RcptParams, Reply, xtext
from dlp.smtp.workers import ScanFn, ScanPool, default_scan_fn

log = logging.getLogger("dlp.smtp")

TEMPFAIL_INTERNAL = (
    "451 4.3.0 Internal error, please try again later / 一時的なエラーです。再送してください"
)

INLINE_BUDGET = 0.5
"""Seconds an in-process scan may block the event loop before the worker takes over."""

# A part that is not text or multipart is an attachment to unpack: that scan
# may be slow, so it goes to a worker process, never the serving event loop.
_HEAVY = rb"content-(?:type:(?![ \t]*(?:text|multipart)/)|disposition:[ \t]*attachment)"
# "\n" first rather than (?m)^: a literal start lets the regex engine skip ahead
# (5 µs instead of 60 µs on 20 KB); the message's first line is checked apart.
_HEAVY_LINE = re.compile(rb"\n" + _HEAVY, re.I)
_HEAVY_FIRST = re.compile(_HEAVY, re.I)


_MULTIPART = re.compile(rb"(?:^|\n)content-type:[ \t]*multipart/", re.I)
_UUENCODED = re.compile(rb"\nbegin [0-7]{3,4} \S")
_INLINE_DELIMITERS = 64
"""Boundary lines beyond which a message is parsed in a worker, not the serving loop."""


def _has_heavy_part(content: bytes) -> bool:
    """Whether the message has a part that is not text (or is not text itself).

    Only a multipart message has parts, so the body is searched only when the
    top header says multipart: a plain message's 20 KB body costs the header's
    search instead of a regex attempt at each of its line ends (10 -> 1 us)."""
    at = content.find(b"\nbegin ")  # one memchr-speed pass; a regex search costs more
    while at != -1:
        if _UUENCODED.match(content, at):
            return True  # a file uuencoded into a text body (mime._uuencoded_files)
        at = content.find(b"\nbegin ", at + 1)
    end = content.find(b"\r\n\r\n")
    if end == -1:  # no CRLF header end (bare LF, or header only): all of it
        return bool(_HEAVY_LINE.search(content) or _HEAVY_FIRST.match(content))
    head = content[: end + 2]
    if _HEAVY_LINE.search(head) or _HEAVY_FIRST.match(head):
        return True
    if _MULTIPART.search(head) is None:
        return False
    # Thousands of small text parts, or a deep nesting of them, cost the email
    # package seconds to parse before any budget is looked at: a worker's job
    # (a review of 3 Dec 2026 froze a serving process for 4.5 s with 190 KB).
    return content.count(b"\n--", end) > _INLINE_DELIMITERS or (
        _HEAVY_LINE.search(content, end) is not None
    )


@dataclass
class Transaction:
    """What one upstream session knows about its current message."""

    audit_key: str
    sender: str
    params: MailParams
    mail_options: tuple[str, ...]
    started: float = field(default_factory=time.monotonic)
    recipients: list[Recipient] = field(default_factory=list)
    """Accepted recipients: passed on to the next hop or marked for hold."""
    relayed: set[str] = field(default_factory=set)
    """Recipients the next hop accepted (a set: membership is asked per recipient)."""
    holds: list[Verdict] = field(default_factory=list)
    """RCPT-time hold verdicts (a lookalike recipient with lookalike_action = hold)."""


@dataclass
class SessionState:
    peer: str
    next_hop: NextHop
    xforward: dict[str, str] = field(default_factory=dict)
    helo: str = ""
    txn: Transaction | None = None
    committed: bool = False
    """The message is being relayed, held or refused and recorded: a client that goes
    away now no longer stops it (the next hop may already have it), so that its log
    line and its send-log outcome are written as for any message."""


class AuditLog:
    """The send log, used from one thread: SQLite calls never block the event loop."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="dlp-sendlog")
        self._store: Any = None

    async def append(self, record: Any) -> int:
        return int(await self.run(lambda: self._append(record)))

    async def open(self) -> None:
        """Open the store now, so a problem shows at start (mail without attachments
        or findings still flows; recorded mail tempfails until the store is back)."""
        try:
            await self.run(self._open)
        except Exception as exc:
            log.error(
                "send log unavailable at start: %s",
                _why(exc),
                extra={"dlp": {"event": "sendlog error"}},
            )

    def _open(self) -> None:
        if self._store is None:
            self._store = open_store(self._settings)

    def _append(self, record: Any) -> int:
        self._open()
        try:
            return int(self._store.append(record))
        except Exception:
            # Reopen next time: a store that failed once may be wedged.
            with contextlib.suppress(Exception):
                self._store.close()
            self._store = None
            raise

    def append_later(self, record: Any) -> None:
        """Queue an entry whose failure must not change the SMTP answer (logged)."""

        def not_recorded(exc: BaseException) -> None:
            log.error(
                "send log: outcome not recorded: %s",
                _why(exc),
                extra={"dlp": {"event": "sendlog error", "audit_key": record.audit_key}},
            )

        def write() -> None:
            try:
                self._append(record)
            except Exception as exc:
                not_recorded(exc)

        try:
            self._executor.submit(write)
        except RuntimeError as exc:
            # Shut down (the process is stopping): the next hop has the message
            # already, so a raise here would turn its 250 into our 451.
            not_recorded(exc)

    async def run(self, fn: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn)

    def close(self) -> None:
        def _close() -> None:
            if self._store is not None:
                with contextlib.suppress(Exception):
                    self._store.close()
                self._store = None

        with contextlib.suppress(Exception):
            self._executor.submit(_close).result(timeout=10)
        self._executor.shutdown(wait=False)


class Gateway:
    """Shared by every session of one process."""

    def __init__(
        self,
        settings: Settings,
        *,
        scan_fn: ScanFn | None = None,
        classifier: Any = None,
    ) -> None:
        self.settings = settings
        self.hostname = settings.smtp.hostname or socket.gethostname()
        self._networks = [
            ipaddress.ip_network(n, strict=False) for n in settings.smtp.allowed_clients
        ]
        self._inline_fn: ScanFn | None = scan_fn
        self.classifier = classifier
        self.pool = ScanPool(settings.scan, settings.scan.workers or cores(), scan_fn)
        self._inline_settings = replace(
            settings.scan,
            timeout_seconds=min(settings.scan.timeout_seconds, INLINE_BUDGET),
            ocr_here=False,  # an image here is rescanned in a worker, never OCR'd on the loop
        )
        self.quarantine: Quarantine = open_quarantine(settings)
        self.audit = AuditLog(settings)
        self.next_hops = ConnectionPool()
        self.draining = False
        self.sessions: set[Any] = set()
        self._per_client: collections.Counter[str] = collections.Counter()
        self._allowed: dict[str, bool] = {}
        self._caps = _CapLog()
        self._drained = asyncio.Event()
        self._timers: asyncio.Task[None] | None = None
        self._notices: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self.classifier is None:
            from dlp.recipients import RecipientClassifier

            self.classifier = RecipientClassifier.from_settings(self.settings)
        if self._inline_fn is None:
            self._inline_fn = default_scan_fn()
        await self.pool.start()
        await self.audit.open()
        # A hold queue that cannot be written is found now, with its path and why,
        # not as a 451 on every message a rule holds.
        await asyncio.to_thread(self.quarantine.check_writable)
        if self.settings.notify.from_:
            self._timers = asyncio.create_task(self._run_timers())

    async def _run_timers(self) -> None:
        """Delays that end, confirms unanswered, approvals to remind (``senderloop.run_due``).

        Every serving process runs this: the hold's claim lets one act on each
        message, and the state is in the hold queue, so a restart loses nothing."""
        interval = parse_duration(self.settings.notify.check_interval)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            try:
                result = await loop.run_in_executor(None, senderloop.run_due, self.settings)
            except Exception as exc:
                log.error("hold timers failed: %s", _why(exc))
                continue
            counts = _fields(result)
            if any(counts.values()):
                log.info("hold timers", extra={"dlp": {"event": "hold timers", **counts}})

    async def close(self) -> None:
        if self._notices:
            await asyncio.wait(set(self._notices), timeout=self.settings.smtp.next_hop_timeout)
        if self._timers is not None:
            self._timers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timers
        await self.pool.close()
        await self.next_hops.close()
        self.audit.close()

    # -- connections ----------------------------------------------------

    def client_allowed(self, peer: Any) -> bool:
        try:
            host = peer[0] if isinstance(peer, tuple) else str(peer)
        except IndexError:
            return False
        if not isinstance(host, str):
            return self._allowed_host(host)
        # Postfix opens a connection per message, from the same few addresses: the
        # answer is kept per address (an address is no message content).
        allowed = self._allowed.get(host)
        if allowed is None:
            allowed = self._allowed_host(host)
            if len(self._allowed) >= _PEER_CACHE:
                self._allowed.clear()
            self._allowed[host] = allowed
        return allowed

    def _allowed_host(self, host: Any) -> bool:
        try:
            addr = ipaddress.ip_address(host)
        except (ValueError, TypeError):
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self._networks)

    def admit(self, peer: Any) -> str | None:
        """Count a new session in, or the ``421`` to send when a cap is reached.

        Caps are per serving process (each holds its own sessions' memory); the
        caller adds the session to ``sessions`` with no await in between and
        calls ``session_closed`` exactly once afterwards."""
        s = self.settings.smtp
        client = _client_key(peer)
        if len(self.sessions) >= s.max_sessions:
            self.cap_reached("sessions", s.max_sessions, client)
            return (
                f"421 4.7.0 Too many concurrent sessions (limit {s.max_sessions}),"
                " try again later / 同時接続数が上限に達しました。しばらくしてから再試行してください"
            )
        if self._per_client[client] >= s.max_sessions_per_client:
            self.cap_reached("per_client", s.max_sessions_per_client, client)
            return (
                "421 4.7.0 Too many concurrent sessions from your address"
                f" (limit {s.max_sessions_per_client}), try again later"
                " / このアドレスからの同時接続数が上限に達しました。しばらくしてから再試行してください"
            )
        self._per_client[client] += 1
        return None

    def session_closed(self, peer: Any) -> None:
        client = _client_key(peer)
        self._per_client[client] -= 1
        if self._per_client[client] <= 0:
            del self._per_client[client]

    def cap_reached(self, cap: str, limit: float, client: str, **fields: Any) -> None:
        metrics.SESSIONS_REFUSED.labels(cap).inc()
        self._caps.hit(
            cap,
            limit=limit,
            client=client,
            sessions=len(self.sessions),
            client_sessions=self._per_client.get(client, 0),
            **fields,
        )

    def new_session(self, peer: Any) -> SessionState:
        host = peer[0] if isinstance(peer, tuple) else str(peer)
        return SessionState(
            peer=str(host), next_hop=NextHop(self.settings.smtp, self.hostname, self.next_hops)
        )

    def begin_drain(self) -> None:
        """SIGTERM: refuse new sessions, let open transactions finish."""
        if self.draining:
            return
        self.draining = True
        log.info("draining", extra={"dlp": {"event": "drain", "sessions": len(self.sessions)}})
        for server in list(self.sessions):
            server.close_if_idle()
        self.check_drained()

    def check_drained(self) -> None:
        if self.draining and not self.sessions:
            self._drained.set()

    async def wait_drained(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
            return True
        except TimeoutError:
            return False

    # -- MAIL / RCPT ----------------------------------------------------

    async def mail(
        self, st: SessionState, sender: str, params: MailParams, options: Sequence[str]
    ) -> str:
        if self.classifier is not None:
            with contextlib.suppress(Exception):
                self.classifier.maybe_reload(background=True)
        ident = st.xforward.get("IDENT", "")
        # An IDENT scrub would mask (a client's twelve digits passing the check digit)
        # would be echoed in our reply and stored as the key: ours instead.
        usable = ident and ident != "[UNAVAILABLE]" and scrub(ident) == ident
        audit_key = ident if usable else _own_key()
        st.txn = Transaction(audit_key, sender, params, tuple(options))
        reply = await st.next_hop.begin(sender, params, self._xforward_for(st, audit_key))
        if not reply.ok:
            st.txn = None
            self._log_event("mail refused", audit_key, st, reply=reply.line)
        return _ensure_enhanced(reply, "2.1.0")

    async def rcpt(
        self,
        st: SessionState,
        address: str,
        params: RcptParams,
        *,
        routing: RoutingProblem | None = None,
    ) -> tuple[str, bool]:
        """The reply for one recipient and whether it is now part of the transaction.

        ``routing``: the address has routing syntax (``addresses.py``) and is
        refused whatever its domain, since its domain is not where it would go.
        """
        txn = st.txn
        assert txn is not None
        if routing is not None:
            recipient = self._classify_leniently(address)
            routed = recipient_refusal(routing)
            if self._bounce_goes_outside(txn.sender):
                return self._hold_recipient(txn, recipient, policy.hold_instead_of_bounce(routed))
            return await self._refuse_recipient(st, txn, recipient, routed, kind=routing.kind)
        recipient = self._classify(address)
        refusal = policy.recipient_refusal(recipient, self.settings.domains)
        if refusal is not None and self._bounce_goes_outside(txn.sender):
            refusal = policy.hold_instead_of_bounce(refusal)
        if refusal is not None:
            # Every action named (mypy checks): a new one cannot slip through to relaying.
            match refusal.action:
                case Action.REJECT:
                    return await self._refuse_recipient(
                        st,
                        txn,
                        recipient,
                        refusal,
                        domain=recipient.domain,
                        resembles=recipient.resembles or "",
                    )
                case Action.HOLD | Action.CONFIRM | Action.DELAY | Action.APPROVE:
                    return self._hold_recipient(txn, recipient, refusal)
                case Action.TEMPFAIL:
                    return f"{refusal.smtp_code} {refusal.smtp_message}", False
                case Action.DELIVER | Action.TAG:
                    pass  # not a refusal: relayed like any recipient
                case _:
                    assert_never(refusal.action)
        reply = await st.next_hop.recipient(address, params)
        if reply.ok:
            txn.recipients.append(recipient)
            txn.relayed.add(address)
        return _ensure_enhanced(reply, "2.1.5"), reply.ok

    @staticmethod
    def _hold_recipient(txn: Transaction, recipient: Recipient, hold: Verdict) -> tuple[str, bool]:
        txn.recipients.append(recipient)
        txn.holds.append(hold)
        return f"{hold.smtp_code} {hold.smtp_message}", True

    def _bounce_goes_outside(self, sender: str) -> bool:
        """A refusal would make the MTA send a bounce quoting the message to
        ``sender``; true when that is outside our own domains (docs/gateway.md)."""
        address = sender.strip().strip("<>")
        if not address:
            return False  # a bounce to the null sender goes nowhere
        return self._classify_leniently(address).klass is not RecipientClass.OWN

    async def _refuse_recipient(
        self,
        st: SessionState,
        txn: Transaction,
        recipient: Recipient,
        refusal: Verdict,
        **log_fields: Any,
    ) -> tuple[str, bool]:
        """A deliberate 550 for one recipient, recorded like any non-deliver
        verdict; if recording fails, 4xx, so the sender is told later rather
        than never."""
        record = record_for_message(
            audit_key=txn.audit_key,
            client_address=st.peer,
            sender=txn.sender,
            recipients=[recipient],
            report=ScanReport(source=txn.audit_key),
            verdict=refusal,
            next_hop_reply="",
        )
        try:
            await self.audit.append(record)
        except Exception as exc:
            log.error("send log unavailable: %s", _why(exc))
            return TEMPFAIL_INTERNAL, False
        metrics.MESSAGES.labels("rcpt_reject").inc()
        self._log_event(
            "recipient refused",
            txn.audit_key,
            st,
            recipient=recipient.address,
            rule=refusal.rule,
            **log_fields,
        )
        return f"{refusal.smtp_code} {refusal.smtp_message}", False

    def log_routing_refusal(self, st: SessionState, sender: str, problem: RoutingProblem) -> None:
        """A sender refused at MAIL (no transaction yet, so nothing to record)."""
        log.info(
            "sender refused",
            extra={
                "dlp": {
                    "event": "sender refused",
                    "audit_key": st.xforward.get("IDENT", ""),
                    "client": st.peer,
                    "rule": ROUTING_RULE,
                    "kind": problem.kind,
                    "sender": sender,
                }
            },
        )

    # -- DATA -----------------------------------------------------------

    def data_started(self, st: SessionState) -> None:
        """The client sent DATA: the next hop's DATA goes now, while the message
        comes in (``NextHop.open_data``), when a recipient is to be relayed."""
        if st.txn is not None and st.txn.relayed:
            st.next_hop.open_data()

    async def data(self, st: SessionState, content: bytes) -> str:
        txn = st.txn
        assert txn is not None
        st.txn = None
        t_scan = time.monotonic()
        report = await self.scan(content, txn.audit_key)
        scan_s = time.monotonic() - t_scan
        metrics.SCAN_SECONDS.observe(scan_s)
        # The sender's display name is known only now (the From header): judge which
        # free-mail recipients are probably the sender's own (issue 14) before policy.
        txn.recipients[:] = ownaddress.mark(txn.recipients, txn.sender, report.header_from)
        verdict = policy.decide(report, txn.recipients, txn.sender, self.settings.policy)
        if self._bounce_goes_outside(txn.sender):
            verdict = policy.hold_instead_of_bounce(verdict)
        # A lookalike recipient the sender is to confirm: only that recipient's copy
        # waits, the others get the message now (issue 13).
        copy_hold = self._confirm_copy(txn, verdict)
        if copy_hold is None:
            verdict = _with_rcpt_holds(verdict, txn.holds)
        if verdict.action.sender_in_loop:
            verdict = self._sender_loop_or_hold(txn, verdict)
        for f in report.findings:
            metrics.FINDINGS.labels(f.detector).inc()
        # From here the message is relayed, held or refused, and recorded: a client
        # that goes now no longer stops it (SessionState.committed).
        st.committed = True
        try:
            relay_s = 0.0
            next_hop = ""
            try:
                # Exhaustive (match + assert_never, checked by mypy): an action added to
                # the model cannot fall through to some other action's handling.
                match verdict.action:
                    case Action.DELIVER | Action.TAG:
                        t_relay = time.monotonic()
                        if copy_hold is not None:
                            answer, next_hop = await self._deliver_and_hold_copy(
                                st, txn, content, report, verdict, copy_hold
                            )
                        else:
                            answer, next_hop = await self._deliver(
                                st, txn, content, report, verdict
                            )
                        relay_s = time.monotonic() - t_relay
                        metrics.RELAY_SECONDS.observe(relay_s)
                    case Action.DELAY if copy_hold is not None:
                        await st.next_hop.reset()
                        answer, next_hop = await self._deliver_and_hold_copy(
                            st, txn, content, report, verdict, copy_hold
                        )
                    case (
                        Action.HOLD
                        | Action.CONFIRM
                        | Action.DELAY
                        | Action.APPROVE
                        | Action.REJECT
                        | Action.TEMPFAIL
                    ):
                        await st.next_hop.reset()
                        answer, next_hop = await self._not_delivered(
                            st, txn, content, report, verdict
                        )
                    case _:
                        assert_never(verdict.action)
            except Exception:
                log.exception("internal error handling %s", txn.audit_key)
                await st.next_hop.close()
                answer = TEMPFAIL_INTERNAL
            # A deliver that ended in 4xx (next hop down, send log down) was a tempfail.
            outcome = Action.TEMPFAIL.value if answer.startswith("4") else verdict.action.value
            metrics.MESSAGES.labels(outcome).inc()
            self._log_event(
                "message",
                txn.audit_key,
                st,
                action=verdict.action.value,
                rule=verdict.rule,
                reasons=list(verdict.reasons),
                reply=answer,
                next_hop=next_hop,
                size=len(content),
                recipients=len(txn.recipients),
                attachments=len(report.attachments),
                mynumber_distinct=report.mynumber.distinct,
                scan_error=report.error,
                scan_ms=round(scan_s * 1000, 2),
                relay_ms=round(relay_s * 1000, 2),
                total_ms=round((time.monotonic() - txn.started) * 1000, 2),
            )
            return answer
        finally:
            st.committed = False

    async def scan(self, content: bytes, source: str) -> ScanReport:
        """Small attachment-free mail in this process, everything else in a worker.

        An inline scan blocks every session of this process while it runs, so it
        gets a short budget of its own; a message that needs longer is scanned
        again in a worker with the full budget instead of being tempfailed.
        """
        if len(content) <= self.settings.smtp.inline_scan_max_bytes and not _has_heavy_part(
            content
        ):
            assert self._inline_fn is not None
            try:
                report = self._inline_fn(content, self._inline_settings, source)
            except Exception as exc:  # the scanner promises not to raise
                return ScanReport(
                    source=source, size=len(content), error=f"scanner error: {type(exc).__name__}"
                )
            if not report.error.startswith("timeout"):
                return report
            log.info(
                "inline scan over budget; rescanning in a worker",
                extra={"dlp": {"event": "inline over budget", "audit_key": source}},
            )
        return await self.pool.scan(content, source)

    async def _deliver(
        self,
        st: SessionState,
        txn: Transaction,
        content: bytes,
        report: ScanReport,
        verdict: Verdict,
    ) -> tuple[str, str]:
        if not txn.relayed:
            return TEMPFAIL_INTERNAL, ""
        if not st.next_hop.ready:
            # Lost since RCPT: say so before writing a send-log entry for nothing.
            return "451 4.4.2 next hop connection lost, try again later", ""
        content = self._without_verdict_fields(st, txn, content)
        if verdict.action is Action.TAG:
            content = self._tag_headers(txn, report, verdict) + content
        recipients = [r for r in txn.recipients if r.address in txn.relayed]
        entry_id: int | None = None
        if needs_record(report, verdict):
            try:
                entry_id = await self.audit.append(
                    record_for_message(
                        audit_key=txn.audit_key,
                        client_address=st.peer,
                        sender=txn.sender,
                        recipients=recipients,
                        report=report,
                        verdict=verdict,
                        next_hop_reply="pending",
                    )
                )
            except Exception as exc:
                log.error("send log unavailable, tempfailing %s: %s", txn.audit_key, _why(exc))
                await st.next_hop.reset()
                return TEMPFAIL_INTERNAL, ""
        reply = await st.next_hop.data(content)
        if entry_id is not None:
            # The next hop's answer, linked to the entry written before DATA.  Not
            # awaited: the upstream gets its answer now (a late answer makes
            # duplicates); the single send-log thread writes it right after.
            self.audit.append_later(
                record_for_outcome(
                    audit_key=txn.audit_key, entry_id=entry_id, next_hop_reply=reply.line
                )
            )
        if reply.ok:
            return f"250 2.0.0 Ok: {txn.audit_key} relayed ({_short(reply.message)})", reply.line
        return _ensure_enhanced(reply, "2.0.0"), reply.line

    async def _not_delivered(
        self,
        st: SessionState,
        txn: Transaction,
        content: bytes,
        report: ScanReport,
        verdict: Verdict,
    ) -> tuple[str, str]:
        record_kwargs: dict[str, Any] = dict(
            audit_key=txn.audit_key,
            client_address=st.peer,
            sender=txn.sender,
            recipients=txn.recipients,
            report=report,
            verdict=verdict,
        )
        match verdict.action:
            case Action.HOLD | Action.CONFIRM | Action.DELAY | Action.APPROVE:
                return await self._hold(st, txn, content, report, verdict, record_kwargs)
            case Action.REJECT:
                try:
                    await self.audit.append(record_for_message(**record_kwargs, next_hop_reply=""))
                except Exception as exc:
                    log.error("send log unavailable, tempfailing %s: %s", txn.audit_key, _why(exc))
                    return TEMPFAIL_INTERNAL, ""
                return f"{verdict.smtp_code} {verdict.smtp_message}", ""
            case Action.TEMPFAIL:
                # The upstream retries; the entry is best effort.
                try:
                    await self.audit.append(record_for_message(**record_kwargs, next_hop_reply=""))
                except Exception as exc:
                    log.warning(
                        "send log unavailable for tempfailed %s: %s",
                        txn.audit_key,
                        type(exc).__name__,
                    )
                return f"{verdict.smtp_code} {verdict.smtp_message}", ""
            case Action.DELIVER | Action.TAG:
                raise AssertionError(f"{verdict.action} is delivered, not handled here")
            case _:
                assert_never(verdict.action)

    async def _hold(
        self,
        st: SessionState,
        txn: Transaction,
        content: bytes,
        report: ScanReport,
        verdict: Verdict,
        record_kwargs: dict[str, Any],
    ) -> tuple[str, str]:
        """Held durably (pending), recorded, then committed; only then 250 (after a 250 the
        MTA forgets the mail)."""
        answer, held = await self._hold_copy(
            st, txn, content, report, verdict, record_kwargs, txn.recipients
        )
        if held is not None:
            self._notify_later(held)
        return answer, ""

    async def _hold_copy(
        self,
        st: SessionState,
        txn: Transaction,
        content: bytes,
        report: ScanReport,
        verdict: Verdict,
        record_kwargs: dict[str, Any],
        recipients: Sequence[Recipient],
        part: str = "",
    ) -> tuple[str, HeldMessage | None]:
        """A copy for ``recipients`` held, recorded and committed; the answer and the copy
        (None and a 451 when it could not be)."""
        record_kwargs = {**record_kwargs, "recipients": list(recipients)}
        loop = asyncio.get_running_loop()
        try:
            held = await self._hold_now(loop, content, txn, recipients, verdict, report, st, part)
        except QuarantineError as exc:
            log.error("hold queue unavailable, tempfailing %s: %s", txn.audit_key, _why(exc))
            return TEMPFAIL_INTERNAL, None
        try:
            await self.audit.append(
                record_for_message(**record_kwargs, next_hop_reply=f"held {held.id}")
            )
        except Exception as exc:
            log.error("send log unavailable, releasing hold of %s: %s", txn.audit_key, _why(exc))
            await self._drop_unconfirmed(held.id, txn.audit_key)
            return TEMPFAIL_INTERNAL, None
        try:
            # Only now releasable: a copy whose entry is missing never is.
            await loop.run_in_executor(None, self.quarantine.commit, held.id)
        except Exception as exc:
            log.error("hold of %s not confirmed: %s", txn.audit_key, _why(exc))
            await self._drop_unconfirmed(held.id, txn.audit_key)
            return TEMPFAIL_INTERNAL, None
        metrics.HELD.inc()
        return f"{verdict.smtp_code} {verdict.smtp_message} [{held.id}]", held

    async def _hold_now(
        self,
        loop: asyncio.AbstractEventLoop,
        content: bytes,
        txn: Transaction,
        recipients: Sequence[Recipient],
        verdict: Verdict,
        report: ScanReport,
        st: SessionState,
        part: str = "",
    ) -> HeldMessage:
        """The copy written (pending) for ``recipients``; ``part``: Quarantine.hold_id."""
        waiting_for: tuple[str, ...] = ()
        if verdict.action is Action.APPROVE:
            waiting_for = approvers_for(txn.sender, self.settings.approval.routes)
        elif verdict.action.sender_in_loop:
            waiting_for = (txn.sender,)
        return await loop.run_in_executor(
            None,
            lambda: self.quarantine.hold(
                content,
                audit_key=txn.audit_key,
                sender=txn.sender,
                recipients=[r.address for r in recipients],
                mail_options=txn.mail_options,
                verdict=verdict,
                report=report,
                client_address=st.peer,
                waiting_for=waiting_for,
                meant=self._meant(recipients) if verdict.action is Action.CONFIRM else None,
                part=part,
            ),
        )

    def _notify_later(self, held: HeldMessage) -> None:
        if held.kind != Action.HOLD.value:
            # After the answer, not before it: the message is safe already and a
            # notice is one more next-hop transaction the MTA need not wait for.
            task = asyncio.create_task(self._notify(held))
            self._notices.add(task)
            task.add_done_callback(self._notices.discard)

    async def _notify(self, held: HeldMessage) -> None:
        """Mail the sender or the approvers their link.  The message is held durably
        already: a notice that cannot go out leaves it held, for the staff to see
        (and the deadline's action still applies), never lost."""
        try:
            notices = senderloop.notices_for(self.settings, held)
            sent = await asyncio.wait_for(
                senderloop.send_notices(self.settings, notices, self.next_hops),
                self.settings.smtp.next_hop_timeout * 3,
            )
        except Exception as exc:
            log.error("notice for held %s not sent: %s", held.id, _why(exc))
            sent = []
        if set(held.waiting_for) - set(sent):  # someone who decides was not told
            # Marked (a rare write, only on failure): the timers send it again, and a
            # confirm nobody was asked about is never discarded by its timeout.
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, senderloop.mark_notice_failed, self.settings, held)
            except Exception as exc:
                log.error("held %s: notice failure not recorded: %s", held.id, _why(exc))
        # A log line, not a send-log entry: the message's own entry says it was
        # held and how, and a second chained, fsync'd entry per message would be
        # most of what `delay` on every message costs beyond `hold`
        # (bench/sender_loop.py, BENCHMARKS.md).
        log.info(
            "notice",
            extra={
                "dlp": {
                    "event": "notice",
                    "audit_key": held.audit_key,
                    "held_id": held.id,
                    "kind": held.kind,
                    "sent": len(sent),
                    "of": len(held.waiting_for),
                }
            },
        )

    def _confirm_copy(self, txn: Transaction, verdict: Verdict) -> Verdict | None:
        """The confirm verdict for the lookalike recipients' own copy, when the rest of
        the message is delivered now (or delayed: sent by itself when the delay is over,
        which a confirm that is not answered would turn into a discard); None when the
        whole message is decided as one."""
        if (
            verdict.action not in (Action.DELIVER, Action.TAG, Action.DELAY)
            or not txn.holds
            or not txn.relayed
            or any(h.action is not Action.CONFIRM for h in txn.holds)
            or not txn.sender.strip("<> ")
            or self._bounce_goes_outside(txn.sender)
        ):
            return None
        return replace(txn.holds[0], reasons=tuple(r for h in txn.holds for r in h.reasons))

    async def _deliver_and_hold_copy(
        self,
        st: SessionState,
        txn: Transaction,
        content: bytes,
        report: ScanReport,
        verdict: Verdict,
        copy_hold: Verdict,
    ) -> tuple[str, str]:
        """The lookalike recipients' copy held (and committed) first, then the message
        for the others: relayed, or held as the delay their rule asks for (two holds:
        unanswered, the confirm discards only its copy, and the delay still sends the
        rest when it is over).  If that fails the MTA retries or bounces the whole
        message, so the copy is taken back (recorded) and its answer given."""
        base: dict[str, Any] = dict(
            audit_key=txn.audit_key, client_address=st.peer, sender=txn.sender, report=report
        )
        copy_rcpts = [r for r in txn.recipients if r.address not in txn.relayed]
        answer, held = await self._hold_copy(
            st, txn, content, report, copy_hold, {**base, "verdict": copy_hold}, copy_rcpts
        )
        if held is None:
            await st.next_hop.reset()
            return answer, ""
        next_hop = ""
        if verdict.action is Action.DELAY:
            rest = [r for r in txn.recipients if r.address in txn.relayed]
            answer, delayed = await self._hold_copy(
                st, txn, content, report, verdict, {**base, "verdict": verdict}, rest, part="rest"
            )
            if delayed is not None:
                self._notify_later(delayed)
        else:
            answer, next_hop = await self._deliver(st, txn, content, report, verdict)
        if not answer.startswith("2"):
            await self._take_back(held, txn)
            return answer, next_hop
        self._notify_later(held)
        waiting = ", ".join(held.recipients)
        return f"{answer}; {waiting} held for the sender to confirm [{held.id}]", next_hop

    async def _take_back(self, held: HeldMessage, txn: Transaction) -> None:
        """The lookalike recipients' copy undone (recorded) when the rest of the message
        could not be handled: the MTA has the whole message again and retries it."""
        await self._drop_unconfirmed(held.id, txn.audit_key)
        self.audit.append_later(
            record_for_event(
                event="discard",
                actor="gateway",
                comment="the other recipients' delivery or hold failed; the MTA has the "
                "whole message again",
                audit_key=txn.audit_key,
                detail={"held_id": held.id, "kind": held.kind},
            )
        )

    def _sender_loop_or_hold(self, txn: Transaction, verdict: Verdict) -> Verdict:
        """confirm / delay / approve need someone to mail: an own-domain sender (a
        notice to an outside or null sender would be backscatter) and, for
        approve, an approver route.  Without them the message is held for the staff."""
        why = ""
        if not txn.sender.strip("<> ") or self._bounce_goes_outside(txn.sender):
            why = "the envelope sender is not in our own domains"
        elif verdict.action is Action.APPROVE and not approvers_for(
            txn.sender, self.settings.approval.routes
        ):
            why = "no [[approval.routes]] entry gives the sender an approver other than themselves"
        if not why:
            return verdict
        return replace(
            verdict,
            action=Action.HOLD,
            reasons=(*verdict.reasons, f"held for review instead of {verdict.action.value}: {why}"),
            # not the rule's confirm/approve text ("a mail with a link follows"): no
            # such mail is sent, the staff decide
            smtp_message=policy.held_for_review_text(),
            terms=None,
        )

    def _meant(self, recipients: Sequence[Recipient]) -> dict[str, str]:
        """Lookalike recipient -> the same local part at the domain it resembles,
        offered only when that domain is our own or a partner's."""
        out: dict[str, str] = {}
        for r in recipients:
            if r.klass is RecipientClass.LOOKALIKE and r.resembles:
                meant = f"{r.address.rpartition('@')[0]}@{r.resembles}"
                if self._classify_leniently(meant).klass in (
                    RecipientClass.OWN,
                    RecipientClass.PARTNER,
                ):
                    out[r.address] = meant
        return out

    async def _drop_unconfirmed(self, held_id: str, audit_key: str) -> None:
        """Remove a copy the MTA will be told 451 for.  If that fails too (the
        database went away), the copy stays *pending*: never listed or
        releasable, reused by the MTA's retry (same id), removed by retention."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.quarantine.delete, held_id)
        except Exception as exc:
            log.error(
                "unconfirmed held copy %s left pending (retention removes it): %s",
                held_id,
                _why(exc),
                extra={"dlp": {"event": "hold left pending", "audit_key": audit_key}},
            )

    def _without_verdict_fields(self, st: SessionState, txn: Transaction, content: bytes) -> bytes:
        """Incoming fields named like ours are the sender's forgery: removed (headers.py)."""
        stripped = strip_fields(content, (ALWAYS, self.settings.policy.tag_header_prefix))
        if stripped.removed:
            self._log_event(
                "verdict headers removed", txn.audit_key, st, fields=list(stripped.removed)
            )
        return stripped.content

    def _tag_headers(self, txn: Transaction, report: ScanReport, verdict: Verdict) -> bytes:
        prefix = self.settings.policy.tag_header_prefix
        fields = [
            ("Verdict", f"{verdict.action.value}; rule={verdict.rule}"),
            ("Audit-Key", txn.audit_key),
        ]
        if report.mynumber.distinct:
            s = report.mynumber
            fields.append(
                (
                    "MyNumber",
                    f"distinct={s.distinct}; high={s.high}; medium={s.medium}; low={s.low}",
                )
            )
        for name, s in report.summaries.items():
            # One field per other detector that found something (issue 15).
            if name != "mynumber" and s.distinct:
                fields.append(
                    (
                        "Found",
                        f"{name}; distinct={s.distinct}; high={s.high}; medium={s.medium};"
                        f" low={s.low}",
                    )
                )
        for reason in verdict.reasons[:5]:
            fields.append(("Reason", reason))
        out = []
        for name, value in fields:
            header = Header(
                value, "utf-8" if not value.isascii() else "us-ascii", header_name=prefix + name
            )
            out.append(f"{prefix}{name}: {header.encode(linesep=chr(13) + chr(10))}\r\n")
        return "".join(out).encode("ascii")

    # -- helpers --------------------------------------------------------

    def _classify(self, address: str) -> Recipient:
        assert self.classifier is not None
        recipient: Recipient = self.classifier.classify(address)
        return recipient

    def _classify_leniently(self, address: str) -> Recipient:
        """For the send-log entry of a refused address: its nominal domain's
        class, or external when that domain does not even classify."""
        try:
            return self._classify(address)
        except Exception:
            domain = address.rpartition("@")[2]
            return Recipient(address=address, domain=domain, klass=RecipientClass.EXTERNAL)

    def _xforward_for(self, st: SessionState, audit_key: str) -> dict[str, str]:
        attrs = dict(st.xforward)
        if not attrs:
            attrs = {"ADDR": st.peer, "PROTO": "ESMTP"}
            if st.helo:
                # The client's own words: xtext, as XFORWARD values are (what an
                # upstream Postfix sent us is xtext already and goes on as it came).
                attrs["HELO"] = xtext(st.helo)
        attrs["IDENT"] = audit_key
        return attrs

    def _log_event(self, event: str, audit_key: str, st: SessionState, **fields: Any) -> None:
        log.info(
            event,
            extra={"dlp": {"event": event, "audit_key": audit_key, "client": st.peer, **fields}},
        )


class _CapLog:
    """One JSON line per cap per ``interval`` seconds, with the refusals since the last.

    A client that hammers a cap would otherwise write a line per attempt and
    flood the log it is meant to show up in."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._count: collections.Counter[str] = collections.Counter()

    def hit(self, cap: str, **fields: Any) -> None:
        self._count[cap] += 1
        now = time.monotonic()
        last = self._last.get(cap)
        if last is not None and now - last < self.interval:
            return
        self._last[cap] = now
        log.warning(
            "session cap reached: %s",
            cap,
            extra={
                "dlp": {
                    "event": "session cap",
                    "cap": cap,
                    "refused": self._count.pop(cap),
                    **fields,
                }
            },
        )


def _fields(result: Any) -> dict[str, int]:
    return {k: int(getattr(result, k)) for k in result.__dataclass_fields__}


_PEER_CACHE = 4096
"""Client addresses whose parse is kept (a busy relay has a handful)."""


def _client_key(peer: Any) -> str:
    """The client's address as counted for ``max_sessions_per_client``."""
    host = peer[0] if isinstance(peer, tuple) and peer else str(peer)
    return _host_key(host) if isinstance(host, str) else _host_key_uncached(host)


@functools.lru_cache(maxsize=_PEER_CACHE)
def _host_key(host: str) -> str:
    return _host_key_uncached(host)


def _host_key_uncached(host: Any) -> str:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return str(host)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


_HOLD_STRENGTH = {Action.DELAY: 1, Action.CONFIRM: 2, Action.APPROVE: 3, Action.HOLD: 4}


def _with_rcpt_holds(verdict: Verdict, holds: list[Verdict]) -> Verdict:
    """A lookalike recipient marked for hold at RCPT holds the whole message."""
    if not holds:
        return verdict
    extra = tuple(r for h in holds for r in h.reasons)
    # The stricter hold wins: the staff's (hold) over an approver's over the
    # sender's own check (a lookalike confirm) over a mere delay.
    strongest = max(holds, key=lambda h: _HOLD_STRENGTH.get(h.action, 0))
    match verdict.action:
        case Action.REJECT | Action.TEMPFAIL:
            return verdict
        case Action.HOLD | Action.CONFIRM | Action.DELAY | Action.APPROVE:
            if _HOLD_STRENGTH[strongest.action] > _HOLD_STRENGTH[verdict.action]:
                # the RCPT answer's text, as the message's answer: 2.6.0, not 2.1.5
                return replace(
                    strongest,
                    reasons=extra + verdict.reasons,
                    smtp_message=strongest.smtp_message.replace("2.1.5", "2.6.0", 1),
                )
            return replace(verdict, reasons=verdict.reasons + extra)
        case Action.DELIVER | Action.TAG:
            first = strongest
            return replace(
                first,
                reasons=extra + verdict.reasons,
                smtp_message=first.smtp_message.replace("2.1.5", "2.6.0", 1),
            )
        case _:
            assert_never(verdict.action)


_ENHANCED = re.compile(r"[245]\.\d{1,3}\.\d{1,3}( |$)")


def _ensure_enhanced(reply: Reply, default: str) -> str:
    """Our replies carry enhanced status codes; add one when the next hop sent none."""
    message = " ".join(reply.message.split())
    if _ENHANCED.match(message):
        return f"{reply.code} {message}"
    klass = str(reply.code)[0]
    return f"{reply.code} {klass}{default[1:]} {message}".rstrip()


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text[:200]


def _own_key() -> str:
    """``dlp-`` and 64 random bits as sixteen letters a-p.  No digits: hex ones
    could hold a twelve-digit run with a valid check digit (1 key in about
    2,600), which every log and send-log entry would then show masked, and the
    key would no longer match the client's reply, the next hop's log or the
    hold queue."""
    return "dlp-" + secrets.token_hex(8).translate(_HEX_TO_LETTERS)


_HEX_TO_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


def cores() -> int:
    """CPUs this process may run on (the default for processes and scan workers)."""
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


_LOG_DIGEST_KEYS = frozenset(
    {"hash", "prev_hash", "sha256", "hmac", "prev", "purged_hash", "key_id"}
)
_HEX64 = re.compile(r"[0-9a-f]{64}")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; structured fields come from ``extra={"dlp": {...}}``.

    Every record that reaches the handler - ours, asyncio's, a library's -
    has its message and every string field passed through ``scrub`` here, at the one
    place where a line is written (the filter keeps no My Numbers, in logs neither):
    recipient addresses such as ``123456789018@example.com``, next-hop replies that echo them, the XFORWARD IDENT
    a client sent, a command verb a client made up.  Only the fields
    this formatter writes itself and a client field that is an IP address are left
    as they are (an IPv4 address can hold twelve digits).

    One line per message is written on the serving path, so the fields are walked
    once here (what ``scrub_tree`` does for a mapping, field by field) and encoded
    by one shared encoder: ``json.dumps`` with an option builds a new one a call."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": _timestamp(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        extra = getattr(record, "dlp", None)
        if isinstance(extra, dict):
            for k, v in extra.items():
                key = str(k)
                out_key = _LOG_KEYS.get(key)
                if out_key is None:
                    out_key = scrub(key)
                    if out_key == key and len(_LOG_KEYS) < 1024:
                        _LOG_KEYS[key] = key  # a field name of ours: it has no number
                if type(v) in _JSON_SCALARS or v is None:
                    clean = v
                elif isinstance(v, str):
                    clean = scrub(v)
                    if clean is not v and (
                        (key in _LOG_CLIENT_KEYS and is_ip_address(v))
                        # A 64-hex-digit digest (the send log's chain head, its HMAC) is
                        # compared character by character with the heads file; a decimal
                        # run inside it that happens to pass the check digit must not be
                        # masked.  Only exact 64-hex values under these keys are kept:
                        # they cannot carry text a person wrote.
                        or (key in _LOG_DIGEST_KEYS and _HEX64.fullmatch(v))
                    ):
                        clean = v
                elif isinstance(v, bool | int | float):
                    clean = v
                elif not v and isinstance(v, list):
                    clean = []
                else:
                    clean = scrub_tree(v, keep=_KEEP_NOTHING)
                data[out_key] = clean
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and where, not its text: a message text could
            # quote content, and no number may reach a log.
            data["exception"] = record.exc_info[0].__name__
            data["where"] = _where(record.exc_info[2])
        return _JSON.encode(data)


_JSON = json.JSONEncoder(ensure_ascii=False)
_KEEP_NOTHING: frozenset[str] = frozenset()
_JSON_SCALARS = frozenset({int, float, bool})
_LOG_KEYS: dict[str, str] = {}
"""Field names seen that ``scrub`` leaves as they are (bounded: names come from code)."""
_LOG_CLIENT_KEYS = frozenset({"client", "client_address"})
_LAST_SECOND: tuple[int, str] = (-1, "")


def _timestamp(created: float, msecs: float) -> str:
    """``2026-01-02T03:04:05.678Z``; the part up to the second is made once a second."""
    global _LAST_SECOND
    second, prefix = _LAST_SECOND  # one read: other threads log too
    if second != int(created):
        second = int(created)
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        _LAST_SECOND = (second, prefix)
    return f"{prefix}.{int(msecs):03d}Z"


def _where(tb: Any) -> str:
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return ""
    code = last.tb_frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{last.tb_lineno} in {code.co_name}"


def _why(exc: BaseException) -> str:
    """What to tell the administrator about a send-log or hold-queue failure.

    Our own errors (SendLogError, QuarantineError) are written for administrators
    and carry no password; anything else is named by its type only, since a
    database driver's text may quote a value.  Both pass through ``scrub``."""
    if isinstance(exc, SendLogError | QuarantineError):
        return scrub(str(exc)) or type(exc).__name__
    return type(exc).__name__
