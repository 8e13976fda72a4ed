"""Message or file bytes → ``ScanReport``, within the per-message budget.

Walks the MIME tree (``dlp.mime``), sends every attachment through the
extractor registry, recurses into archive members and forwarded messages
(depth-limited), records an ``AttachmentInfo`` for each file, and runs the
enabled detectors (``[scan] detectors``, ``dlp.detect.registry``) over every
text chunk; where two claim the same characters, ``registry.arbitrate`` keeps one.  Module-level functions only, so a
process pool can call them; they never raise for bad input (which must never take the gateway down).

Context beyond the ±window (docs/scanning.md): a detector's keyword in the
Subject marks every value it validates in the bodies and attachments as at
least ``medium``; one in a body, or in a file's own name (or an enclosing
archive's), does so for the attachments.  It never makes one ``high``: only a
nearby keyword or a column header does.

Nothing that leaves here carries digits of a number: findings are masked, and
subject, sender and file names are passed through ``redact``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import re
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.message import Message

from dlp.config import ScanSettings
from dlp.detect import (
    bank_account,
    credit_card,
    drivers_license,
    passport,
    pension_number,
    residence_card,
)
from dlp.detect.base import Detector, Match, PatternDetector, TableDetector, Words, summarize
from dlp.detect.items import items_of
from dlp.detect.mynumber import DETECTOR as MYNUMBER
from dlp.detect.mynumber import digit_reading, redact, scrub
from dlp.detect.numchars import DIGITS
from dlp.detect.registry import Gate, arbitrate, build_detectors, build_gate
from dlp.extract import aligned as aligned_text
from dlp.extract import registry
from dlp.extract.base import Budget, BudgetExceeded, Extracted
from dlp.extract.html import extract_html
from dlp.extract.text import extract_text
from dlp.mime import parse_message
from dlp.model import AttachmentInfo, AttachmentStatus, Finding, ScanReport, Summary, TextChunk

__all__ = ["MAX_FINDINGS", "SMALL_FILE_BYTES", "scan_file", "scan_message"]

MAX_FINDINGS = 1000
"""Findings listed per report; the summary still counts every number."""

SMALL_FILE_BYTES = 256
"""Files up to this size that hold exactly one identifier get no sha256 in the report."""

_NONE: frozenset[str] = frozenset()
_ZERO = Summary()

_GENERIC_TYPES = frozenset(
    {"", "application/octet-stream", "application/x-download", "binary/octet-stream"}
)


@dataclass
class _State:
    dets: tuple[Detector, ...]
    budget: Budget
    gate: Gate = field(default_factory=lambda: build_gate(()))
    tables: tuple[TableDetector, ...] = ()
    """Detectors that read whole tables (``roster``); they also sit in ``dets``
    (for their summary) but find nothing in a single chunk."""
    per_chunk: tuple[Detector, ...] = ()
    """``dets`` without the table detectors: what runs over every chunk."""
    need_digit: bool = False
    """Every detector in ``per_chunk`` finds only values holding a digit."""
    stems: Words | None = None
    """Every keyword stem (``PatternDetector.gate``) of the ``stem_gated`` detectors."""
    stem_gated: frozenset[str] = frozenset()
    """Detectors whose ``has_keyword`` is false unless one of their stems occurs."""
    matches: list[Match] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    attachments: list[AttachmentInfo] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    """Items of personal data (氏名, 住所 …) named by the column headers of
    files that held a finding (dlp.detect.items)."""
    error: str = ""

    def detect(self, chunk: TextChunk, hint: frozenset[str]) -> None:
        """Run every detector; ``hint``: the detectors whose keyword the subject,
        a body or a file name holds."""
        if not chunk.text:
            return
        chunk = as_read(chunk)
        if self.need_digit and not _ANY_DIGIT.search(chunk.text) and _no_numerals(chunk.text):
            return  # no digit in any script: no value any of them could count
        dets = self.per_chunk
        if len(dets) == 1:
            found: list[Match] = list(dets[0].find(chunk, context_hint=bool(hint)))
        else:
            found = []
            gated = self.gate.gated
            passed = self.gate.hits(chunk.text) if gated else gated
            label = chunk.field_label
            for d in dets:
                name = d.name
                if name in gated and not (
                    name in passed or name in hint or (label and d.has_keyword(label))
                ):
                    # No keyword in the text, the hint or the column header: what
                    # find() would conclude after searching a whole column for it.
                    continue
                found.extend(d.find(chunk, context_hint=name in hint))
            found = arbitrate(found)
        if not found:
            return
        location = redact(chunk.location)
        for m in found:
            self.matches.append(m)
            if len(self.findings) < MAX_FINDINGS:
                self.findings.append(m.to_finding(location))

    def detect_tables(self, chunks: Sequence[TextChunk]) -> None:
        """Give each table (columns with a header, from one sheet or file, or a
        table aligned with spaces in plain text) to the table detectors: a roster
        is a property of the rows, not of one column."""
        if not self.tables:
            return
        tables: dict[str, list[TextChunk]] = {}
        for c in chunks:
            if c.field_label and "!" in c.location:
                tables.setdefault(c.location.rsplit("!", 1)[0], []).append(c)
        aligned: dict[str, list[TextChunk]] = {}
        for c in chunks:
            if c.field_label or not aligned_text.might_hold_table(c.text):
                continue
            for columns in aligned_text.table_chunks(
                c.text, c.location, self._reads_header, _header_words(self.tables)
            ):
                if columns:
                    aligned[columns[0].location.rsplit("!", 1)[0]] = columns
        for where, columns in (*tables.items(), *aligned.items()):
            if len(columns) < 2:
                continue
            location = redact(where)
            for d in self.tables:
                found = d.find_table(columns)
                for m in found:
                    self.matches.append(m)
                    if len(self.findings) < MAX_FINDINGS:
                        self.findings.append(m.to_finding(location))
                if found and where in aligned:
                    # the items a leak report names; a file's own columns are
                    # counted by _scan_file, a body's aligned table only here
                    for item in items_of(c.field_label for c in columns if c.field_label):
                        if item not in self.items:
                            self.items.append(item)

    def _reads_header(self, labels: Sequence[str]) -> bool:
        return any(d.reads_header(labels) for d in self.tables)

    def keywords(self, text: str) -> frozenset[str]:
        """The detectors whose keyword ``text`` (a subject, a body, a file name) holds."""
        if not text:
            return _NONE
        text = composed(text)
        # One search for every stem at once: on Japanese text, which holds none,
        # it spares each detector its own pass per stem (a 20 KB body: 26 against
        # ~280 µs).  If any stem occurs, every detector asks as before.
        skip = self.stem_gated if self.stems and not self.stems.search(text) else _NONE
        return frozenset(d.name for d in self.dets if d.name not in skip and d.has_keyword(text))

    def summaries(self) -> dict[str, Summary]:
        """Every enabled detector's counts (zero counts included, in registry order)."""
        by: dict[str, list[Match]] = {}
        for m in self.matches:
            by.setdefault(m.detector, []).append(m)
        out = {d.name: summarize(by.pop(d.name)) if d.name in by else _ZERO for d in self.dets}
        out.update((name, summarize(ms)) for name, ms in by.items())
        return out

    def timeout(self, detail: str) -> None:
        if not self.error:
            self.error = f"timeout: {detail}"


