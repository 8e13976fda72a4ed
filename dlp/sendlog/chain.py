"""The hash chain that makes the send log tamper-evident.

Each entry's hash is SHA-256 over its sequence number, the previous entry's
hash and the canonical JSON of its fields (sorted keys, no spaces, UTF-8).
The sequence number is inside the hash, so renumbering rows is as visible as
editing them; the previous hash is inside, so deleting or inserting a row
breaks the link to its neighbour.

Purging old entries keeps a checkpoint (the last purged entry's sequence
number and hash, and how many entries were purged in all); verification
starts from it as if it were the entry itself.

Plain SHA-256 cannot stop someone who rewrites *every* later row and the
chain head consistently.  That is what ``heads.py`` is for: the head is
written to the application log at every retention run and ``dlp log
verify``, and, with a key kept outside the database, signed into an
append-only file that later verifications hold the chain against.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dlp.sendlog.redact import scrub

GENESIS = "0" * 64
"""The "previous hash" of the first entry ever written."""


def canonical_json(fields: Mapping[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def entry_hash(seq: int, prev_hash: str, payload: str) -> str:
    h = hashlib.sha256()
    h.update(f"{seq}\n{prev_hash}\n".encode("ascii"))
    h.update(payload.encode("utf-8"))
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where the surviving chain starts after purges."""

    through_seq: int = 0
    last_hash: str = GENESIS
    purged_total: int = 0
    at: str = ""


@dataclass(frozen=True, slots=True)
class ChainState:
    """Both ends of the chain, read in one snapshot."""

    checkpoint: Checkpoint
    head_seq: int
    head_hash: str
    head_time: str
    """The newest entry's recorded time ('' when the log is empty)."""

    @property
    def entries(self) -> int:
        """Entries the chain says are stored: written minus purged."""
        return self.head_seq - self.checkpoint.through_seq


@dataclass(frozen=True, slots=True)
class EntryMark:
    """Where a stored entry sits in the chain (no content)."""

    seq: int
    hash: str
    time: str
    event: str


