"""Release a held message (``dlp quarantine release``, the review console).

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

It lives here, not in ``dlp.holdqueue``, because releasing is sending: it
needs the next hop (``relay.py``) and the header scrub (``headers.py``), and
the hold queue is a store that SMTP builds on, not the other way round.
Discard and expiry send nothing: ``dlp.holdqueue.decisions``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import replace

from dlp.config import Settings
from dlp.holdqueue.decisions import ReleaseBusy, ReleaseError
from dlp.holdqueue.store import (
    ClaimedElsewhere,
    HeldMessage,
    Quarantine,
    QuarantineError,
    QuarantineStorageError,
    open_quarantine,
)
from dlp.sendlog import open_store, record_for_event
from dlp.smtp.client import Reply
from dlp.smtp.headers import ALWAYS, strip_fields
from dlp.smtp.relay import MailParams, NextHop, RcptParams

log = logging.getLogger(__name__)


def release(settings: Settings, held_id: str, actor: str, comment: str) -> str:
    """Deliver a held message; returns the next hop's answer."""
    queue = open_quarantine(settings)
    try:
        with queue.claim(held_id):
            return _release(settings, queue, held_id, actor, comment)
    except QuarantineStorageError:
        raise  # the queue itself is broken, not this release: the administrator's to fix
    except ClaimedElsewhere as exc:
        raise ReleaseBusy(str(exc)) from None
    except QuarantineError as exc:
        raise ReleaseError(str(exc)) from None


def _release(
    settings: Settings,
    queue: Quarantine,
    held_id: str,
    actor: str,
    comment: str,
    *,
    recipients: tuple[str, ...] | None = None,
    extra: dict[str, str | int | float | bool | None] | None = None,
) -> str:
    """Under the caller's claim.  ``recipients``: send to these instead (the
    addresses a sender meant, issue 13); ``extra``: more send-log detail."""
    try:
        held = queue.get(held_id)
        if held is None:
            raise ReleaseError(f"no held message {held_id}")
        raw = queue.read(held_id)
    except QuarantineStorageError:
        raise
    except QuarantineError as exc:
        raise ReleaseError(str(exc)) from None
    if recipients is not None:
        held = replace(held, recipients=recipients)
    reply, refused = asyncio.run(_send(settings, held, raw))
    detail: dict[str, str | int | float | bool | None] = {
        "held_id": held.id,
        "rule": held.rule,
        "recipients": len(held.recipients) - len(refused),
        "refused": ", ".join(refused),
        "next_hop_reply": reply,
        **(extra or {}),
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


async def _send(settings: Settings, held: HeldMessage, raw: bytes) -> tuple[str, list[str]]:
    hop = NextHop(settings.smtp, settings.smtp.hostname or socket.gethostname())

    def not_sent(what: str, reply: Reply) -> ReleaseError:
        # The next hop named, and whether it answered at all: the gateway's own
        # "451 4.4.1 next hop unavailable" read as if the next hop had said it.
        where = f"the next hop {settings.smtp.next_hop}"
        said = f"{where} {hop.failure}" if hop.failure else f"{where} {what}: {reply.line}"
        return ReleaseError(
            f"not released: {said}; the message stays held",
            temporary=bool(hop.failure) or reply.code < 500,
        )

    try:
        params = _mail_params(held.mail_options)
        reply = await hop.begin(held.sender, params, {"IDENT": held.audit_key})
        if not reply.ok:
            raise not_sent(f"refused the sender <{held.sender}>", reply)
        accepted, refused = [], []
        for rcpt in held.recipients:
            r = await hop.recipient(rcpt, RcptParams())
            if r.ok:
                accepted.append(rcpt)
            elif r.code >= 500 and not hop.failure:
                refused.append(f"{rcpt} ({r.code})")
            else:
                raise not_sent(f"deferred {rcpt}", r)
        if not accepted:
            raise ReleaseError(
                f"not released: the next hop {settings.smtp.next_hop} refused every recipient: "
                + ", ".join(refused)
                + "; the message stays held"
            )
        # As for mail relayed at once: no sender-written verdict fields leave (headers.py).
        prefixes = (ALWAYS, settings.policy.tag_header_prefix)
        reply = await hop.data(strip_fields(raw, prefixes).content)
        if not reply.ok:
            raise not_sent("did not accept the message", reply)
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
