"""Retention: both periods in one run — the send log's and the hold queue's.

It sits above ``sendlog`` and ``holdqueue`` (expiring a held copy records it in
the send log, so the hold queue builds on the send log, and the send log must
not reach back into it).  The gateway's daily timer (``smtp/app.py``) calls
``purge_expired``; ``dlp log purge`` runs the same steps with its own output.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dlp.config import Settings
from dlp.holdqueue.decisions import expire_held
from dlp.sendlog import guard_purge, head_key, open_store, record_head
from dlp.sendlog.heads import HeadReport
from dlp.sendlog.store import PurgeResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionResult:
    sendlog: PurgeResult
    quarantine_expired: int | None
    """Held messages deleted; None when expiry was skipped or failed."""
    quarantine_error: str = ""
    head: HeadReport | None = None
    """The chain head logged (and signed) after the run."""
    refused: str = ""
    """Why the send log was not purged (signed heads contradict the chain)."""


def expire_quarantine(settings: Settings, now: datetime) -> tuple[int | None, str]:
    """Expire held mail, each message recorded in the send log first
    (``dlp.holdqueue.decisions.expire_held``): how many went, and why it stopped ('' if it
    did not)."""
    try:
        res = expire_held(settings, now)
    except Exception as exc:  # its failure must not stop the send-log purge
        log.warning("quarantine expiry failed: %s", type(exc).__name__)
        return None, f"{type(exc).__name__}: {exc}"
    return res.expired, res.error


def purge_expired(
    settings: Settings,
    now: datetime | None = None,
    *,
    actor: str = "retention",
    include_quarantine: bool = True,
) -> RetentionResult:
    """Apply both retention periods: send-log entries older than
    ``[sendlog] retention_days`` and held messages older than
    ``[quarantine] retention_days``; then log the chain head (signed with
    ``[sendlog] head_key_file`` when set).  What the gateway's daily timer calls."""
    now = now or datetime.now(UTC)
    key, key_error = head_key(settings)
    if key_error:
        log.error(
            "sendlog head key unusable: %s",
            key_error,
            extra={"dlp": {"event": "sendlog head key", "problem": key_error}},
        )
    with open_store(settings) as store:
        refused = guard_purge(store, key, settings, now)
        if refused:
            log.error("%s", refused, extra={"dlp": {"event": "retention refused"}})
            cutoff = now - timedelta(days=settings.sendlog.retention_days)
            res = PurgeResult(0, cutoff)
        else:
            res = store.purge(settings.sendlog.retention_days, now=now, actor=actor)
        held, err = expire_quarantine(settings, now) if include_quarantine else (None, "")
        head = record_head(
            settings,
            store,
            source="retention",
            now=now,
            key=key,
            key_error=key_error,
            purged=res,
        )
    return RetentionResult(res, held, err, head, refused)
