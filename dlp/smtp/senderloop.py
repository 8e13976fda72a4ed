"""The sender in the loop (issue 13): notices out, decisions in, timers.

* ``notify_new_hold``  after a confirm / delay / approve hold is committed: mail
  the sender (or each approver) a notice with a one-click link;
* ``decide``           what a link's page POSTs: release, discard or send to the
  meant address, under the hold's claim, so the first decision wins and a
  message is never delivered twice (a second click, a second approver, a
  timer at the same moment find the claim taken or the hold gone);
* ``run_due``          what the gateway runs every ``[notify] check_interval``:
  a delay whose time is up is delivered, an unanswered confirm gets its
  ``on_timeout``, an approval waiting too long is reminded and escalated.

The state is the hold queue's entry itself (kind, deadline, who it waits
for, reminded/escalated), so timers survive a restart and any gateway
process - on any host sharing a PostgreSQL queue - may run them.

Every decision is a send-log entry with the message's audit key: who (the
sender, an approver, ``timer``), when, from which client address, what, and
the comment.  It lives with sending because releasing sends (``release.py``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from dlp.config import Settings, parse_duration
from dlp.detect.mynumber import scrub
from dlp.holdqueue.decisions import ReleaseError, _discard
from dlp.holdqueue.store import (
    ClaimedElsewhere,
    HeldMessage,
    Quarantine,
    QuarantineError,
    open_quarantine,
)
from dlp.notify.notices import (
    HoldFacts,
    Notice,
    approver_notice,
    outcome_notice,
    sender_notice,
    waiting_notice,
)
from dlp.notify.tokens import Grant, TokenError, issue, notify_key, verify
from dlp.sendlog import open_store, record_for_event
from dlp.smtp import metrics
from dlp.smtp.relay import ConnectionPool, MailParams, NextHop, RcptParams
from dlp.smtp.release import _release

log = logging.getLogger("dlp.senderloop")

DECISIONS: dict[str, tuple[str, ...]] = {
    "confirm": ("send", "discard", "send_meant"),
    "delay": ("send_now", "cancel"),
    "approve": ("approve", "reject"),
}
"""What each kind of hold offers, in the order the page shows them."""

_RELEASES = frozenset({"send", "send_now", "approve", "send_meant"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the decision page says: ``state`` is done | decided | expired | invalid | busy |
    refused | error."""

    state: str
    ja: str
    en: str


# ---------------------------------------------------------------------------
# Notices


def facts_of(held: HeldMessage) -> HoldFacts:
    return HoldFacts(
        kind=held.kind,
        sender=held.sender,
        subject=held.subject,
        recipients=held.recipients,
        why_ja=held.notice_ja,
        why_en=held.notice_en,
        deadline=held.expires_at,
        meant=tuple(sorted(held.meant.items())),
        on_timeout=held.on_timeout,
        held_at=held.held_at,
    )


def link_for(settings: Settings, key: bytes, held: HeldMessage, role: str, address: str) -> str:
    """A link that lets ``address`` decide this hold until it ends (its deadline, or
    retention for an approval, which has none)."""
    end = held.expires_at or held.held_at + timedelta(days=settings.quarantine.retention_days)
    grant = Grant(held.id, held.held_at.isoformat(), role, address, int(end.timestamp()) + 1)
    return f"{settings.notify.url}/d/{issue(key, grant)}"


def notices_for(
    settings: Settings,
    held: HeldMessage,
    *,
    reminder: bool = False,
    escalated_from: tuple[str, ...] = (),
) -> list[Notice]:
    """The notices a hold sends: the sender's link (confirm, delay), or the approvers'
    links and, the first time, a word to the sender that the message waits for them."""
    key = notify_key(settings)
    facts = facts_of(held)
    sender_from = settings.notify.from_
    if held.kind == "approve":
        notices = [
            approver_notice(
                facts,
                a,
                link_for(settings, key, held, "approver", a),
                sender_from,
                reminder=reminder,
                escalated_from=escalated_from,
            )
            for a in held.waiting_for
        ]
        if not reminder and not escalated_from:
            notices.append(waiting_notice(facts, held.waiting_for, sender_from))
        return notices
    link = link_for(settings, key, held, "sender", held.sender)
    return [sender_notice(facts, link, sender_from)]


