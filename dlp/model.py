"""Shared value types passed between the layers.

Everything here is a frozen dataclass.  None of these types ever holds a raw
My Number: findings carry a fully masked display, counts and a location
(the filter keeps no My Numbers).  The detector's internal match type, which does hold the
digits for the length of one scan, lives in ``dlp.detect.mynumber`` and never
leaves the scanning process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Confidence(StrEnum):
    """How sure a detector is.  Ordered: LOW < MEDIUM < HIGH."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _CONFIDENCE_RANK[self]

    def at_least(self, other: Confidence) -> bool:
        return self.rank >= other.rank


_CONFIDENCE_RANK = {Confidence.LOW: 0, Confidence.MEDIUM: 1, Confidence.HIGH: 2}


class Action(StrEnum):
    """What the gateway does with a message: the verdict names in policy rules, the send
    log, the console and the JSON output."""

    DELIVER = "deliver"
    TAG = "tag"
    HOLD = "hold"
    CONFIRM = "confirm"
    """Held; the envelope sender is told why and decides (send / discard) by one click."""
    DELAY = "delay"
    """Held for a while the sender can end (send now / cancel); then delivered by itself."""
    APPROVE = "approve"
    """Held; an approver for this sender decides (approve / reject)."""
    REJECT = "reject"
    TEMPFAIL = "tempfail"

    @property
    def sender_in_loop(self) -> bool:
        """A hold that someone other than the security staff decides (issue 13)."""
        return self in (Action.CONFIRM, Action.DELAY, Action.APPROVE)


class AttachmentStatus(StrEnum):
    """Why an attachment was or was not read.  Policy acts on these."""

    SCANNED = "scanned"
    ENCRYPTED = "encrypted"
    UNSUPPORTED = "unsupported"
    IMAGE = "image"
    TOO_LARGE = "too_large"
    TOO_DEEP = "too_deep"
    TIMEOUT = "timeout"
    ERROR = "error"
    PARTIAL = "partial"
    """Read in part: some of its content (a sheet, a page, archive members past
    the budget) could not be read, so what was read cannot vouch for it."""

    @property
    def unscannable(self) -> bool:
        return self is not AttachmentStatus.SCANNED

    @property
    def left_unread(self) -> bool:
        """We tried and could not read all of it (a budget, a parser error, part
        of the file).  Not encrypted (its own rule and reason), image (no OCR:
        read by nobody) or unsupported (an unknown binary format), which policy
        names separately."""
        return self in _LEFT_UNREAD


_LEFT_UNREAD = frozenset(
    {
        AttachmentStatus.TOO_LARGE,
        AttachmentStatus.TOO_DEEP,
        AttachmentStatus.TIMEOUT,
        AttachmentStatus.ERROR,
        AttachmentStatus.PARTIAL,
    }
)


class RecipientClass(StrEnum):
    """Where a recipient's domain sits.  ``freemail`` (issue 14) is a personal
    mailbox at a free-mail or mobile-carrier domain (gmail.com, docomo.ne.jp …):
    outside the organisation like ``external``, and a kind of it — a rule, filter
    or count that names ``external`` covers ``freemail`` too (``covers``), so the
    rules written before the class existed still hold My Numbers sent to
    gmail.com.  A lookalike of a free-mail domain (gmial.com) stays ``lookalike``."""

    OWN = "own"
    PARTNER = "partner"
    EXTERNAL = "external"
    LOOKALIKE = "lookalike"
    FREEMAIL = "freemail"

    def covers(self) -> frozenset[RecipientClass]:
        """The classes a rule, filter or count naming this class matches."""
        return _COVERS.get(self, frozenset({self}))

    @property
    def outside(self) -> bool:
        """Outside the organisation and its partners."""
        return self in _OUTSIDE_CLASSES


