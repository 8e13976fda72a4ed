"""The contract between the scanner and the format extractors.

An extractor turns the bytes of one file into text chunks for the detectors,
plus the member files a container holds (which the scanner sends back through
the registry, one level deeper).  Extractors never raise for bad input: a
corrupt file is ``status=error`` with a short reason, an over-limit one
``too_large``/``too_deep``/``timeout`` (bad input must never take the gateway
down).  They import nothing from ``dlp.smtp``, ``dlp.sendlog`` or ``dlp.cli``, and
nothing from ``dlp.mime``: a forwarded message found inside an archive is returned as a member with
kind ``message`` and the scanner hands it to ``dlp.mime``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dlp.model import AttachmentStatus, TextChunk


class BudgetExceeded(Exception):
    """Raised inside an extractor when the per-message budget runs out.

    ``status`` is ``too_large``, ``timeout`` or ``too_deep``; the registry turns it
    into an ``Extracted`` with that status, keeping what was read so far."""

    def __init__(self, status: AttachmentStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class OcrLimits:
    """The ``[ocr]`` settings one scan works with (copied here so that extractors
    need not import ``dlp.config``)."""

    languages: tuple[str, ...] = ("jpn",)
    max_pages: int = 50
    deadline: float = float("inf")
    """time.monotonic() value after which no further image is OCR'd."""
    max_pixels: int = 40_000_000
    pdf_dpi: int = 200
    here: bool = True
    """False in the gateway's serving process: an image there is a timeout
    (rescanned in a worker), never OCR'd on the event loop."""


@dataclass
class Budget:
    """Per-message limits, shared by every extractor that runs for one message.

    Deliberately mutable (it counts what has been spent); one per scan, never
    shared between messages or threads.
    """

    max_total_bytes: int
    max_file_bytes: int
    max_members: int
    max_depth: int
    max_ratio: int
    deadline: float
    """time.monotonic() value after which work stops with status timeout."""
    spent_bytes: int = 0
    members: int = 0
    ocr: OcrLimits | None = None
    """None: OCR is off for this scan (images are reported as not read)."""
    ocr_pages: int = 0
    """Images, frames and PDF pages OCR'd so far (also counted in sandboxed children)."""
    keywords: tuple[str, ...] = ()
    """``[scan] extra_keywords``: words that also label a My Number field, so that the
    form and table-row readers (``forms.py``, ``text.table_chunks``) see the labels the
    detector is configured to see."""

    @classmethod
    def from_settings(cls, scan: object, timeout: float | None = None) -> Budget:
        s = scan
        deadline = time.monotonic() + (timeout if timeout is not None else s.timeout_seconds)  # type: ignore[attr-defined]
        o = getattr(s, "ocr", None)
        ocr = None
        if o is not None and o.enabled:
            ocr = OcrLimits(
                languages=tuple(o.languages),
                max_pages=o.max_pages,
                deadline=min(deadline, time.monotonic() + o.timeout_seconds),
                max_pixels=o.max_pixels,
                pdf_dpi=o.pdf_dpi,
                here=bool(getattr(s, "ocr_here", True)),
            )
        return cls(
            max_total_bytes=s.max_total_bytes,  # type: ignore[attr-defined]
            max_file_bytes=s.max_file_bytes,  # type: ignore[attr-defined]
            max_members=s.max_members,  # type: ignore[attr-defined]
            max_depth=s.max_depth,  # type: ignore[attr-defined]
            max_ratio=s.max_ratio,  # type: ignore[attr-defined]
            deadline=deadline,
            ocr=ocr,
            keywords=tuple(getattr(s, "extra_keywords", ())),
        )

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise BudgetExceeded(AttachmentStatus.TIMEOUT, "per-message time budget used up")

    def spend(self, nbytes: int) -> None:
        """Account decompressed bytes; raise when a limit is crossed."""
        if nbytes > self.max_file_bytes:
            raise BudgetExceeded(
                AttachmentStatus.TOO_LARGE,
                f"file of {nbytes} bytes exceeds max_file_bytes {self.max_file_bytes}",
            )
        self.spent_bytes += nbytes
        if self.spent_bytes > self.max_total_bytes:
            raise BudgetExceeded(
                AttachmentStatus.TOO_LARGE,
                f"message exceeds max_total_bytes {self.max_total_bytes} decompressed",
            )
        self.check_time()

    def add_member(self) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise BudgetExceeded(
                AttachmentStatus.TOO_LARGE, f"more than max_members {self.max_members} files"
            )


@dataclass(frozen=True, slots=True)
class Member:
    """A file inside a container (archive member, embedded object, .msg attachment)."""

    name: str
    data: bytes
    content_type: str = ""


@dataclass(frozen=True, slots=True)
class Extracted:
    """What one extractor made of one file."""

    kind: str
    """Format family that was recognised: text, csv, xlsx, xls, ods, docx, pptx, odt,
    doc, ppt, pdf, html, rtf, message, msg, tnef, zip, gzip, tar, 7z, rar, image, binary."""
    status: AttachmentStatus
    chunks: tuple[TextChunk, ...] = ()
    members: tuple[Member, ...] = ()
    detail: str = ""
    content_type: str = ""
    """Content type implied by the bytes (may differ from the declared one)."""
    defects: tuple[str, ...] = field(default_factory=tuple)
    unread: tuple[str, ...] = ()
    """Parts of the file that could not be read (a sheet, a page, an XML part):
    the scanner then reports the file as ``partial``, which policy acts on."""


def lines_only_in(shown: str, text: str) -> str:
    """The lines of ``shown`` (a second reading: as the screen shows it) that
    ``text`` (the first) does not hold, joined; "" when it adds nothing.  Only
    what reads differently is read twice, so nothing else counts double."""
    seen = set(text.split("\n"))
    return "\n".join(line for line in shown.split("\n") if line not in seen)
