"""The attachment send log: every attachment send, finding and non-deliver
verdict, hash-chained so an audit can trust it (issue 6).

The gateway does::

    store = open_store(settings)               # once per process
    if needs_record(report, verdict):
        store.append(record_for_message(...))  # SendLogError -> tempfail

and the daily retention timer calls ``purge_expired(settings)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from dlp.config import Settings
from dlp.sendlog.chain import Checkpoint, VerifyResult
from dlp.sendlog.record import (
    EVENTS,
    AttachmentEntry,
    FindingSummary,
    RecipientEntry,
    SendRecord,
    needs_record,
    record_for_event,
    record_for_message,
    record_for_outcome,
)
from dlp.sendlog.store import (
    LogFilter,
    PurgeResult,
    SendLogError,
    SendLogStore,
    StatsRow,
    StoredEntry,
)

log = logging.getLogger(__name__)


def open_store(settings: Settings) -> SendLogStore:
    """The store ``[sendlog]`` configures, schema upgraded; raises SendLogError."""
    cfg = settings.sendlog
    if cfg.backend == "postgresql":
        from dlp.sendlog.pg_store import PostgresStore

        return PostgresStore(cfg.postgresql_dsn)
    from dlp.sendlog.sqlite_store import SqliteStore

    return SqliteStore(settings.sqlite_path)


@dataclass(frozen=True, slots=True)
class RetentionResult:
    sendlog: PurgeResult
    quarantine_expired: int | None
    """Held messages deleted; None when expiry was skipped or failed."""
    quarantine_error: str = ""


def expire_quarantine(settings: Settings, now: datetime) -> tuple[int | None, str]:
    """Expire held mail, each message recorded in the send log first
    (``dlp.smtp.release.expire_held``): how many went, and why it stopped ('' if it did not)."""
    # Imported here: smtp/ builds on sendlog/, not the other way round; only
    # retention reaches into the hold queue.
    from dlp.smtp.release import expire_held

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
    ``[quarantine] retention_days``.  What the gateway's daily timer calls."""
    now = now or datetime.now(UTC)
    with open_store(settings) as store:
        res = store.purge(settings.sendlog.retention_days, now=now, actor=actor)
    held, err = expire_quarantine(settings, now) if include_quarantine else (None, "")
    return RetentionResult(res, held, err)


__all__ = [
    "EVENTS",
    "AttachmentEntry",
    "Checkpoint",
    "FindingSummary",
    "LogFilter",
    "PurgeResult",
    "RecipientEntry",
    "RetentionResult",
    "SendLogError",
    "SendLogStore",
    "SendRecord",
    "StatsRow",
    "StoredEntry",
    "VerifyResult",
    "expire_quarantine",
    "needs_record",
    "open_store",
    "purge_expired",
    "record_for_event",
    "record_for_message",
    "record_for_outcome",
]