@functools.lru_cache(maxsize=16)
def _header_words(tables: tuple[TableDetector, ...]) -> Words:
    """The header words of every table detector, as one set."""
    return Words(
        sorted({w for d in tables for w in d.header_words}, key=len, reverse=True), guard=False
    )


def _state(scan: ScanSettings) -> _State:
    c = _compiled(tuple(scan.detectors), scan.keyword_window, tuple(scan.extra_keywords))
    return _State(
        c.dets,
        Budget.from_settings(scan),
        c.gate,
        c.tables,
        c.per_chunk,
        c.need_digit,
        c.stems,
        c.stem_gated,
    )


@dataclass(frozen=True)
class _Compiled:
    dets: tuple[Detector, ...]
    gate: Gate
    tables: tuple[TableDetector, ...]
    per_chunk: tuple[Detector, ...]
    need_digit: bool
    stems: Words | None
    stem_gated: frozenset[str]


@functools.lru_cache(maxsize=16)
def _compiled(names: tuple[str, ...], window: int, extra: tuple[str, ...]) -> _Compiled:
    """The detectors of one setting, sorted once (a Protocol ``isinstance`` costs
    tens of microseconds: not something to do per message)."""
    dets = build_detectors(names, window, extra)
    tables = tuple(d for d in dets if isinstance(d, TableDetector))
    per_chunk = tuple(d for d in dets if not isinstance(d, TableDetector))
    need_digit = all(d.name in _VALUES_HOLD_DIGITS for d in per_chunk)
    # Only where has_keyword is PatternDetector's own, which asks for a stem first.
    stemmed = [
        d
        for d in dets
        if isinstance(d, PatternDetector)
        and d.gate
        and type(d).has_keyword is PatternDetector.has_keyword
    ]
    words = sorted({w for d in stemmed for w in d.gate}, key=len, reverse=True)
    stems = Words(words, guard=False) if words else None
    stem_gated = frozenset(d.name for d in stemmed)
    return _Compiled(dets, build_gate(names), tables, per_chunk, need_digit, stems, stem_gated)


