"""The attachment send log: every attachment send, finding and non-deliver
verdict, hash-chained so an audit can trust it (issue 6).

The gateway does::

    store = open_store(settings)               # once per process
    if needs_record(report, verdict):
        store.append(record_for_message(...))  # SendLogError -> tempfail

and the daily retention timer calls ``purge_expired(settings)``, which also
logs the chain head and signs it (``heads.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

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


__all__ = [
    "EVENTS",
    "AttachmentEntry",
    "Checkpoint",
    "FindingSummary",
    "HeadReport",
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
    "guard_purge",
    "head_key",
    "needs_record",
    "open_store",
    "purge_expired",
    "record_for_event",
    "record_for_message",
    "record_for_outcome",
    "record_head",
]