async def send_notices(
    settings: Settings, notices: Sequence[Notice], pool: ConnectionPool | None = None
) -> list[str]:
    """Each notice through the next hop, from ``[notify] from``; the addresses it
    went to.  Notices never pass through the gateway, so they are never held or
    scanned into a loop."""
    sent: list[str] = []
    for notice in notices:
        hop = NextHop(settings.smtp, settings.smtp.hostname or socket.gethostname(), pool)
        try:
            reply = await hop.begin(settings.notify.from_, MailParams(), {})
            if not reply.ok:
                raise ReleaseError(f"next hop refused the notice sender: {reply.line}")
            reply = await hop.recipient(notice.to, RcptParams())
            if not reply.ok:
                log.warning("notice to a recipient refused: %s", reply.line)
                continue
            reply = await hop.data(notice.raw)
            if reply.ok:
                sent.append(notice.to)
            else:
                log.warning("notice not accepted: %s", reply.line)
        finally:
            await hop.close()
    return sent


def _send_now(settings: Settings, notices: Sequence[Notice]) -> list[str]:
    """For threads without an event loop (the console's pages, the timer thread)."""
    try:
        return asyncio.run(send_notices(settings, notices))
    except Exception as exc:
        log.error("notice not sent: %s", type(exc).__name__)
        return []


def _record(
    settings: Settings, event: str, held: HeldMessage, actor: str, comment: str, **detail: str | int
) -> None:
    with open_store(settings) as store:
        store.append(
            record_for_event(
                event=event,
                actor=actor,
                comment=comment,
                audit_key=held.audit_key,
                detail={"held_id": held.id, "kind": held.kind, **detail},
            )
        )


def mark_notice_failed(settings: Settings, held: HeldMessage) -> None:
    """Remember that this hold's notice did not go out (``run_due`` retries it)."""
    queue = open_quarantine(settings)
    try:
        with queue.claim(held.id):
            current = queue.get(held.id)
            if current is not None and current.held_at == held.held_at:
                queue.update(replace(current, notice_failed=True))
    except ClaimedElsewhere:
        pass  # decided meanwhile (or a timer has it): nothing left to notify about


# ---------------------------------------------------------------------------
# Decisions from a link


def decide(
    settings: Settings, token: str, decision: str, client: str, comment: str = ""
) -> Outcome:
    """Carry out one POSTed decision; a page says what happened, whatever happened."""
    key = notify_key(settings)
    try:
        grant = verify(key, token)
    except TokenError as exc:
        if exc.reason == "expired":
            return Outcome("expired", "このリンクは期限切れです。", "This link has expired.")
        return Outcome("invalid", "このリンクは無効です。", "This link is not valid.")
    queue = open_quarantine(settings)
    comment = scrub(comment.strip())[:500]
    outcome = None
    deferred = False
    decided: HeldMessage | None = None
    try:
        with queue.claim(grant.held_id):
            held = queue.get(grant.held_id)
            refusal = _check(held, grant, decision)
            if refusal is not None:
                return refusal
            assert held is not None
            actor = f"{grant.role} {grant.address}"
            extra: dict[str, str | int | float | bool | None] = {
                "decision": decision,
                "kind": held.kind,
                "via": "link",
                "client_address": client,
                "waited_seconds": int((datetime.now(UTC) - held.held_at).total_seconds()),
            }
            text = f"{decision} by one-click link" + (f": {comment}" if comment else "")
            if decision in _RELEASES:
                rcpts = None
                if decision == "send_meant":
                    rcpts = tuple(held.meant.get(r, r) for r in held.recipients)
                    extra["sent_to"] = ", ".join(rcpts)
                try:
                    _release(settings, queue, held.id, actor, text, recipients=rcpts, extra=extra)
                except ReleaseError as exc:
                    if not exc.temporary:
                        raise  # refused for good, or delivered with a failed record
                    # The next hop did not take it: the decision stands, and the timer
                    # sends it when the next hop answers again.  Left as it was, an
                    # unanswered confirm would later be discarded "for no answer".
                    _defer(settings, queue, held, rcpts, actor, text, extra, scrub(str(exc)))
                    deferred = True
                    outcome = Outcome(
                        "done",
                        "送信を受け付けました。次の中継サーバーが今は受け取らないため、"
                        "受け取れるようになりしだい自動で送信します。",
                        "Your decision is recorded. The next mail server is not taking mail "
                        "right now; the message will be sent as soon as it does.",
                    )
                else:
                    if rcpts is not None:  # say where it went: not where it was addressed
                        to = scrub(", ".join(rcpts))
                        outcome = Outcome(
                            "done", f"{to} に送信しました。", f"The message has been sent to {to}."
                        )
                    else:
                        outcome = Outcome("done", "送信しました。", "The message has been sent.")
            else:
                _discard(settings, queue, held.id, actor, text, extra=extra)
                outcome = Outcome(
                    "done",
                    "送信を取り消し、破棄しました。",
                    "The message was not sent; it is discarded.",
                )
            decided = held
            _count(held, decision)
    except ClaimedElsewhere:
        return Outcome(
            "busy",
            "このメールは今ほかの操作で処理中です。少し待ってから開き直してください。",
            "This message is being decided right now (another click, another person or a "
            "timer); reload in a moment.",
        )
    except (ReleaseError, QuarantineError) as exc:
        log.error("decision %s on %s failed: %s", decision, grant.held_id, scrub(str(exc)))
        if str(exc).startswith("released and delivered"):
            # Sent; only its record (or the removal of the copy) failed: say so, not "held".
            return Outcome(
                "done",
                "送信しました（記録に失敗したため、管理者が確認します）。",
                "The message has been sent (its record failed; the administrators will check).",
            )
        return Outcome(
            "error",
            "処理できませんでした。メールは保留されたままです。しばらくして再度お試しください。",
            "It could not be done; the message stays held. Please try again later.",
        )
    if decided is not None and decided.kind == "approve":
        result = "approved" if decision == "approve" else "rejected"
        if deferred:
            result = "approved, pending"  # not "sent": the next hop has not taken it yet
        _send_now(
            settings,
            [
                outcome_notice(
                    facts_of(decided), result, grant.address, comment, settings.notify.from_
                )
            ],
        )
    assert outcome is not None
    return outcome