_VALUES_HOLD_DIGITS = frozenset(
    {
        MYNUMBER,
        credit_card.NAME,
        drivers_license.NAME,
        residence_card.NAME,
        passport.NAME,
        pension_number.NAME,
        bank_account.NAME,
    }
)
"""Detectors whose every value holds at least one decimal digit (a number, or
letters and a number).  A chunk with no digit character in any script has nothing
for them: scanning it cost ~190 µs per 20 KB.  A detector not listed here (a
future one for names, say) keeps every chunk going through all of them;
tests/unit/test_scanner_shortcuts.py checks the claim for each one listed."""


_KANA_MARKS = re.compile("[\u3099-\u309c]")
_SPACING_MARKS = str.maketrans({"\u309b": "\u3099", "\u309c": "\u309a"})
_LABEL_BREAK = re.compile(r"[ \t\u3000]*[\r\n]+[ \t\u3000]*")


def composed(text: str) -> str:
    """``text`` with decomposed kana composed (see ``as_read``); ``text`` itself when
    there is nothing to compose."""
    if text.isascii() or not _KANA_MARKS.search(text):
        return text
    return unicodedata.normalize("NFC", text.translate(_SPACING_MARKS))


def as_read(chunk: TextChunk) -> TextChunk:
    """``chunk`` as a reader sees it, where the text differs from what is shown:

    * kana with their voiced mark as a second character (macOS writes file names and
      copied text decomposed, マ + イ + ナ + ン + ハ + ゛ + ー, "濁点分離"), or the
      spacing mark typed after the kana (ハ゛): composed, so keywords match;
    * a column header broken over lines (個人⏎番号: Alt+Enter in Excel, <br> in a
      table header, a paragraph in a Word cell): read as one word."""
    text, label = composed(chunk.text), chunk.field_label
    if label:
        label = composed(label)
        if "\n" in label or "\r" in label:
            label = _LABEL_BREAK.sub("", label)
    if text is chunk.text and label is chunk.field_label:
        return chunk
    return dataclasses.replace(chunk, text=text, field_label=label)


def _no_numerals(text: str) -> bool:
    """No run of kanji numerals or circled digits either (``mynumber.digit_reading``)."""
    return digit_reading(text) is text


_ANY_DIGIT = Words([chr(c) for lo, hi in DIGITS for c in range(lo, hi + 1)], guard=False)
"""Every digit character (``numchars.DIGITS``: every character whose NFKC form holds a
decimal digit, the widest reading of any detector), as one compiled set: a regex
class this large tested each character range by range (7.5 ms on a 2 MB body, against
0.9 ms)."""


def scan_message(raw: bytes, scan: ScanSettings, source: str = "<message>") -> ScanReport:
    """Scan one RFC 5322 message."""
    t0 = time.monotonic()
    st = _state(scan)
    subject = message_id = header_from = ""
    with _guarded(st, "message"):
        top = _walk_message(st, raw, prefix="", display="", depth=0, hint=_NONE)
        if top is not None:
            subject, message_id, header_from = top
    return _report(st, source, len(raw), t0, subject, message_id, header_from)


@contextlib.contextmanager
def _guarded(st: _State, what: str) -> Iterator[None]:
    """Turn whatever stops a scan into the report's error or defects, never an
    exception: a scanner bug must not take the service down."""
    try:
        yield
    except BudgetExceeded as exc:
        if exc.status is AttachmentStatus.TIMEOUT:
            st.timeout(exc.detail)
        else:
            st.unread.append(f"scan stopped: {redact(exc.detail)}; the rest was not read")
    except RecursionError:
        st.error = f"error: {what} nested too deeply to scan"
    except Exception as exc:
        st.error = "error: " + registry.safe_reason(exc)


def scan_file(data: bytes, filename: str, scan: ScanSettings, source: str) -> ScanReport:
    """Scan a file that is not a message, as if it were the lone attachment of one."""
    t0 = time.monotonic()
    st = _state(scan)
    name = filename.replace("\\", "/").rsplit("/", 1)[-1] or "file"
    with _guarded(st, "file"):
        _detect_name(st, name, f"attachment:{redact(name)}", _NONE)
        _scan_file(
            st,
            data,
            name=name,
            display=redact(name),
            declared_type="",
            charset=None,
            location=f"attachment:{redact(name)}",
            depth=0,
            hint=st.keywords(name),
        )
    return _report(st, source, len(data), t0, "", "", "")


