"""What one send-log entry holds, and how it is built from a scan.

A ``SendRecord`` is the reviewer's view of one message (or one reviewer
action such as a release).  It is built only from counts, classes, file
metadata and the verdict: findings are summarised per detector and
confidence (how many, how many distinct numbers, in how many places), never
their masked displays or offsets, and free text goes through
``redact.scrub`` (the log is kept for years and must hold no My Number).

``to_json`` is the exact field set that is hashed into the chain and written
to JSON Lines exports; ``from_json`` reads it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dlp.model import (
    MYNUMBER,
    Action,
    Confidence,
    Recipient,
    RecipientClass,
    ScanReport,
    Verdict,
)
from dlp.sendlog.redact import is_digest, scrub

EVENT_MESSAGE = "message"
EVENTS = (
    EVENT_MESSAGE,
    "release",
    "discard",
    "expire",
    "delete",
    "allowlist_add",
    "allowlist_remove",
    "purge",
    "outcome",
    "timeout",
    "remind",
    "escalate",
    "incident_report",
    "decision",
)
"""``incident_report``: a report draft was made (who, for which entries; issue 14);
``expire``: a held message removed by retention (or an unconfirmed hold
removed); ``outcome``: the next hop's final answer for a message whose ``message``
entry had to be written before delivery (``next_hop_reply = "pending"``);
``remind`` / ``escalate``: approvers were mailed their link again, or more were asked; ``timeout``: a confirm hold nobody answered was handed to the staff (issue 13);
``decision``: a sender or approver decided to send, but the next hop did not take the
message then: the gateway sends it when it does (the ``release`` entry follows)."""

_OUTSIDE = frozenset(c.value for c in RecipientClass if c.outside)


@dataclass(frozen=True, slots=True)
class RecipientEntry:
    address: str
    domain: str
    klass: str
    """own | partner | external | freemail | lookalike"""
    resembles: str = ""
    own_address_likely: bool | None = None
    """Probably the sender's own private address (issue 14).  None in entries
    written before it was judged: they lack the key, so their chain hash holds."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "address": self.address,
            "domain": self.domain,
            "class": self.klass,
            "resembles": self.resembles,
        }
        if self.own_address_likely is not None:
            out["own_address_likely"] = self.own_address_likely
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RecipientEntry:
        own = d.get("own_address_likely")
        return cls(
            d["address"],
            d["domain"],
            d["class"],
            d.get("resembles", ""),
            None if own is None else bool(own),
        )


@dataclass(frozen=True, slots=True)
class AttachmentEntry:
    filename: str
    content_type: str
    size: int
    sha256: str
    status: str

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "status": self.status,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> AttachmentEntry:
        return cls(d["filename"], d["content_type"], int(d["size"]), d["sha256"], d["status"])


@dataclass(frozen=True, slots=True)
class FindingSummary:
    """Counts for one detector at one confidence.  ``distinct`` counts distinct
    values at this confidence (each at its highest; 0 in entries written before
    detectors other than My Number counted them)."""

    detector: str
    confidence: str
    count: int
    distinct: int = 0
    locations: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "confidence": self.confidence,
            "count": self.count,
            "distinct": self.distinct,
            "locations": self.locations,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FindingSummary:
        return cls(
            d["detector"],
            d["confidence"],
            int(d["count"]),
            int(d.get("distinct", 0)),
            int(d.get("locations", 0)),
        )