def _defer(
    settings: Settings,
    queue: Quarantine,
    held: HeldMessage,
    rcpts: tuple[str, ...] | None,
    actor: str,
    text: str,
    extra: dict[str, str | int | float | bool | None],
    why: str,
) -> None:
    """A send decision the next hop could not carry out now: recorded, and the hold
    becomes a delay that is already over, so ``run_due`` delivers it (trying again
    each pass until the next hop takes it).  Under the caller's claim."""
    try:
        _record(
            settings,
            "decision",
            held,
            actor,
            f"{text}: not delivered yet ({why}); sent when the next hop takes it",
            **{k: v for k, v in extra.items() if isinstance(v, str | int)},
        )
    except Exception as exc:  # unrecorded, it is not taken: the page says so
        raise ReleaseError(f"the decision could not be recorded ({type(exc).__name__})") from None
    queue.update(
        replace(
            held,
            kind="delay",
            recipients=rcpts or held.recipients,
            expires_at=datetime.now(UTC),
            waiting_for=(held.sender,),
            notice_failed=False,
        )
    )


def _count(held: HeldMessage, outcome: str) -> None:
    metrics.DECISIONS.labels(held.kind, outcome).inc()
    waited = (datetime.now(UTC) - held.held_at).total_seconds()
    metrics.DECISION_SECONDS.labels(held.kind).observe(max(waited, 0.0))


def _check(held: HeldMessage | None, grant: Grant, decision: str) -> Outcome | None:
    """Why this link may not decide this (None: it may)."""
    gone = Outcome(
        "decided",
        "このメールはすでに処理済みです（送信・破棄・担当者確認のいずれか）。何も変更していません。",
        "This message has already been decided; nothing was changed.",
    )
    if held is None or held.held_at.isoformat() != grant.held_at or held.kind not in DECISIONS:
        return gone
    allowed = DECISIONS[held.kind]
    if grant.role == "sender":
        mine = held.kind in ("confirm", "delay") and _same(held.sender, grant.address)
    else:
        mine = held.kind == "approve" and any(_same(a, grant.address) for a in held.waiting_for)
    if not mine:
        return Outcome("invalid", "このリンクは無効です。", "This link is not valid.")
    if decision not in allowed or (decision == "send_meant" and not held.meant):
        return Outcome("refused", "その操作はできません。", "That choice is not offered here.")
    return None


def _same(a: str, b: str) -> bool:
    return a.strip().strip("<>").lower() == b.strip().strip("<>").lower()


def describe_link(settings: Settings, token: str) -> tuple[HeldMessage | None, Grant | None, str]:
    """For the GET page: the hold a link names (or None) and why not."""
    try:
        grant = verify(notify_key(settings), token)
    except TokenError as exc:
        return None, None, exc.reason
    held = open_quarantine(settings).get(grant.held_id)
    refusal = _check(held, grant, DECISIONS.get(held.kind, ("",))[0] if held else "")
    if refusal is not None:
        return None, grant, refusal.state
    return held, grant, ""


# ---------------------------------------------------------------------------
# Timers


@dataclass(frozen=True, slots=True)
class DueResult:
    notices_resent: int = 0
    delivered: int = 0
    discarded: int = 0
    handed_over: int = 0
    reminded: int = 0
    escalated: int = 0
    failed: int = 0