_COVERS = {
    RecipientClass.EXTERNAL: frozenset({RecipientClass.EXTERNAL, RecipientClass.FREEMAIL}),
}
_OUTSIDE_CLASSES = frozenset(
    {RecipientClass.EXTERNAL, RecipientClass.LOOKALIKE, RecipientClass.FREEMAIL}
)


def class_matches(klass: str, wanted: Iterable[str]) -> bool:
    """``klass`` (a recipient's class) is named by ``wanted``, directly or through
    a covering class (``external`` covers ``freemail``)."""
    return any(klass in RecipientClass(w).covers() for w in wanted)


@dataclass(frozen=True, slots=True)
class TextChunk:
    """A piece of readable text handed to the detectors.

    ``location`` names where it came from in words a reviewer understands, e.g.
    ``body`` , ``header:Subject``, ``attachment:名簿.xlsx!Sheet1!C`` or
    ``attachment:a.zip/b.csv``.  ``field_label`` is the heading of the table
    column or form field the text sits under (a spreadsheet column header), so
    a column headed 個人番号 raises every number in it to high confidence.
    """

    text: str
    location: str
    field_label: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected item.  ``masked`` is fully masked (e.g. ``****-****-****``)."""

    detector: str
    confidence: Confidence
    location: str
    masked: str
    offset: int = 0
    reason: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "detector": self.detector,
            "confidence": self.confidence.value,
            "location": self.location,
            "masked": self.masked,
            "offset": self.offset,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """A file found in the message (or inside an archive in it)."""

    filename: str
    content_type: str
    size: int
    sha256: str
    status: AttachmentStatus
    location: str = ""
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "status": self.status.value,
            "location": self.location,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Summary:
    """One detector's counts for a message.  ``distinct`` and ``by_confidence``
    count distinct values (numbers; persons for a roster); a value seen at
    several confidences counts once, at its highest."""

    total: int = 0
    distinct: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0

    def distinct_at_least(self, confidence: Confidence) -> int:
        if confidence is Confidence.HIGH:
            return self.high
        if confidence is Confidence.MEDIUM:
            return self.high + self.medium
        return self.high + self.medium + self.low

    def to_json(self) -> dict[str, object]:
        return {
            "total": self.total,
            "distinct": self.distinct,
            "by_confidence": {"high": self.high, "medium": self.medium, "low": self.low},
        }


MyNumberSummary = Summary
"""The name from before there were several detectors."""

MYNUMBER = "mynumber"
"""The My Number detector's name: in findings, ``summary.<name>`` and policy rules."""

REPORTABLE_PERSONS = 1000
"""個人情報保護法施行規則 第7条第4号: a leak of more than 1,000 persons' data must be reported."""