def _report(
    st: _State, source: str, size: int, t0: float, subject: str, message_id: str, header_from: str
) -> ScanReport:
    if len(st.matches) > MAX_FINDINGS:
        st.defects.append(f"{len(st.matches)} findings; the first {MAX_FINDINGS} are listed")
    if not st.error:
        for a in st.attachments:
            if a.status is AttachmentStatus.TIMEOUT:
                st.timeout(f"attachment {a.filename} not finished in time")
                break
    return ScanReport(
        source=redact(source),  # a file may be named after a number
        findings=tuple(st.findings),
        summaries=st.summaries(),
        attachments=tuple(st.attachments),
        defects=tuple(st.defects),
        # The Message-ID is how a reviewer finds the mail in the MTA's log:
        # mask only what could be a My Number, not its timestamp digits.
        message_id=scrub(message_id),
        subject=redact(subject),
        header_from=redact(header_from),
        size=size,
        elapsed_ms=(time.monotonic() - t0) * 1000.0,
        error=st.error,
        unread=tuple(st.unread),
        items=tuple(st.items),
    )


def _walk_message(
    st: _State, raw: bytes | Message, prefix: str, display: str, depth: int, hint: frozenset[str]
) -> tuple[str, str, str] | None:
    """Scan one (possibly nested) message; returns its subject, Message-ID and From."""
    st.budget.check_time()
    parsed = parse_message(raw, prefix=prefix, keywords=st.budget.keywords)
    where = f"{display}: " if display else ""
    st.defects.extend(where + d for d in parsed.defects)
    st.unread.extend(where + redact(u) for u in parsed.unread)
    # A keyword in the Subject is context for the bodies; one anywhere in the
    # headers or bodies is context for the attachments.
    subject_kw = st.keywords(parsed.subject)
    for chunk in parsed.chunks:
        st.detect(chunk, hint | subject_kw if "header:" not in chunk.location else hint)
    st.detect_tables(parsed.chunks)
    # Only attachments need it, and on a 2 MB body the search costs 5 ms a detector.
    text_kw = _NONE
    if parsed.attachments:
        text_kw = subject_kw.union(*(st.keywords(c.text) for c in parsed.chunks))
    for att in parsed.attachments:
        st.budget.check_time()
        shown = redact(att.filename)
        name = f"{display}/{shown}" if display else shown
        location = redact(att.location)
        file_hint = hint | text_kw | (st.keywords(att.filename) if att.named else _NONE)
        if att.named:
            _detect_name(st, att.filename, location, hint | text_kw)
        if att.is_message:
            _nested_message(
                st, att.data, att.content_type, name, location, depth + 1, file_hint, att.message
            )
        elif att.unreadable or att.encrypted:
            # Not readable here: recorded with why, for policy to act on.
            status, detail = (
                (AttachmentStatus.ERROR, att.unreadable)
                if att.unreadable
                else (AttachmentStatus.ENCRYPTED, f"{att.encrypted} encrypted")
            )
            st.attachments.append(
                AttachmentInfo(
                    name,
                    redact(att.content_type),  # the sender's free text, as in _scan_file
                    len(att.data),
                    hashlib.sha256(att.data).hexdigest(),
                    status,
                    location,
                    detail,
                )
            )
        else:
            _scan_file(
                st,
                att.data,
                name=att.filename,
                display=name,
                declared_type=att.content_type,
                charset=att.charset,
                location=location,
                depth=depth + 1,
                hint=file_hint,
            )
    return parsed.subject, parsed.message_id, parsed.header_from


def _detect_name(st: _State, name: str, location: str, hint: frozenset[str]) -> None:
    """A file name is text the recipient reads (``マイナンバー_621498320257.xlsx``, as HR
    staff name files): scanned as such, with ``_`` read as the space it stands for
    (it would glue the number to the word before it)."""
    st.detect(TextChunk(name.translate(_NAME_SPACES), f"{location} (file name)"), hint)


_NAME_SPACES = str.maketrans("_", " ")


def _nested_message(
    st: _State,
    data: bytes,
    content_type: str,
    display: str,
    location: str,
    depth: int,
    hint: frozenset[str],
    parsed: Message | None = None,
) -> None:
    sha = hashlib.sha256(data).hexdigest()
    if depth > st.budget.max_depth:
        st.attachments.append(
            AttachmentInfo(
                display,
                content_type,
                len(data),
                sha,
                AttachmentStatus.TOO_DEEP,
                location,
                "forwarded message nested too deeply",
            )
        )
        return
    st.attachments.append(
        AttachmentInfo(display, content_type, len(data), sha, AttachmentStatus.SCANNED, location)
    )
    _walk_message(
        st, parsed or data, prefix=location + "/", display=display, depth=depth, hint=hint
    )