def run_due(settings: Settings, now: datetime | None = None) -> DueResult:
    """Act on every hold whose time is up; safe to run in many processes at once."""
    now = now or datetime.now(UTC)
    queue = open_quarantine(settings)
    counts = dict.fromkeys(DueResult.__dataclass_fields__, 0)
    for listed in queue.list():
        if listed.kind not in DECISIONS or not _due(settings, listed, now):
            continue
        try:
            with queue.claim(listed.id):
                held = queue.get(listed.id)
                if held is None or held.held_at != listed.held_at or not _due(settings, held, now):
                    # decided meanwhile, or another pass acted on it since it was listed
                    # (resent its notice: a delay is not over because of that)
                    continue
                what = _on_due(settings, queue, held, now)
                if what in ("delivered", "discarded", "handed_over"):
                    _count(held, "delay_over" if held.kind == "delay" else f"timeout_{what}")
            if what:
                counts[what] += 1
        except ClaimedElsewhere:
            continue  # a click or another process has it: it decides
        except Exception as exc:
            counts["failed"] += 1
            log.error("timer on held %s failed: %s", listed.id, type(exc).__name__)
    return DueResult(**counts)


def _due(settings: Settings, held: HeldMessage, now: datetime) -> bool:
    if held.notice_failed:
        return True
    if held.kind in ("delay", "confirm"):
        return held.expires_at is not None and now >= held.expires_at
    a = settings.approval
    waited = now - held.held_at
    if (
        a.remind_after
        and not held.reminded
        and waited >= timedelta(seconds=parse_duration(a.remind_after))
    ):
        return True
    return bool(
        a.escalate_after
        and not held.escalated
        and waited >= timedelta(seconds=parse_duration(a.escalate_after))
    )


def _on_due(settings: Settings, queue: Quarantine, held: HeldMessage, now: datetime) -> str:
    waited = int((now - held.held_at).total_seconds())
    expired = held.expires_at is not None and now >= held.expires_at
    if held.notice_failed and not (expired and held.kind == "delay"):
        if expired:
            # Nobody was asked: hand it to the staff instead of applying the timeout.
            _record(settings, "timeout", held, "timer",
                    "the notice never reached the sender: handed to the security staff",
                    waited_seconds=waited)  # fmt: skip
            queue.update(replace(held, kind="hold", expires_at=None, waiting_for=()))
            return "handed_over"
        # again to those who decide (the sender's word that an approval waits is
        # not what the hold depends on)
        notices = [n for n in notices_for(settings, held) if n.to in held.waiting_for]
        if len(_send_now(settings, notices)) == len(notices):
            queue.update(replace(held, notice_failed=False))
            return "notices_resent"
        return ""
    extra: dict[str, str | int | float | bool | None] = {
        "kind": held.kind,
        "via": "timer",
        "waited_seconds": waited,
    }
    if held.kind == "delay":
        _release(
            settings,
            queue,
            held.id,
            "timer",
            "delay over: sent",
            extra={**extra, "decision": "delay_over"},
        )
        return "delivered"
    if held.kind == "confirm":
        action = held.on_timeout or "discard"
        extra["decision"] = f"timeout_{action}"
        facts = facts_of(held)
        if action == "deliver":
            _release(settings, queue, held.id, "timer", "no answer in time: sent", extra=extra)
            _send_now(settings, [outcome_notice(facts, "sent", "", "", settings.notify.from_)])
            return "delivered"
        if action == "hold":
            _record(
                settings,
                "timeout",
                held,
                "timer",
                "no answer in time: handed to the security staff",
                waited_seconds=waited,
            )
            queue.update(replace(held, kind="hold", expires_at=None, waiting_for=()))
            _send_now(
                settings, [outcome_notice(facts, "handed over", "", "", settings.notify.from_)]
            )
            return "handed_over"
        _discard(settings, queue, held.id, "timer", "no answer in time: discarded", extra=extra)
        _send_now(settings, [outcome_notice(facts, "discarded", "", "", settings.notify.from_)])
        return "discarded"
    # approve: remind once, then escalate once
    a = settings.approval
    waited_td = now - held.held_at
    if (
        a.escalate_after
        and not held.escalated
        and waited_td >= timedelta(seconds=parse_duration(a.escalate_after))
    ):
        added = tuple(x for x in a.escalate_to if x not in held.waiting_for)
        updated = replace(held, waiting_for=held.waiting_for + added, escalated=True, reminded=True)
        _record(
            settings,
            "escalate",
            held,
            "timer",
            "no decision in time: asked " + ", ".join(added),
            waited_seconds=waited,
        )
        queue.update(updated)
        _send_now(
            settings,
            notices_for(
                settings, replace(updated, waiting_for=added), escalated_from=held.waiting_for
            ),
        )
        return "escalated"
    _record(
        settings,
        "remind",
        held,
        "timer",
        "no decision yet: approvers reminded",
        waited_seconds=waited,
    )
    queue.update(replace(held, reminded=True))
    _send_now(settings, notices_for(settings, held, reminder=True))
    return "reminded"
