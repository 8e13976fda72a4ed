"""The SQL both stores share: append, search, verify, purge, stats.

Subclasses supply the connection, the placeholder style and the two kinds
of transaction: ``_write`` (exclusive: it holds the chain head, so appends
from any number of processes form one chain) and ``_read`` (one consistent
snapshot, so a verify or export never sees half an append or purge).

What is hashed is the entry's canonical JSON (``payload``).  The columns and
lookup tables that make searches fast are copies derived from it by
``derive``; verification re-derives them and reports any difference as a
change to the entry, so editing a search column is caught like editing the
payload.
"""

from __future__ import annotations

import json
import threading
from abc import abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from dlp.model import Action, RecipientClass
from dlp.sendlog.chain import (
    GENESIS,
    ChainRow,
    ChainState,
    ChainVerifier,
    Checkpoint,
    EntryMark,
    VerifyResult,
    canonical_json,
    entry_hash,
)
from dlp.sendlog.record import SendRecord, format_time, record_for_event
from dlp.sendlog.store import (
    SORTS,
    STATS_BY,
    ChainReader,
    LogFilter,
    PurgeResult,
    SendLogError,
    SendLogStore,
    StatsRow,
    StoredEntry,
)

_DAY_US = 86_400_000_000
_ENTRY_COLS = (
    "seq, ts_us, event, audit_key, sender, sender_domain, action, has_findings,"
    " reportable, n_attach, outside, payload, prev_hash, hash"
)


def to_us(t: datetime) -> int:
    d = t.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


@dataclass(frozen=True, slots=True)
class Derived:
    """The searchable copy of an entry's fields."""

    ts_us: int
    event: str
    audit_key: str
    sender: str
    sender_domain: str
    action: str
    has_findings: int
    reportable: int
    n_attach: int
    outside: int
    rcpts: tuple[tuple[str, str], ...]
    attaches: tuple[tuple[int, str, str], ...]

    def columns(self) -> tuple[Any, ...]:
        return (
            self.ts_us,
            self.event,
            self.audit_key,
            self.sender,
            self.sender_domain,
            self.action,
            self.has_findings,
            self.reportable,
            self.n_attach,
            self.outside,
        )


def derive(rec: SendRecord) -> Derived:
    sender = rec.sender.lower()
    return Derived(
        ts_us=to_us(rec.time),
        event=rec.event,
        audit_key=rec.audit_key,
        sender=sender,
        sender_domain=sender.rpartition("@")[2] if "@" in sender else "",
        action=rec.action,
        has_findings=int(rec.has_findings),
        reportable=int(rec.reportable_scale),
        n_attach=len(rec.attachments),
        outside=int(rec.to_outside),
        rcpts=tuple(sorted({(r.domain.lower(), r.klass) for r in rec.recipients})),
        attaches=tuple(
            (i, a.filename.lower(), a.sha256.lower()) for i, a in enumerate(rec.attachments)
        ),
    )


def _like_escape(s: str) -> str:
    return s.replace("!", "!!").replace("%", "!%").replace("_", "!_")


