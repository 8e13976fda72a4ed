"""The attachment send log: every attachment send, finding and non-deliver
verdict, hash-chained so an audit can trust it (issue 6).

The gateway does::

    store = open_store(settings)               # once per process
    if needs_record(report, verdict):
        store.append(record_for_message(...))  # SendLogError -> tempfail

and the daily retention timer (``dlp.retention.purge_expired``) purges it,
then logs the chain head and signs it (``record_head``, ``heads.py``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from dlp.config import Settings
from dlp.sendlog.chain import Checkpoint, VerifyResult
from dlp.sendlog.heads import (
    HeadKey,
    HeadKeyError,
    HeadReport,
    HeadsFile,
    HeadsFileError,
    attest,
    check_signed_heads,
    load_key,
    log_head,
)
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


def head_key(settings: Settings) -> tuple[HeadKey | None, str]:
    """``[sendlog] head_key_file`` loaded: (key, '') or (None, why not); (None, '') when unset."""
    path = settings.head_key_path
    if path is None:
        return None, ""
    try:
        return load_key(path), ""
    except HeadKeyError as exc:
        return None, str(exc)


def guard_purge(store: SendLogStore, key: HeadKey | None, settings: Settings, now: datetime) -> str:
    """Why the send log must not be purged now ('' when it may): a signed head the
    chain contradicts is evidence of a rewrite, and purging could erase it."""
    if key is None:
        return ""
    try:
        check = check_signed_heads(
            store,
            key,
            HeadsFile(settings.heads_path),
            retention_days=settings.sendlog.retention_days,
            now=now,
        )
    except HeadsFileError as exc:
        # An unreadable heads file is the operator's to fix; it is no evidence, and
        # retention (not keeping data longer than allowed) still has to happen.
        log.error("%s", exc, extra={"dlp": {"event": "sendlog heads unreadable"}})
        return ""
    if check.ok:
        return ""
    return (
        f"refusing to purge: {check.message}. Investigate with `dlp log verify --key "
        f"{key.path}`; purging would erase this evidence"
    )


def record_head(
    settings: Settings,
    store: SendLogStore,
    *,
    source: str,
    now: datetime,
    key: HeadKey | None,
    key_error: str = "",
    purged: PurgeResult | None = None,
) -> HeadReport:
    """After a retention run or purge: take the chain head, check and sign it when a key
    is set, and write it to the application log (``heads.log_head``).  ``purged``: the
    purge just run after ``guard_purge`` agreed (the signed heads it removed are gone
    legitimately)."""
    try:
        report = attest(
            store,
            key=key,
            heads_file=HeadsFile(settings.heads_path),
            retention_days=settings.sendlog.retention_days,
            source=source,
            now=now,
            full=False,
            purged_now=purged.checkpoint if purged is not None and purged.purged else None,
        )
    except (SendLogError, HeadsFileError) as exc:
        report = HeadReport(None, None, None, error=str(exc))
    if key_error:
        report = replace(report, error=key_error)
    log_head(report)
    return report


__all__ = [
    "EVENTS",
    "AttachmentEntry",
    "Checkpoint",
    "FindingSummary",
    "HeadReport",
    "LogFilter",
    "PurgeResult",
    "RecipientEntry",
    "SendLogError",
    "SendLogStore",
    "SendRecord",
    "StatsRow",
    "StoredEntry",
    "VerifyResult",
    "guard_purge",
    "head_key",
    "needs_record",
    "open_store",
    "record_for_event",
    "record_for_message",
    "record_for_outcome",
    "record_head",
]