@dataclass(frozen=True, slots=True)
class ChainRow:
    """What verification needs from a stored entry."""

    seq: int
    prev_hash: str
    hash: str
    payload: str
    index_problem: str = ""
    """Non-empty when the indexed copies of the entry's fields (search
    columns, recipient and attachment tables) disagree with its payload."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    checkpoint: Checkpoint
    first_bad: int | None = None
    problem: str = ""
    """changed | deleted | inserted | replaced | checkpoint | head"""
    message: str = ""


class ChainVerifier:
    """Walks rows in sequence order and stops at the first break.

    Feed rows with ``feed``; ``finish`` returns the result.  A one-row
    look-ahead tells an inserted row (its successor still points past it)
    from a changed one.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        head_seq: int,
        head_hash: str,
        *,
        confirm_checkpoint: bool = True,
    ) -> None:
        self.checkpoint = checkpoint
        self.head_seq = head_seq
        self.head_hash = head_hash
        self.expect_seq = checkpoint.through_seq + 1
        self.expect_prev = checkpoint.last_hash
        self.prev_seq: int | None = None
        self.prev_prev_hash = ""
        self.checked = 0
        self.result: VerifyResult | None = None
        self._pending: ChainRow | None = None
        # The purge that made the checkpoint wrote an entry naming it; a
        # checkpoint without that entry was edited to hide deleted rows.
        self.checkpoint_confirmed = checkpoint.through_seq == 0 or not confirm_checkpoint

    @property
    def done(self) -> bool:
        return self.result is not None

    def _fail(self, seq: int, problem: str, message: str) -> None:
        self.result = VerifyResult(
            False,
            self.checked,
            self.head_seq,
            self.head_hash,
            self.checkpoint,
            seq,
            problem,
            message,
        )

    def feed(self, row: ChainRow) -> None:
        if self.result is not None:
            return
        if self._pending is None:
            self._pending = row
            return
        self._check(self._pending, row)
        self._pending = row

    def _check(self, row: ChainRow, nxt: ChainRow | None) -> None:
        if self.result is not None:
            return
        if row.seq > self.head_seq:
            self._fail(
                row.seq,
                "inserted",
                f"entry {row.seq} was inserted: it lies beyond the chain head "
                f"(the last entry written by dlp is {self.head_seq})",
            )
            return
        if row.seq < self.expect_seq:
            self._fail(
                row.seq,
                "inserted",
                f"entry {row.seq} was inserted: it lies before the purge checkpoint "
                f"(entries up to {self.checkpoint.through_seq} were purged)",
            )
            return
        if row.seq > self.expect_seq:
            gone = (
                f"entry {self.expect_seq}"
                if row.seq == self.expect_seq + 1
                else f"entries {self.expect_seq}-{row.seq - 1}"
            )
            self._fail(
                self.expect_seq, "deleted", f"entry {self.expect_seq} was deleted ({gone} missing)"
            )
            return
        if (
            self.prev_seq is not None
            and row.prev_hash != self.expect_prev
            and row.prev_hash == self.prev_prev_hash
        ):
            # This row links to the entry two back: the one in between was
            # slipped in (and the rows after it renumbered).
            self._fail(
                self.prev_seq,
                "inserted",
                f"entry {self.prev_seq} was inserted: the entry after it links to the "
                "entry before it",
            )
            return
        if entry_hash(row.seq, row.prev_hash, row.payload) != row.hash:
            if (
                nxt is not None
                and nxt.prev_hash == self.expect_prev
                and row.prev_hash == nxt.hash
                and entry_hash(row.seq, nxt.prev_hash, nxt.payload) == nxt.hash
            ):
                # this row is the next one's and the next one is this one's: swapped
                self._fail(
                    row.seq,
                    "reordered",
                    f"entries {row.seq} and {nxt.seq} were swapped: each holds the other's "
                    "content and hashes",
                )
            elif nxt is not None and nxt.prev_hash == self.expect_prev:
                self._fail(
                    row.seq,
                    "inserted",
                    f"entry {row.seq} was inserted: the entry after it links to entry "
                    f"{row.seq - 1} directly",
                )
            else:
                self._fail(
                    row.seq,
                    "changed",
                    f"entry {row.seq} was changed: its content no longer matches its hash",
                )
            return
        if row.prev_hash != self.expect_prev:
            if self.prev_seq is None:
                if self.checkpoint.through_seq:
                    self._fail(
                        row.seq,
                        "checkpoint",
                        f"entry {row.seq} does not follow the purge checkpoint "
                        f"(through entry {self.checkpoint.through_seq}): the checkpoint or "
                        f"entry {row.seq} was altered",
                    )
                else:
                    self._fail(
                        row.seq,
                        "inserted",
                        f"entry {row.seq} was inserted or forged: the chain does not start with it",
                    )
            else:
                self._fail(
                    self.prev_seq,
                    "replaced",
                    f"entry {self.prev_seq} was changed and re-hashed: entry {row.seq} "
                    f"still points to the original",
                )
            return
        if row.index_problem:
            self._fail(
                row.seq,
                "changed",
                f"entry {row.seq} was changed: {row.index_problem}",
            )
            return
        if self.checkpoint.through_seq and '"event":"purge"' in row.payload:
            detail = json.loads(row.payload).get("detail") or {}
            if detail.get("through_seq") == self.checkpoint.through_seq and detail.get(
                "last_hash"
            ) in (self.checkpoint.last_hash, scrub(self.checkpoint.last_hash)):
                # Masked: written before digests were kept from the scrubber (a decimal
                # run in it passed the check digit).  Still sound: the checkpoint's hash
                # must also be what the entry after it points to.
                self.checkpoint_confirmed = True
        self.checked += 1
        self.prev_prev_hash = self.expect_prev
        self.prev_seq = row.seq
        self.expect_seq = row.seq + 1
        self.expect_prev = row.hash

    def finish(self) -> VerifyResult:
        if self._pending is not None:
            self._check(self._pending, None)
            self._pending = None
        if self.result is not None:
            return self.result
        last = self.expect_seq - 1
        if last < self.head_seq:
            self._fail(
                self.expect_seq,
                "deleted",
                f"entry {self.expect_seq} was deleted (entries {self.expect_seq}-"
                f"{self.head_seq} missing; the chain head says {self.head_seq} were written)",
            )
        elif not self.checkpoint_confirmed:
            self._fail(
                self.checkpoint.through_seq,
                "checkpoint",
                f"the purge checkpoint (through entry {self.checkpoint.through_seq}) is not "
                "confirmed by any purge entry in the chain: it was altered",
            )
        elif self.expect_prev != self.head_hash:
            self._fail(
                last,
                "head",
                f"entry {last} does not match the chain head: it or the head was altered",
            )
        assert self.result is None or not self.result.ok
        return self.result or VerifyResult(
            True, self.checked, self.head_seq, self.head_hash, self.checkpoint
        )
