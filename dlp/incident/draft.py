"""Draft a report from a send-log store, and record that it was drafted.

Shared by ``dlp incident report`` and the console page 報告書の下書き.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, tzinfo

from dlp.incident.report import IncidentReport, ReportError, build, related_ids
from dlp.sendlog.record import record_for_event
from dlp.sendlog.store import LogFilter, SendLogStore, StoredEntry

EVENT = "incident_report"


def draft(
    store: SendLogStore,
    entry_ids: Sequence[int],
    *,
    discovered: date | None,
    wrongful_purpose: bool,
    actor: str,
    fmt: str,
    tz: tzinfo | None = None,
    now: datetime | None = None,
) -> IncidentReport:
    """Build the report for ``entry_ids`` and append an ``incident_report`` entry
    (ReportError for an id that is missing or not a message)."""
    now = now or datetime.now(UTC)
    entries: list[StoredEntry] = []
    for i in dict.fromkeys(entry_ids):
        e = store.get(i)
        if e is None:
            raise ReportError(f"no send-log entry {i}")
        entries.append(e)
    related: dict[int, list[StoredEntry]] = {}
    for e in entries:
        if e.record.audit_key:
            found = store.query(LogFilter(audit_key=e.record.audit_key), limit=1000)
            related[e.id] = sorted(found, key=lambda x: x.id)
    report = build(
        entries,
        related,
        discovered=discovered or now.astimezone(tz).date(),
        wrongful_purpose=wrongful_purpose,
        drafted_by=actor,
        now=now,
        tz=tz,
    )
    store.append(
        record_for_event(
            event=EVENT,
            actor=actor,
            comment="",
            detail={
                "entries": related_ids(report),
                "format": fmt,
                "discovered": report.discovered.isoformat(),
            },
        )
    )
    return report
