"""Release or discard a held message (``dlp quarantine``, the review console).

Release re-sends the held message, unchanged (but for incoming ``X-DLP-*``
fields, ``headers.py``), with its original envelope to
the next hop, records a ``release`` event in the send log and only then
removes it from the hold queue.  If the next hop is down or refuses, nothing is
removed and ``ReleaseError`` says why: the message stays held and the release
can be tried again.  Recipients the next hop refuses individually are named in
the returned text; the message goes to the others.

Order and its one gap: send, then record, then delete.  If the send log
cannot be written after the next hop accepted the message, the message has
left and is removed anyway (releasing it twice would deliver it twice), and
``ReleaseError`` says the record is missing, so the reviewer can note it.

Expiry (``expire_held``, run by retention) goes the same way as a discard:
claim, record an ``expire`` entry (who: ``retention``; why: the retention
period, or a hold that was never confirmed), then delete.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

from dlp.config import Settings
from dlp.smtp.headers import ALWAYS, strip_fields
from dlp.smtp.quarantine import (
    ClaimedElsewhere,
    HeldMessage,
    Quarantine,
    QuarantineError,
    open_quarantine,
)
from dlp.smtp.relay import MailParams, NextHop, RcptParams

log = logging.getLogger(__name__)


class ReleaseError(Exception):
    """The release did not happen (or happened without its send-log record)."""


def release(settings: Settings, held_id: str, actor: str, comment: str) -> str:
    """Deliver a held message; returns the next hop's answer."""
    queue = open_quarantine(settings)
    try:
        with queue.claim(held_id):
            return _release(settings, queue, held_id, actor, comment)
    except QuarantineError as exc:
        raise ReleaseError(str(exc)) from None


def _release(settings: Settings, queue: Quarantine, held_id: str, actor: str, comment: str) -> str:
    try:
        held = queue.get(held_id)
        if held is None:
            raise ReleaseError(f"no held message {held_id}")
        raw = queue.read(held_id)
    except QuarantineError as exc:
        raise ReleaseError(str(exc)) from None
    reply, refused = asyncio.run(_send(settings, held, raw))
    from dlp.sendlog import open_store, record_for_event

    detail: dict[str, str | int | float | bool | None] = {
        "held_id": held.id,
        "rule": held.rule,
        "recipients": len(held.recipients) - len(refused),
        "refused": ", ".join(refused),
        "next_hop_reply": reply,
    }
    try:
        with open_store(settings) as store:
            store.append(
                record_for_event(
                    event="release",
                    actor=actor,
                    comment=comment,
                    audit_key=held.audit_key,
                    detail=detail,
                )
            )
    except Exception as exc:
        _remove_delivered(queue, held_id, reply)
        raise ReleaseError(
            f"released and delivered ({reply}), but the send log could not be written: {exc}"
        ) from None
    _remove_delivered(queue, held_id, reply)
    if refused:
        return f"{reply} (refused by the next hop: {', '.join(refused)})"
    return reply


def _remove_delivered(queue: Quarantine, held_id: str, reply: str) -> None:
    """Remove a message the next hop has; if that fails, say it was delivered.

    A plain "cannot delete" would read as a failed release and invite a second,
    duplicate one."""
    try:
        queue.delete(held_id)
    except QuarantineError as exc:
        raise ReleaseError(
            f"released and delivered ({reply}), but still in the hold queue: delete it, "
            f"do not release it again ({exc})"
        ) from None


def discard(settings: Settings, held_id: str, actor: str, comment: str) -> None:
    """Delete a held message for good; the deletion is recorded first."""
    queue = open_quarantine(settings)
    try:
        with queue.claim(held_id):
            _discard(settings, queue, held_id, actor, comment)
    except QuarantineError as exc:
        raise ReleaseError(str(exc)) from None


def _discard(settings: Settings, queue: Quarantine, held_id: str, actor: str, comment: str) -> None:
    held = queue.get(held_id)
    if held is None:
        raise ReleaseError(f"no held message {held_id}")
    from dlp.sendlog import open_store, record_for_event

    with open_store(settings) as store:
        store.append(
            record_for_event(
                event="discard",
                actor=actor,
                comment=comment,
                audit_key=held.audit_key,
                detail={"held_id": held.id, "rule": held.rule, "recipients": len(held.recipients)},
            )
        )
    queue.delete(held_id)


