"""Decisions on held mail that send nothing: discard, and expiry at retention.

Both go the same way: claim the held copy, record the decision in the send log
(with the message's audit key), then delete it — so the log never misses a copy
that went.  Releasing *sends* the message, so it lives where sending does
(``dlp.smtp.release``); this module needs only the two stores.

Expiry (``expire_held``, run by retention) is recorded as ``expire`` (who:
``retention``; why: the retention period, or a hold that was never confirmed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from dlp.config import Settings
from dlp.holdqueue.store import (
    ClaimedElsewhere,
    Quarantine,
    QuarantineError,
    QuarantineStorageError,
    open_quarantine,
)
from dlp.sendlog import open_store, record_for_event

log = logging.getLogger(__name__)


class ReleaseError(Exception):
    """A release or discard did not happen (or a release happened without its
    send-log record); the text says which and what to do.  ``temporary``: the next
    hop did not answer or answered 4xx, so the same release can succeed later."""

    def __init__(self, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary


class ReleaseBusy(ReleaseError):
    """Another reviewer, a link or a timer has the message right now: theirs is the
    decision, and this one did nothing (not a failure to report as one)."""


def discard(settings: Settings, held_id: str, actor: str, comment: str) -> None:
    """Delete a held message for good; the deletion is recorded first."""
    queue = open_quarantine(settings)
    try:
        with queue.claim(held_id):
            _discard(settings, queue, held_id, actor, comment)
    except QuarantineStorageError:
        raise  # the queue itself is broken, not this discard: the administrator's to fix
    except ClaimedElsewhere as exc:
        raise ReleaseBusy(str(exc)) from None
    except QuarantineError as exc:
        raise ReleaseError(str(exc)) from None


def _discard(
    settings: Settings,
    queue: Quarantine,
    held_id: str,
    actor: str,
    comment: str,
    *,
    extra: dict[str, str | int | float | bool | None] | None = None,
) -> None:
    """Under the caller's claim; ``extra``: more send-log detail (who decided, how)."""
    held = queue.get(held_id)
    if held is None:
        raise ReleaseError(f"no held message {held_id}")
    with open_store(settings) as store:
        store.append(
            record_for_event(
                event="discard",
                actor=actor,
                comment=comment,
                audit_key=held.audit_key,
                detail={
                    "held_id": held.id,
                    "rule": held.rule,
                    "recipients": len(held.recipients),
                    **(extra or {}),
                },
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
