"""The send-log store interface and the values it deals in.

Two implementations share it: ``SqliteStore`` (one gateway, the default) and
``PostgresStore`` (several gateways, one log).  Every method raises
``SendLogError`` with a message an administrator can act on; the gateway
turns that into a 4xx so the record is never silently missing.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol

from dlp.sendlog.chain import ChainState, Checkpoint, EntryMark, VerifyResult
from dlp.sendlog.record import SendRecord

SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")


class SendLogError(Exception):
    """The send log cannot be opened, read or written; phrased for an administrator."""


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What a reviewer narrows the log by.  Empty / None = no condition.

    ``sender`` is an address, or ``@domain`` for everyone at a domain.
    ``recipient_domain`` matches a recipient's domain exactly.
    ``attachment`` is a SHA-256 (64 hex digits) or part of a file name.
    ``until`` is exclusive.
    """

    since: datetime | None = None
    until: datetime | None = None
    sender: str = ""
    recipient_domain: str = ""
    recipient_class: str = ""
    has_findings: bool | None = None
    verdict: str = ""
    attachment: str = ""
    event: str = ""
    audit_key: str = ""
    """Postfix's queue id (or the gateway's own id): every entry about one message."""
    exclude_events: tuple[str, ...] = ()
    """Entry types left out (``dlp log list`` hides ``outcome`` entries by default)."""

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            t = getattr(self, name)
            if t is not None and t.tzinfo is None:
                raise ValueError(f"LogFilter.{name} must be timezone-aware")

    @property
    def attachment_is_hash(self) -> bool:
        return bool(SHA256_RE.match(self.attachment))


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as stored: its place in the chain and what was recorded."""

    id: int
    record: SendRecord
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            **self.record.to_json(),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class PurgeResult:
    purged: int
    cutoff: datetime
    checkpoint: Checkpoint | None = None
    """The new checkpoint; None when nothing was old enough to purge."""
    event_id: int | None = None
    """The ``purge`` entry that records this purge in the chain."""


@dataclass(frozen=True, slots=True)
class StatsRow:
    """One line of the weekly review: per day, per sender, or both."""

    day: str
    sender: str
    messages: int
    with_attachments: int
    attachments_outside: int
    """Messages with an attachment to an external or lookalike recipient."""
    with_findings: int
    held: int
    rejected: int
    reportable: int
    attachments_freemail: int = 0
    """Messages with an attachment to a free-mail recipient (issue 14)."""

    def to_json(self) -> dict[str, object]:
        return {
            "day": self.day,
            "sender": self.sender,
            "messages": self.messages,
            "with_attachments": self.with_attachments,
            "attachments_outside": self.attachments_outside,
            "with_findings": self.with_findings,
            "held": self.held,
            "rejected": self.rejected,
            "reportable": self.reportable,
            "attachments_freemail": self.attachments_freemail,
        }


class ChainReader(Protocol):
    """The chain as one consistent snapshot sees it (``SendLogStore.chain_snapshot``):
    appends and purges by other processes meanwhile are not seen, so comparing signed
    heads with it never reports a purge that happened half-way as tampering."""

    def state(self) -> ChainState | None:
        """Checkpoint and head; None when the chain-head row is missing."""

    def marks(self, seqs: Collection[int]) -> dict[int, EntryMark]:
        """The stored entries among ``seqs`` (missing ones are left out)."""

    def verify_all(self) -> VerifyResult:
        """What ``SendLogStore.verify`` answers, in this snapshot."""

    def verify_after(self, start: Checkpoint) -> VerifyResult:
        """Verify the entries after ``start`` up to the head, trusting ``start`` (a
        signed head that still matches) instead of re-reading everything before it."""


SORTS = ("newest", "oldest")
STATS_BY = ("day", "sender", "day+sender")


class SendLogStore(ABC):
    """One append-only, hash-chained log.  Safe to share between threads."""

    backend: str = ""
    schema_version: int = 0

    @abstractmethod
    def append(self, rec: SendRecord) -> int:
        """Write one entry durably (committed before returning); its id."""

    @abstractmethod
    def append_many(self, recs: Sequence[SendRecord]) -> list[int]:
        """Write entries in one transaction (imports, benchmarks)."""

    @abstractmethod
    def get(self, entry_id: int) -> StoredEntry | None: ...

    @abstractmethod
    def query(
        self,
        flt: LogFilter | None = None,
        limit: int = 50,
        offset: int = 0,
        sort: str = "newest",
    ) -> list[StoredEntry]: ...

    @abstractmethod
    def count(self, flt: LogFilter | None = None) -> int: ...

    @abstractmethod
    def iter_entries(
        self, flt: LogFilter | None = None, batch: int = 1000
    ) -> Iterator[StoredEntry]:
        """Every matching entry, oldest first, in bounded memory (exports)."""

    @abstractmethod
    def verify(self) -> VerifyResult: ...

    @abstractmethod
    def chain_snapshot(self) -> AbstractContextManager[ChainReader]:
        """One read-only snapshot of the chain (signed-head checks, ``heads.py``)."""

    @abstractmethod
    def purge(
        self,
        older_than_days: int,
        *,
        now: datetime | None = None,
        actor: str = "retention",
        dry_run: bool = False,
    ) -> PurgeResult:
        """Delete the oldest entries (a prefix of the chain) older than the cutoff,
        keep a checkpoint and record a ``purge`` entry.  Refuses when the part
        to be purged does not verify: purging must not erase evidence."""

    @abstractmethod
    def stats(
        self,
        flt: LogFilter | None = None,
        by: str = "day",
        utc_offset_minutes: int = 0,
    ) -> list[StatsRow]:
        """Counts of message entries grouped ``by`` day (in the given UTC
        offset), sender, or both."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> SendLogStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