@dataclass(frozen=True, slots=True)
class ExpiryResult:
    expired: int
    """Held copies recorded in the send log and deleted."""
    skipped: int = 0
    """Claimed by a release or discard right now: left to it (next run)."""
    error: str = ""
    """Why the rest was not done (the send log or the queue failed); '' when all went."""


EXPIRED_COMMENT = "retention period reached ([quarantine] retention_days = {days})"
UNCONFIRMED_COMMENT = (
    "hold never confirmed: the sending MTA was answered 451 and retries; "
    "this unconfirmed copy was never releasable"
)


def expire_held(
    settings: Settings, now: datetime | None = None, *, actor: str = "retention"
) -> ExpiryResult:
    """Remove held copies past retention, each recorded in the send log first.

    One ``expire`` entry per message, with the message's audit key (so
    ``dlp log show`` lists it under the message's own entry, as it does a
    release) and the held id.  If the send log cannot be written the copy
    stays and the error is returned: the next run tries again.  A copy
    claimed by a reviewer right now is skipped (the claim also keeps a
    release and an expiry of one message from both going ahead)."""
    from dlp.sendlog import open_store, record_for_event

    now = now or datetime.now(UTC)
    queue = open_quarantine(settings)
    candidates = queue.expired(now)
    if not candidates:
        return ExpiryResult(0)
    expired = skipped = 0
    days = settings.quarantine.retention_days
    try:
        with open_store(settings) as store:
            for listed in candidates:
                try:
                    with queue.claim(listed.id):
                        # Looked at again under the claim: a retry may have
                        # rewritten or committed it, a reviewer released it.
                        held = queue.get(listed.id, pending=True)
                        if held is None or held.held_at != listed.held_at:
                            continue
                        store.append(
                            record_for_event(
                                event="expire",
                                actor=actor,
                                comment=UNCONFIRMED_COMMENT
                                if held.pending
                                else EXPIRED_COMMENT.format(days=days),
                                audit_key=held.audit_key,
                                detail={
                                    "held_id": held.id,
                                    "rule": held.rule,
                                    "recipients": len(held.recipients),
                                    "held_at": held.held_at.astimezone(UTC).isoformat(),
                                    "state": "unconfirmed" if held.pending else "held",
                                    "retention_days": days,
                                },
                            )
                        )
                        queue.delete(held.id)
                        expired += 1
                except ClaimedElsewhere:
                    skipped += 1
    except Exception as exc:
        log.warning("held-mail expiry stopped after %d: %s", expired, type(exc).__name__)
        return ExpiryResult(expired, skipped, f"{type(exc).__name__}: {exc}")
    return ExpiryResult(expired, skipped)


async def _send(settings: Settings, held: HeldMessage, raw: bytes) -> tuple[str, list[str]]:
    hop = NextHop(settings.smtp, settings.smtp.hostname or socket.gethostname())
    try:
        params = _mail_params(held.mail_options)
        reply = await hop.begin(held.sender, params, {"IDENT": held.audit_key})
        if not reply.ok:
            raise ReleaseError(f"next hop refused the sender: {reply.line}")
        accepted, refused = [], []
        for rcpt in held.recipients:
            r = await hop.recipient(rcpt, RcptParams())
            if r.ok:
                accepted.append(rcpt)
            elif r.code >= 500:
                refused.append(f"{rcpt} ({r.code})")
            else:
                raise ReleaseError(f"next hop deferred {rcpt}: {r.line}; the message stays held")
        if not accepted:
            raise ReleaseError("next hop refused every recipient: " + ", ".join(refused))
        # As for mail relayed at once: no sender-written verdict fields leave (headers.py).
        prefixes = (ALWAYS, settings.policy.tag_header_prefix)
        reply = await hop.data(strip_fields(raw, prefixes).content)
        if not reply.ok:
            raise ReleaseError(f"next hop did not accept the message: {reply.line}; it stays held")
        return reply.line, refused
    finally:
        await hop.close()


def _mail_params(options: tuple[str, ...]) -> MailParams:
    body, smtputf8 = "", False
    for option in options:
        key, _, value = option.partition("=")
        if key.upper() == "BODY":
            body = value.upper()
        elif key.upper() == "SMTPUTF8":
            smtputf8 = True
    return MailParams(body=body, smtputf8=smtputf8)