class SqlStore(SendLogStore):
    dialect = ""
    _head_lock = ""
    """Appended to the chain-head SELECT inside a write transaction."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    # -- primitives supplied by the dialect -------------------------------

    @abstractmethod
    def run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Execute with ``?`` placeholders; all rows (empty for statements)."""

    @abstractmethod
    def run_many(self, sql: str, rows: list[tuple[object, ...]]) -> None: ...

    @abstractmethod
    def _write(self) -> AbstractContextManager[None]: ...

    @abstractmethod
    def _read(self) -> AbstractContextManager[None]: ...

    @abstractmethod
    def _wrap(self, exc: Exception, doing: str) -> SendLogError: ...

    @abstractmethod
    def _db_errors(self) -> tuple[type[Exception], ...]: ...

    # -- append ------------------------------------------------------------

    def _head(self) -> tuple[int, str]:
        rows = self.run(
            "SELECT last_seq, last_hash FROM sendlog_head WHERE id = 1" + self._head_lock
        )
        if not rows:
            raise SendLogError("the send log's chain head row is missing; run `dlp log verify`")
        return int(rows[0][0]), str(rows[0][1])

    def _append_locked(self, recs: Sequence[SendRecord]) -> list[int]:
        """Chain and insert ``recs`` after the current head; call inside ``_write``."""
        seq, prev = self._head()
        entries: list[tuple[object, ...]] = []
        rcpts: list[tuple[object, ...]] = []
        attaches: list[tuple[object, ...]] = []
        ids = []
        for rec in recs:
            seq += 1
            payload = canonical_json(rec.to_json())
            h = entry_hash(seq, prev, payload)
            d = derive(rec)
            entries.append((seq, *d.columns(), payload, prev, h))
            rcpts.extend((seq, dom, k) for dom, k in d.rcpts)
            attaches.extend((seq, *a) for a in d.attaches)
            ids.append(seq)
            prev = h
        insert = f"INSERT INTO sendlog_entry ({_ENTRY_COLS}) VALUES ({', '.join('?' * 14)})"
        if len(entries) == 1:
            self.run(insert, entries[0])
        else:
            self.run_many(insert, entries)
        if rcpts:
            self.run_many("INSERT INTO sendlog_rcpt (seq, domain, klass) VALUES (?, ?, ?)", rcpts)
        if attaches:
            self.run_many(
                "INSERT INTO sendlog_attach (seq, pos, name, sha256) VALUES (?, ?, ?, ?)",
                attaches,
            )
        self.run("UPDATE sendlog_head SET last_seq = ?, last_hash = ? WHERE id = 1", (seq, prev))
        return ids

    def append(self, rec: SendRecord) -> int:
        return self.append_many([rec])[0]

    def append_many(self, recs: Sequence[SendRecord]) -> list[int]:
        if not recs:
            return []
        with self._lock:
            try:
                with self._write():
                    return self._append_locked(recs)
            except SendLogError:
                raise
            except self._db_errors() as exc:
                raise self._wrap(exc, "write to the send log") from None

    # -- reading -------------------------------------------------------------

    # How a filter on the recipient / attachment tables is written.  Either a
    # correlated ``EXISTS (… WHERE x.seq = e.seq AND …)``, checked per entry, or
    # ``e.seq IN (SELECT seq … WHERE …)``, whose set is built first.  Same
    # results; which is faster depends on the store, the statement (a page of
    # 50 stops early, a count or stats reads every match) and how many rows the
    # set holds, so each store names the filters it writes as IN, per statement
    # kind ("query" = a page, "count" = count and stats), as measured by
    # ``bench/sendlog.py --membership`` (bench/RESULTS-sendlog.md).  Keys:
    # domain, class, lookalike (class = lookalike), sha256, name.  A class
    # attribute so the benchmark can time every form on the same data.
    membership: ClassVar[dict[str, frozenset[str]]] = {
        "query": frozenset(),
        "count": frozenset(),
    }

    @staticmethod
    def _member(use_in: bool, table: str, alias: str, cond: str) -> str:
        if use_in:
            return f"e.seq IN (SELECT {alias}.seq FROM {table} {alias} WHERE {cond})"
        return f"EXISTS (SELECT 1 FROM {table} {alias} WHERE {alias}.seq = e.seq AND {cond})"

    def _where(
        self, f: LogFilter | None, use_in: frozenset[str] = frozenset()
    ) -> tuple[str, list[object]]:
        """SQL conditions of a filter; ``use_in``: the lookup filters to write as IN."""
        f = f or LogFilter()
        clauses: list[str] = []
        params: list[object] = []
        if f.since is not None:
            clauses.append("e.ts_us >= ?")
            params.append(to_us(f.since))
        if f.until is not None:
            clauses.append("e.ts_us < ?")
            params.append(to_us(f.until))
        if f.sender:
            s = f.sender.strip().lower()
            if s.startswith("@"):
                clauses.append("e.sender_domain = ?")
                params.append(s[1:])
            else:
                clauses.append("e.sender = ?")
                params.append(s)
        if f.recipient_domain:
            clauses.append(self._member("domain" in use_in, "sendlog_rcpt", "r", "r.domain = ?"))
            params.append(f.recipient_domain.strip().lower().lstrip("@"))
        if f.recipient_class:
            key = "lookalike" if f.recipient_class == RecipientClass.LOOKALIKE else "class"
            # "external" covers "freemail" (RecipientClass.covers), as in policy rules.
            covered = sorted(RecipientClass(f.recipient_class).covers())
            cond = (
                "r.klass = ?"
                if len(covered) == 1
                else f"r.klass IN ({', '.join('?' * len(covered))})"
            )
            clauses.append(self._member(key in use_in, "sendlog_rcpt", "r", cond))
            params.extend(c.value for c in covered)
        if f.has_findings is not None:
            clauses.append("e.has_findings = ?")
            params.append(int(f.has_findings))
        if f.verdict:
            clauses.append("e.action = ?")
            params.append(f.verdict)
        if f.event:
            clauses.append("e.event = ?")
            params.append(f.event)
        if f.exclude_events:
            clauses.append(f"e.event NOT IN ({', '.join('?' * len(f.exclude_events))})")
            params.extend(f.exclude_events)
        if f.audit_key:
            clauses.append("e.audit_key = ?")
            params.append(f.audit_key.strip())
        if f.attachment:
            if f.attachment_is_hash:
                clauses.append(
                    self._member("sha256" in use_in, "sendlog_attach", "a", "a.sha256 = ?")
                )
                params.append(f.attachment.lower())
            else:
                clauses.append(
                    self._member(
                        "name" in use_in, "sendlog_attach", "a", "a.name LIKE ? ESCAPE '!'"
                    )
                )
                params.append(f"%{_like_escape(f.attachment.lower())}%")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    @staticmethod
    def _entry(row: tuple[Any, ...]) -> StoredEntry:
        seq, payload, prev, h = row
        return StoredEntry(int(seq), SendRecord.from_json(json.loads(payload)), prev, h)

    def _select(self, sql: str, params: tuple[object, ...], doing: str) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self.run(sql, params)
            except SendLogError:
                raise
            except self._db_errors() as exc:
                raise self._wrap(exc, doing) from None

    def get(self, entry_id: int) -> StoredEntry | None:
        rows = self._select(
            "SELECT seq, payload, prev_hash, hash FROM sendlog_entry WHERE seq = ?",
            (entry_id,),
            "read the send log",
        )
        return self._entry(rows[0]) if rows else None

    def query(
        self,
        flt: LogFilter | None = None,
        limit: int = 50,
        offset: int = 0,
        sort: str = "newest",
    ) -> list[StoredEntry]:
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        where, params = self._where(flt, self.membership["query"])
        order = "DESC" if sort == "newest" else "ASC"
        rows = self._select(
            f"SELECT e.seq, e.payload, e.prev_hash, e.hash FROM sendlog_entry e{where}"
            f" ORDER BY e.ts_us {order}, e.seq {order} LIMIT ? OFFSET ?",
            (*params, int(limit), int(offset)),
            "search the send log",
        )
        return [self._entry(r) for r in rows]

    def count(self, flt: LogFilter | None = None) -> int:
        where, params = self._where(flt, self.membership["count"])
        rows = self._select(
            f"SELECT COUNT(*) FROM sendlog_entry e{where}", tuple(params), "count send-log entries"
        )
        return int(rows[0][0])

    def iter_entries(
        self, flt: LogFilter | None = None, batch: int = 1000
    ) -> Iterator[StoredEntry]:
        where, params = self._where(flt)
        joiner = " AND " if where else " WHERE "
        last = 0
        while True:
            rows = self._select(
                f"SELECT e.seq, e.payload, e.prev_hash, e.hash FROM sendlog_entry e{where}"
                f"{joiner}e.seq > ? ORDER BY e.seq LIMIT ?",
                (*params, last, batch),
                "export the send log",
            )
            for r in rows:
                yield self._entry(r)
            if len(rows) < batch:
                return
            last = int(rows[-1][0])

    # -- verification --------------------------------------------------------

    def _checkpoint(self) -> Checkpoint:
        rows = self.run(
            "SELECT through_seq, last_hash, purged_total, at FROM sendlog_checkpoint"
            " ORDER BY through_seq DESC LIMIT 1"
        )
        if not rows:
            return Checkpoint()
        t, h, n, at = rows[0]
        return Checkpoint(int(t), str(h), int(n), str(at))

    def _chain_rows(self, lo: int, hi: int | None, batch: int = 2000) -> Iterator[ChainRow]:
        """Rows with seq >= lo (and <= hi), with their index copies checked."""
        last = lo - 1
        while True:
            bound = "" if hi is None else " AND seq <= ?"
            extra: tuple[object, ...] = () if hi is None else (hi,)
            rows = self.run(
                f"SELECT {_ENTRY_COLS} FROM sendlog_entry WHERE seq > ?{bound}"
                " ORDER BY seq LIMIT ?",
                (last, *extra, batch),
            )
            if not rows:
                return
            first, top = int(rows[0][0]), int(rows[-1][0])
            rcpts: dict[int, list[tuple[str, str]]] = {}
            for seq, dom, k in self.run(
                "SELECT seq, domain, klass FROM sendlog_rcpt WHERE seq >= ? AND seq <= ?"
                " ORDER BY seq, domain, klass",
                (first, top),
            ):
                rcpts.setdefault(int(seq), []).append((dom, k))
            # derive() sorts by code point; ORDER BY sorts by the database's
            # collation (ICU or en_US order é before f, hyphens differently …), so an
            # untouched entry must not look changed on a PostgreSQL that is not "C".
            for found in rcpts.values():
                found.sort()
            atts: dict[int, list[tuple[int, str, str]]] = {}
            for seq, pos, name, sha in self.run(
                "SELECT seq, pos, name, sha256 FROM sendlog_attach WHERE seq >= ? AND seq <= ?"
                " ORDER BY seq, pos",
                (first, top),
            ):
                atts.setdefault(int(seq), []).append((int(pos), name, sha))
            for r in rows:
                seq = int(r[0])
                payload, prev, h = r[11], r[12], r[13]
                yield ChainRow(
                    seq,
                    prev,
                    h,
                    payload,
                    _index_problem(payload, r[1:11], rcpts.get(seq, []), atts.get(seq, [])),
                )
            if len(rows) < batch:
                return
            last = top

    def _verify_from(self, cp: Checkpoint, head_seq: int, head_hash: str) -> VerifyResult:
        v = ChainVerifier(cp, head_seq, head_hash)
        stray = self.run("SELECT MAX(seq) FROM sendlog_entry WHERE seq <= ?", (cp.through_seq,))
        if stray and stray[0][0] is not None:
            v.feed(ChainRow(int(stray[0][0]), "", "", ""))
            return v.finish()
        for row in self._chain_rows(cp.through_seq + 1, None):
            v.feed(row)
            if v.done:
                break
        return v.finish()

    def _verify_all(self) -> VerifyResult:
        """Verify the whole chain; call inside ``_read``."""
        cp = self._checkpoint()
        rows = self.run("SELECT last_seq, last_hash FROM sendlog_head WHERE id = 1")
        if not rows:
            return VerifyResult(False, 0, 0, "", cp, None, "head", "the chain head row was deleted")
        return self._verify_from(cp, int(rows[0][0]), str(rows[0][1]))

    def verify(self) -> VerifyResult:
        with self._lock:
            try:
                with self._read():
                    return self._verify_all()
            except SendLogError:
                raise
            except self._db_errors() as exc:
                raise self._wrap(exc, "verify the send log") from None

    @contextmanager
    def chain_snapshot(self) -> Iterator[ChainReader]:
        with self._lock:
            try:
                with self._read():
                    yield _SqlChainReader(self)
            except SendLogError:
                raise
            except self._db_errors() as exc:
                raise self._wrap(exc, "read the send log's chain") from None

    # -- purge ---------------------------------------------------------------

    purge_batch = 20_000
    """Entries purged per transaction: a first purge of a big log must not hold
    the write lock (and so the gateway's appends) for long."""

    def purge(
        self,
        older_than_days: int,
        *,
        now: datetime | None = None,
        actor: str = "retention",
        dry_run: bool = False,
    ) -> PurgeResult:
        if older_than_days <= 0:
            raise ValueError("older_than_days must be positive")
        now = (now or datetime.now(UTC)).astimezone(UTC)
        cutoff = now - timedelta(days=older_than_days)
        total = 0
        last = PurgeResult(0, cutoff)
        while True:
            with self._lock:
                try:
                    with self._write():
                        res = self._purge_locked(
                            now, cutoff, actor, dry_run, None if dry_run else self.purge_batch
                        )
                except SendLogError:
                    raise
                except self._db_errors() as exc:
                    raise self._wrap(exc, "purge the send log") from None
            if res.purged == 0:
                break
            total += res.purged
            last = res
            if dry_run or res.purged < self.purge_batch:
                break
        return PurgeResult(total, cutoff, last.checkpoint, last.event_id)

    def _purge_locked(
        self, now: datetime, cutoff: datetime, actor: str, dry_run: bool, limit: int | None
    ) -> PurgeResult:
        head_seq, _ = self._head()
        cp = self._checkpoint()
        # Only a prefix of the chain can go: stop at the first entry that is
        # still young, even if an older-stamped one (clock skew between
        # gateways) follows it.
        rows = self.run(
            "SELECT MIN(seq) FROM sendlog_entry WHERE ts_us >= ? AND seq > ?",
            (to_us(cutoff), cp.through_seq),
        )
        young = rows[0][0]
        through = head_seq if young is None else int(young) - 1
        if limit is not None:
            through = min(through, cp.through_seq + limit)
        if through <= cp.through_seq:
            return PurgeResult(0, cutoff)
        # Purging must not erase the evidence of tampering: the part to go has
        # to verify first.
        check = ChainVerifier(cp, through, "", confirm_checkpoint=False)
        for row in self._chain_rows(cp.through_seq + 1, through):
            check.feed(row)
            if check.done:
                break
        res = check.finish()
        if not res.ok and res.problem != "head":
            raise SendLogError(
                f"refusing to purge: {res.message}. Investigate with `dlp log verify`; "
                "purging would erase this evidence"
            )
        last_hash = self.run("SELECT hash FROM sendlog_entry WHERE seq = ?", (through,))[0][0]
        purged = through - cp.through_seq
        new_cp = Checkpoint(through, str(last_hash), cp.purged_total + purged, format_time(now))
        if dry_run:
            return PurgeResult(purged, cutoff, new_cp)
        self.run("DELETE FROM sendlog_rcpt WHERE seq <= ?", (through,))
        self.run("DELETE FROM sendlog_attach WHERE seq <= ?", (through,))
        self.run("DELETE FROM sendlog_entry WHERE seq <= ?", (through,))
        self.run(
            "INSERT INTO sendlog_checkpoint (through_seq, last_hash, purged_total, at)"
            " VALUES (?, ?, ?, ?)",
            (new_cp.through_seq, new_cp.last_hash, new_cp.purged_total, new_cp.at),
        )
        event = record_for_event(
            when=now,
            event="purge",
            actor=actor,
            comment=f"entries older than {format_time(cutoff)} purged",
            detail={
                "through_seq": new_cp.through_seq,
                "last_hash": new_cp.last_hash,
                "purged": purged,
                "purged_total": new_cp.purged_total,
                "cutoff": format_time(cutoff),
            },
        )
        (event_id,) = self._append_locked([event])
        return PurgeResult(purged, cutoff, new_cp, event_id)

    # -- stats ---------------------------------------------------------------

    def stats(
        self,
        flt: LogFilter | None = None,
        by: str = "day",
        utc_offset_minutes: int = 0,
    ) -> list[StatsRow]:
        if by not in STATS_BY:
            raise ValueError(f"by must be one of {', '.join(STATS_BY)}")
        where, params = self._where(flt, self.membership["count"])  # all matches, like count
        where = (where + " AND " if where else " WHERE ") + "e.event = 'message'"
        keys = []
        if "day" in by:
            # Integers computed here, not user text: safe to inline, and a
            # literal keeps PostgreSQL's GROUP BY happy.
            keys.append(f"(e.ts_us + {int(utc_offset_minutes) * 60_000_000}) / {_DAY_US}")
        else:
            keys.append("0")
        keys.append("e.sender" if "sender" in by else "''")
        group = ", ".join(str(i + 1) for i in range(len(keys)))
        sql = (
            f"SELECT {keys[0]}, {keys[1]}, COUNT(*),"
            " SUM(CASE WHEN e.n_attach > 0 THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN e.n_attach > 0 AND e.outside = 1 THEN 1 ELSE 0 END),"
            " SUM(e.has_findings),"
            # Enum values (constants, not user text): inlined like the day offset.
            f" SUM(CASE WHEN e.action = '{Action.HOLD.value}' THEN 1 ELSE 0 END),"
            f" SUM(CASE WHEN e.action = '{Action.REJECT.value}' THEN 1 ELSE 0 END),"
            " SUM(e.reportable),"
            " SUM(CASE WHEN e.n_attach > 0 AND e.outside = 1 AND EXISTS (SELECT 1 FROM"
            " sendlog_rcpt fr WHERE fr.seq = e.seq"
            f" AND fr.klass = '{RecipientClass.FREEMAIL.value}') THEN 1 ELSE 0 END)"
            f" FROM sendlog_entry e{where} GROUP BY {group} ORDER BY {group}"
        )
        rows = self._select(sql, tuple(params), "compute send-log statistics")
        epoch = datetime(1970, 1, 1).date()
        out = []
        for day, sender, *counts in rows:
            day_s = (epoch + timedelta(days=int(day))).isoformat() if "day" in by else ""
            out.append(StatsRow(day_s, str(sender), *(int(c or 0) for c in counts)))
        return out