REPORTABLE_DISTINCT_NUMBERS = 100
"""番号法 規則 第2条第4号: a leak of more than 100 people's numbers must be reported."""


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Everything the scan of one message learned, minus the numbers themselves."""

    source: str
    findings: tuple[Finding, ...] = ()
    summaries: Mapping[str, Summary] = field(default_factory=dict)
    """Counts per enabled detector, by detector name (``summary.<name>`` in JSON);
    every enabled detector has an entry, zero counts included."""
    attachments: tuple[AttachmentInfo, ...] = ()
    defects: tuple[str, ...] = ()
    message_id: str = ""
    subject: str = ""
    header_from: str = ""
    size: int = 0
    elapsed_ms: float = 0.0
    error: str = ""
    """Non-empty when the scan itself failed or ran out of time (then the
    report is incomplete and policy must not treat the message as clean)."""
    unread: tuple[str, ...] = ()
    """What of the message itself was not read, or not read in only one way
    (parser gave up, part budget reached, ambiguous MIME structure).  Unlike a
    defect, policy acts on it (rule condition ``incomplete``)."""
    items: tuple[str, ...] = ()
    """Items of personal data beside the findings, named from column headers
    (氏名, 住所, 生年月日 …): fixed names, never the header's own text."""

    @property
    def incomplete(self) -> bool:
        """Something was left unread: the report cannot vouch that the message is clean."""
        return bool(self.error or self.unread) or any(
            a.status.left_unread for a in self.attachments
        )

    @property
    def mynumber(self) -> Summary:
        """The My Number detector's counts (zero when it is not enabled)."""
        return self.summary(MYNUMBER)

    def summary(self, detector: str) -> Summary:
        return self.summaries.get(detector) or _EMPTY_SUMMARY

    @property
    def reportable_scale(self) -> bool:
        """A leak of this message would have to be reported: more than 100 people's My
        Numbers, or a roster of more than 1,000 persons (個人情報保護法施行規則 第7条第4号)."""
        return (
            self.mynumber.distinct > REPORTABLE_DISTINCT_NUMBERS
            or self.summary("roster").distinct > REPORTABLE_PERSONS
        )

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "message_id": self.message_id,
            "subject": self.subject,
            "from": self.header_from,
            "size": self.size,
            "findings": [f.to_json() for f in self.findings],
            "summary": {
                MYNUMBER: self.mynumber.to_json(),
                **{k: v.to_json() for k, v in self.summaries.items()},
            },
            "attachments": [a.to_json() for a in self.attachments],
            "defects": list(self.defects),
            "elapsed_ms": round(self.elapsed_ms, 3),
            "error": self.error,
            "unread": list(self.unread),
            "incomplete": self.incomplete,
            "items": list(self.items),
        }


_EMPTY_SUMMARY = Summary()


@dataclass(frozen=True, slots=True)
class DomainVerdict:
    """Result of the lookalike check for one recipient domain."""

    domain: str
    verdict: str  # "trusted" | "external" | "lookalike"
    resembles: str | None = None
    technique: str | None = None
    distance: int | None = None
    reason: str = ""
    explanation: str = ""
    """What differs, for a person: "two letters swapped (ia for ai) (gmial.com ↔ gmail.com)"."""
    explanation_ja: str = ""
    freemail: bool = False
    """An ``external`` domain that is a personal-mailbox service (``dlp.freemail``)."""

    def to_json(self) -> dict[str, object]:
        return {
            "domain": self.domain,
            "verdict": self.verdict,
            "resembles": self.resembles,
            "technique": self.technique,
            "distance": self.distance,
            "reason": self.reason,
            "explanation": self.explanation,
            "freemail": self.freemail,
        }


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    domain: str
    klass: RecipientClass
    resembles: str | None = None
    technique: str | None = None
    mynumber_entitled: bool = False
    """A partner listed in the allowlist as entitled to receive My Numbers."""
    explanation: str = ""
    """For a lookalike: what differs from the domain it resembles (en)."""
    explanation_ja: str = ""
    own_address_likely: bool = False
    """A free-mail address that resembles the sender's own name or address: probably
    the sender's private mailbox (issue 14; ``dlp.ownaddress``)."""


@dataclass(frozen=True, slots=True)
class HoldTerms:
    """How long a confirm / delay hold waits and what happens then (from the rule)."""

    wait_seconds: float = 0.0
    """delay: when it is delivered by itself; confirm: when ``on_timeout`` applies;
    approve: 0 (waits for an approver until retention)."""
    on_timeout: str = ""
    """confirm only: discard | deliver | hold."""
    notice_ja: str = ""
    notice_en: str = ""
    """What was found and where, in plain words (the rule's reason texts): the notice quotes them."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What policy decided, and what to tell the upstream MTA."""

    action: Action
    rule: str
    reasons: tuple[str, ...] = ()
    smtp_code: int = 250
    smtp_message: str = ""
    terms: HoldTerms | None = None
    """For confirm / delay / approve: the terms of the hold."""

    def to_json(self) -> dict[str, object]:
        return {
            "action": self.action.value,
            "rule": self.rule,
            "reasons": list(self.reasons),
            "smtp_code": self.smtp_code,
            "smtp_message": self.smtp_message,
        }