def _scan_file(
    st: _State,
    data: bytes,
    *,
    name: str,
    display: str,
    declared_type: str,
    charset: str | None,
    location: str,
    depth: int,
    hint: frozenset[str],
) -> None:
    sha = hashlib.sha256(data).hexdigest()
    if depth > st.budget.max_depth:
        st.attachments.append(
            AttachmentInfo(
                display,
                declared_type or "application/octet-stream",
                len(data),
                sha,
                AttachmentStatus.TOO_DEEP,
                location,
                "nested too deeply",
            )
        )
        return
    ext = _extract(st, data, name, location, charset)
    ctype = (
        declared_type
        if declared_type not in _GENERIC_TYPES
        else (ext.content_type or declared_type)
    )
    if ext.kind == "message" and ext.members:
        _nested_message(st, ext.members[0].data, "message/rfc822", display, location, depth, hint)
        return
    before = len(st.matches)
    for chunk in ext.chunks:
        st.detect(chunk, hint)
    st.detect_tables(ext.chunks)
    if len(st.matches) > before:
        for item in items_of(c.field_label for c in ext.chunks if c.field_label):
            if item not in st.items:
                st.items.append(item)
    detail = redact(ext.detail)
    status = ext.status
    if ext.unread:
        # Read in part: what was read cannot vouch for the rest (policy acts on it).
        if status is AttachmentStatus.SCANNED:
            status = AttachmentStatus.PARTIAL
        detail = "; ".join([*([detail] if detail else []), *(redact(u) for u in ext.unread)])
    if len(data) <= SMALL_FILE_BYTES and len({m.value for m in st.matches[before:]}) == 1:
        # The hash of a tiny file holding one number can be reversed by trying
        # all 10^11 numbers: it would stand in for the number, which the filter must
        # not keep.
        # With two or more numbers the search space (10^22+) is out of reach.
        # (Licence and passport numbers have fewer values still.)
        sha = ""
        detail = (
            detail + "; " if detail else ""
        ) + f"sha256 withheld: small file holding {_one_of(st.matches[before].detector)}"
    st.attachments.append(
        AttachmentInfo(
            filename=display,
            content_type=redact(ctype) or "application/octet-stream",
            size=len(data),
            sha256=sha,
            status=status,
            location=location,
            detail=detail,
        )
    )
    index = len(st.attachments) - 1
    st.defects.extend(f"{display}: {redact(d)}" for d in ext.defects)
    for n, member in enumerate(ext.members):
        try:
            st.budget.add_member()
        except BudgetExceeded as exc:
            # The container was not read in full: it must not stay "scanned".
            skipped = f"{exc.detail}; {len(ext.members) - n} members not read"
            info = st.attachments[index]
            st.attachments[index] = dataclasses.replace(
                info,
                status=info.status if info.status.left_unread else AttachmentStatus.TOO_LARGE,
                detail="; ".join(x for x in (info.detail, skipped) if x),
            )
            break
        st.budget.check_time()
        mname = member.name.replace("\\", "/")
        shown = redact(mname)
        _detect_name(st, mname, f"{location}/{shown}", hint)
        _scan_file(
            st,
            member.data,
            name=mname,
            display=f"{display}/{shown}",
            declared_type=member.content_type,
            charset=None,
            location=f"{location}/{shown}",
            depth=depth + 1,
            hint=hint | st.keywords(mname),
        )


def _extract(st: _State, data: bytes, name: str, location: str, charset: str | None) -> Extracted:
    """The registry, except that a text part keeps the charset its MIME header declared."""
    if charset:
        kind = registry.sniff(data, name)
        if kind in ("text", "csv", "html"):
            try:
                st.budget.spend(len(data))
                if kind == "html":
                    return extract_html(data, name, location, st.budget, charset)
                return extract_text(data, name, location, st.budget, charset)
            except BudgetExceeded as exc:
                return Extracted(kind=kind, status=exc.status, detail=exc.detail)
            except Exception as exc:
                return Extracted(
                    kind=kind, status=AttachmentStatus.ERROR, detail=registry.safe_reason(exc)
                )
    return registry.extract(data, name, location, st.budget)


def _one_of(detector: str) -> str:
    return "a My Number" if detector == "mynumber" else f"one {detector.replace('_', ' ')}"