def _from_us(us: int) -> str:
    return format_time(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us)))


class _SqlChainReader:
    """``ChainReader`` over a store whose read transaction is open."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def state(self) -> ChainState | None:
        s = self._store
        rows = s.run("SELECT last_seq, last_hash FROM sendlog_head WHERE id = 1")
        if not rows:
            return None
        seq, h = int(rows[0][0]), str(rows[0][1])
        t = s.run("SELECT ts_us FROM sendlog_entry WHERE seq = ?", (seq,))
        return ChainState(s._checkpoint(), seq, h, _from_us(t[0][0]) if t else "")

    def marks(self, seqs: Collection[int]) -> dict[int, EntryMark]:
        want = sorted(set(seqs))
        out: dict[int, EntryMark] = {}
        for i in range(0, len(want), 500):
            chunk = want[i : i + 500]
            for seq, h, ts, event in self._store.run(
                "SELECT seq, hash, ts_us, event FROM sendlog_entry"
                f" WHERE seq IN ({', '.join('?' * len(chunk))})",
                tuple(chunk),
            ):
                out[int(seq)] = EntryMark(int(seq), str(h), _from_us(ts), str(event))
        return out

    def verify_all(self) -> VerifyResult:
        return self._store._verify_all()

    def verify_after(self, start: Checkpoint) -> VerifyResult:
        st = self.state()
        if st is None:
            return self.verify_all()
        v = ChainVerifier(start, st.head_seq, st.head_hash, confirm_checkpoint=False)
        for row in self._store._chain_rows(start.through_seq + 1, None):
            v.feed(row)
            if v.done:
                break
        return v.finish()


def _index_problem(
    payload: str,
    cols: tuple[Any, ...],
    rcpts: list[tuple[str, str]],
    atts: list[tuple[int, str, str]],
) -> str:
    """How the search copies differ from the payload ('' when they agree)."""
    try:
        d = derive(SendRecord.from_json(json.loads(payload)))
    except (ValueError, KeyError, TypeError) as exc:
        return f"its recorded fields cannot be read ({type(exc).__name__})"
    names = (
        "time",
        "event",
        "audit key",
        "sender",
        "sender domain",
        "verdict",
        "has-findings flag",
        "reportable flag",
        "attachment count",
        "outside flag",
    )
    for name, want, got in zip(names, d.columns(), cols, strict=True):
        if str(want) != str(got):
            return f"its search column '{name}' differs from what was recorded"
    if tuple(rcpts) != d.rcpts:
        return "its recipient index differs from what was recorded"
    if tuple(atts) != d.attaches:
        return "its attachment index differs from what was recorded"
    return ""


__all__ = ["GENESIS", "SqlStore", "derive", "to_us"]