@dataclass(frozen=True)
class SendRecord:
    """One send-log entry.  ``time`` is timezone-aware UTC."""

    time: datetime
    event: str = EVENT_MESSAGE
    audit_key: str = ""
    message_id: str = ""
    client_address: str = ""
    sender: str = ""
    header_from: str = ""
    subject: str = ""
    recipients: tuple[RecipientEntry, ...] = ()
    attachments: tuple[AttachmentEntry, ...] = ()
    findings: tuple[FindingSummary, ...] = ()
    mynumber_total: int = 0
    mynumber_distinct: int = 0
    reportable_scale: bool = False
    """More than 100 distinct numbers (番号法) or a roster of more than 1,000 persons
    (個人情報保護法): a leak of it would have to be reported."""
    action: str = ""
    rule: str = ""
    reasons: tuple[str, ...] = ()
    next_hop_reply: str = ""
    scan_error: str = ""
    unread: tuple[str, ...] = ()
    """What the scan could not read (ScanReport.unread, masked)."""
    detectors: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """``{name: {"total", "distinct"}}`` for every detector but My Number (which has
    its own fields) that found something: the findings list is capped, these are not."""
    items: tuple[str, ...] = ()
    """Items of personal data beside the findings (ScanReport.items: fixed names)."""
    actor: str = ""
    comment: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    """Event specifics (e.g. a purge's checkpoint); JSON scalars only."""

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("SendRecord.time must be timezone-aware")
        if self.event not in EVENTS:
            raise ValueError(f"unknown send-log event {self.event!r}")

    @property
    def has_findings(self) -> bool:
        return bool(self.findings)

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2].lower() if "@" in self.sender else ""

    @property
    def to_outside(self) -> bool:
        """Any recipient outside the organisation and its partners."""
        return any(r.klass in _OUTSIDE for r in self.recipients)

    @property
    def to_freemail(self) -> bool:
        return any(r.klass == RecipientClass.FREEMAIL for r in self.recipients)

    @property
    def own_address_likely(self) -> bool:
        return any(r.own_address_likely for r in self.recipients)

    def to_json(self) -> dict[str, Any]:
        out = self._fields()
        if self.unread:
            # Only when present: entries written before the field existed keep
            # the exact field set their chain hash was computed over.
            out["unread"] = list(self.unread)
        if self.detectors:
            # Same: only when a detector other than My Number found something.
            out["detectors"] = {k: dict(v) for k, v in self.detectors.items()}
        if self.items:
            out["items"] = list(self.items)
        return out

    def _fields(self) -> dict[str, Any]:
        return {
            "time": format_time(self.time),
            "event": self.event,
            "audit_key": self.audit_key,
            "message_id": self.message_id,
            "client_address": self.client_address,
            "sender": self.sender,
            "header_from": self.header_from,
            "subject": self.subject,
            "recipients": [r.to_json() for r in self.recipients],
            "attachments": [a.to_json() for a in self.attachments],
            "findings": [f.to_json() for f in self.findings],
            "mynumber_total": self.mynumber_total,
            "mynumber_distinct": self.mynumber_distinct,
            "reportable_scale": self.reportable_scale,
            "verdict": {"action": self.action, "rule": self.rule, "reasons": list(self.reasons)},
            "next_hop_reply": self.next_hop_reply,
            "scan_error": self.scan_error,
            "actor": self.actor,
            "comment": self.comment,
            "detail": dict(self.detail),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SendRecord:
        verdict = d.get("verdict") or {}
        return cls(
            time=parse_time(d["time"]),
            event=d["event"],
            audit_key=d.get("audit_key", ""),
            message_id=d.get("message_id", ""),
            client_address=d.get("client_address", ""),
            sender=d.get("sender", ""),
            header_from=d.get("header_from", ""),
            subject=d.get("subject", ""),
            recipients=tuple(RecipientEntry.from_json(r) for r in d.get("recipients", ())),
            attachments=tuple(AttachmentEntry.from_json(a) for a in d.get("attachments", ())),
            findings=tuple(FindingSummary.from_json(f) for f in d.get("findings", ())),
            mynumber_total=int(d.get("mynumber_total", 0)),
            mynumber_distinct=int(d.get("mynumber_distinct", 0)),
            reportable_scale=bool(d.get("reportable_scale", False)),
            action=verdict.get("action", ""),
            rule=verdict.get("rule", ""),
            reasons=tuple(verdict.get("reasons", ())),
            next_hop_reply=d.get("next_hop_reply", ""),
            scan_error=d.get("scan_error", ""),
            unread=tuple(d.get("unread", ())),
            items=tuple(d.get("items", ())),
            detectors={
                str(k): {str(n): int(c) for n, c in v.items()}
                for k, v in (d.get("detectors") or {}).items()
            },
            actor=d.get("actor", ""),
            comment=d.get("comment", ""),
            detail=dict(d.get("detail") or {}),
        )


def format_time(t: datetime) -> str:
    """UTC, microseconds, ``Z``: sortable and the same on every store."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def needs_record(report: ScanReport, verdict: Verdict) -> bool:
    """Issue 6: every message with an attachment, a finding, or a verdict
    other than deliver is recorded — and every message the scan could not read
    in full, whatever the verdict (it may hold what the scan missed)."""
    return bool(
        report.attachments
        or report.findings
        or report.incomplete
        or verdict.action is not Action.DELIVER
    )


def summarise_findings(report: ScanReport) -> tuple[FindingSummary, ...]:
    """Counts per (detector, confidence): never a display, offset or location text."""
    groups: dict[tuple[str, str], tuple[int, set[str]]] = {}
    for f in report.findings:
        key = (f.detector, f.confidence.value)
        count, places = groups.get(key, (0, set()))
        places.add(f.location)
        groups[key] = (count + 1, places)
    out = []
    for (detector, conf), (count, places) in sorted(
        groups.items(), key=lambda kv: (kv[0][0], -Confidence(kv[0][1]).rank)
    ):
        # Distinct values per detector and confidence (each at its highest), from
        # the scanner's summary: the same shape for every detector.
        s = report.summary(detector)
        distinct = {"high": s.high, "medium": s.medium, "low": s.low}.get(conf, 0)
        out.append(FindingSummary(detector, conf, count, distinct, len(places)))
    return tuple(out)


def record_for_message(
    *,
    audit_key: str,
    client_address: str,
    sender: str,
    recipients: Sequence[Recipient],
    report: ScanReport,
    verdict: Verdict,
    next_hop_reply: str,
    when: datetime | None = None,
) -> SendRecord:
    """The entry for one message the gateway handled."""
    return SendRecord(
        time=(when or _now()).astimezone(UTC),
        event=EVENT_MESSAGE,
        audit_key=scrub(audit_key),
        message_id=scrub(report.message_id),
        client_address=client_address,
        sender=scrub(sender),
        header_from=scrub(report.header_from),
        subject=scrub(report.subject),
        recipients=tuple(
            RecipientEntry(
                scrub(r.address),
                scrub(r.domain.lower()),
                r.klass.value,
                r.resembles or "",
                r.own_address_likely,
            )
            for r in recipients
        ),
        attachments=tuple(
            AttachmentEntry(
                scrub(a.filename), scrub(a.content_type), a.size, a.sha256, a.status.value
            )
            for a in report.attachments
        ),
        findings=summarise_findings(report),
        mynumber_total=report.mynumber.total,
        mynumber_distinct=report.mynumber.distinct,
        reportable_scale=report.reportable_scale,
        action=verdict.action.value,
        rule=verdict.rule,
        reasons=tuple(scrub(r) for r in verdict.reasons),
        next_hop_reply=scrub(next_hop_reply),
        scan_error=scrub(report.error),
        unread=tuple(scrub(u) for u in report.unread),
        items=report.items,
        detectors={
            name: {"total": s.total, "distinct": s.distinct}
            for name, s in report.summaries.items()
            if name != MYNUMBER and s.total
        },
    )


def record_for_outcome(
    *, audit_key: str, entry_id: int, next_hop_reply: str, when: datetime | None = None
) -> SendRecord:
    """The next hop's answer for message entry ``entry_id``, recorded after
    delivery (the chain is append-only, so the first entry is not updated)."""
    return SendRecord(
        time=(when or _now()).astimezone(UTC),
        event="outcome",
        audit_key=scrub(audit_key),
        actor="gateway",
        next_hop_reply=scrub(next_hop_reply),
        detail={"entry": int(entry_id)},
    )


def record_for_event(
    *,
    event: str,
    actor: str,
    comment: str,
    audit_key: str = "",
    detail: Mapping[str, Any] | None = None,
    when: datetime | None = None,
) -> SendRecord:
    """The entry for a reviewer or maintenance action (release, discard, purge …)."""
    clean: dict[str, Any] = {}
    for k, v in (detail or {}).items():
        if v is not None and not isinstance(v, str | int | float | bool):
            raise ValueError(f"event detail {k!r} must be a JSON scalar")
        key = str(k)
        clean[key] = scrub(v) if isinstance(v, str) and not is_digest(key, v) else v
    return SendRecord(
        time=(when or _now()).astimezone(UTC),
        event=event,
        audit_key=scrub(audit_key),
        actor=scrub(actor),
        comment=scrub(comment),
        detail=clean,
    )
