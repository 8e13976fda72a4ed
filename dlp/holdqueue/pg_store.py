"""The hold queue in PostgreSQL, beside the send log (several gateways, one queue).

Chosen by ``open_quarantine`` when ``[sendlog] backend = "postgresql"``: the
same DSN, its own table ``quarantine_held`` with its own schema version
(``quarantine_schema``), so any gateway or console can list and release what
any gateway held.

* At rest: the message and its metadata (subject, envelope, reasons, counts)
  are Fernet tokens made with ``[quarantine] encryption_key``; only the id,
  the time it was held and the claim are readable in the table (the time is
  what expiry selects on).  The key must be in the configuration: it is the
  same on every host or nobody else can read what one gateway held.
* Durable: ``hold`` is one INSERT committed before it returns (autocommit;
  ``synchronous_commit`` is raised to ``on`` for this connection if the
  server default turns it off), so the gateway answers ``250`` only for a
  message that survives a crash of the database server too (a 250 hands the
  mail over to us: losing it then would lose it for good).
* Pending until committed: ``hold`` inserts the row with ``pending = true``
  (or rewrites a pending row of the same id: the MTA's retry), ``commit``
  clears the flag after the send-log entry is written; only committed rows
  are listed, read or released (see ``dlp.holdqueue.store``).
* Claims: one atomic ``UPDATE … WHERE claimed_at IS NULL OR stale`` that
  marks the row with a token unique to this claim; two reviewers on two
  hosts racing for the same release — also for a stale claim left by a
  crashed process — get exactly one winner: the loser's UPDATE waits for the
  winner's row lock, re-checks the row (READ COMMITTED) and matches nothing,
  because the winner's ``claimed_at`` is fresh.  A claim goes stale after
  ``stale_after`` seconds (the database cannot see whether its holder lives).
  Holding and committing skip a claimed row, so an expiry and a retry of the
  same message never interleave.

One connection per process, shared by threads under a lock (the gateway holds
from executor threads; each operation is a single statement); reopened after
a failure and after a fork.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from cryptography.fernet import Fernet

from dlp.config import Settings
from dlp.holdqueue.store import (
    PENDING_GRACE,
    HeldMessage,
    Quarantine,
    QuarantineError,
    QuarantineStorageError,
    check_id,
    claimed_elsewhere,
    decrypt,
)
from dlp.sendlog.pg_store import TABLE_EXISTS_SQL, connect, redact_dsn

log = logging.getLogger(__name__)

_MIGRATE_LOCK = 0x646C_7071_7565_7565  # "dlpqueue": fixed, distinct from the send log's

KEY_REQUIRED = (
    '[quarantine] encryption_key must be set when [sendlog] backend = "postgresql": held '
    "messages then live in the shared database and every gateway and console needs the same "
    "key to read them (a key generated on one host would lock the others out). Generate one "
    "with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key()."
    "decode())' and put the same value in the configuration of every host"
)


def _v1(run: Callable[[str], object]) -> None:
    run(
        "CREATE TABLE quarantine_held (id TEXT PRIMARY KEY, held_at TIMESTAMPTZ NOT NULL,"
        " meta BYTEA NOT NULL, body BYTEA NOT NULL,"
        " claimed_by TEXT, claimed_at TIMESTAMPTZ)"
    )
    run("CREATE INDEX quarantine_held_at ON quarantine_held (held_at)")


def _v2(run: Callable[[str], object]) -> None:
    # Rows written before v2 were answered 250: committed.
    run("ALTER TABLE quarantine_held ADD COLUMN pending BOOLEAN NOT NULL DEFAULT false")


# (version, description, step).  Append; never edit a released step.
STEPS: tuple[tuple[int, str, Callable[[Callable[[str], object]], None]], ...] = (
    (1, "held messages: id, time, encrypted metadata and body, claim", _v1),
    (2, "pending copies: releasable only once the send-log entry is committed", _v2),
)

# A claim younger than this blocks a hold, a commit or an expiry of its row.
_UNCLAIMED = "(claimed_at IS NULL OR claimed_at < clock_timestamp() - interval '600 seconds')"
_UNCLAIMED_ROW = _UNCLAIMED.replace("claimed_at", "quarantine_held.claimed_at")
CURRENT = STEPS[-1][0]


class PgQuarantine(Quarantine):
    def __init__(
        self, dsn: str, key: bytes, retention_days: int, *, connect_timeout: int = 5
    ) -> None:
        self.dsn = dsn
        self._fernet = Fernet(key)
        self._id_key = key
        self.retention = timedelta(days=retention_days)
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._inherited: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # The table is checked (created, upgraded) on first use, not here: a
        # gateway starts while the database is down and tempfails only what
        # needs it, as it does for the send log.
        self._schema_ok = False

    # -- connection --------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        """The connection; call with the lock held (``_locked``)."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            conn = connect(self.dsn, self._connect_timeout)
            try:
                if conn.execute("SHOW synchronous_commit").fetchone() == ("off",):
                    conn.execute("SET synchronous_commit TO on")
            except BaseException:
                conn.close()  # not kept, so not left open either
                raise
            self._conn = conn
        if not self._schema_ok:
            self._open_schema(self._conn)
            self._schema_ok = True
        return self._conn

    def _run(self, doing: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._locked():
            try:
                conn = self._connection()
            except psycopg.Error as exc:
                raise self._wrap(exc, "open the hold queue") from None
            try:
                cur = conn.execute(sql, params)
                return cur.fetchall() if cur.description else []
            except psycopg.Error as exc:
                raise self._wrap(exc, doing) from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self._pid != os.getpid():
            # A forked child: the parent's lock may have been held at fork time,
            # and its socket is the parent's.  Keep that connection object
            # referenced but unused (closing it would end the parent's session).
            self._lock, self._pid = threading.Lock(), os.getpid()
            self._inherited, self._conn = self._conn, None
        with self._lock:
            yield

    def _wrap(self, exc: Exception, doing: str) -> QuarantineError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return QuarantineStorageError(f"cannot {doing} at {redact_dsn(self.dsn)}: {text}")

    def _open_schema(self, conn: psycopg.Connection[Any]) -> None:
        def version(conn: psycopg.Connection[Any]) -> int | None:
            row = conn.execute(TABLE_EXISTS_SQL, ("quarantine_schema",)).fetchone()
            if not row or not row[0]:
                return None
            found = conn.execute("SELECT version FROM quarantine_schema").fetchone()
            return int(found[0]) if found else 0

        if version(conn) == CURRENT:
            return
        # Two gateways starting together: the second waits here and then
        # finds the work done.
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            found = version(conn)
            if found is None:
                conn.execute("CREATE TABLE quarantine_schema (version INTEGER NOT NULL)")
                conn.execute("INSERT INTO quarantine_schema (version) VALUES (0)")
                found = 0
            if found > CURRENT:
                raise QuarantineStorageError(
                    f"{redact_dsn(self.dsn)}: the hold queue has schema version {found}, "
                    f"newer than this dlp understands (up to {CURRENT}); upgrade dlp on this host"
                )
            for step, _, apply in STEPS:
                if found < step:
                    apply(conn.execute)
                    conn.execute("UPDATE quarantine_schema SET version = %s", (step,))

    def close(self) -> None:
        with self._locked():
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- writing -----------------------------------------------------------

    def _store(self, held: HeldMessage, meta: bytes, raw: bytes) -> HeldMessage:
        """One upsert in autocommit: committed (synchronous_commit on) on return.

        A pending row of the same id (an earlier attempt of this message) is
        rewritten; a committed one is left alone and returned."""
        written = self._run(
            "write a held message",
            "INSERT INTO quarantine_held (id, held_at, meta, body, pending)"
            " VALUES (%s, %s, %s, %s, true)"
            " ON CONFLICT (id) DO UPDATE SET held_at = EXCLUDED.held_at, meta = EXCLUDED.meta,"
            f" body = EXCLUDED.body WHERE quarantine_held.pending AND {_UNCLAIMED_ROW}"
            " RETURNING id",
            (held.id, held.held_at, self._fernet.encrypt(meta), self._fernet.encrypt(raw)),
        )
        if written:
            return held
        existing = self.get(held.id)
        if existing is None:
            raise QuarantineError(f"held message {held.id} is being expired; try again later")
        return existing

    def _update(self, held_id: str, meta: bytes) -> None:
        check_id(held_id)
        done = self._run(
            "update a held message",
            "UPDATE quarantine_held SET meta = %s WHERE id = %s AND NOT pending RETURNING id",
            (self._fernet.encrypt(meta), held_id),
        )
        if not done:
            raise QuarantineError(f"no held message {held_id}")

    def commit(self, held_id: str) -> None:
        check_id(held_id)
        done = self._run(
            "confirm a held message",
            f"UPDATE quarantine_held SET pending = false WHERE id = %s AND {_UNCLAIMED}"
            " RETURNING id",
            (held_id,),
        )
        if not done and self.get(held_id) is None:
            raise QuarantineError(f"no held message {held_id} to confirm (expired or claimed)")

    @contextlib.contextmanager
    def claim(self, held_id: str, stale_after: float = 600.0) -> Iterator[None]:
        check_id(held_id)
        # Unique per claim: the unclaim below must never clear a claim that
        # someone took over from us after ours went stale.
        token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        won = self._run(
            "claim a held message",
            "UPDATE quarantine_held SET claimed_by = %s, claimed_at = clock_timestamp()"
            " WHERE id = %s AND (claimed_at IS NULL"
            " OR claimed_at < clock_timestamp() - make_interval(secs => %s))"
            " RETURNING id",
            (token, held_id, float(stale_after)),
        )
        if not won and self._run(
            "read the hold queue", "SELECT 1 FROM quarantine_held WHERE id = %s", (held_id,)
        ):
            raise claimed_elsewhere(held_id)
        # No such row: go on, as the file store does; the caller's get() says so.
        try:
            yield
        finally:
            try:
                self._run(
                    "unclaim a held message",
                    "UPDATE quarantine_held SET claimed_by = NULL, claimed_at = NULL"
                    " WHERE id = %s AND claimed_by = %s",
                    (held_id, token),
                )
            except QuarantineError as exc:
                # Not worth masking the outcome of the release: the claim goes stale.
                log.warning("%s", exc)

    def delete(self, held_id: str) -> bool:
        check_id(held_id)
        return bool(
            self._run(
                "delete a held message",
                "DELETE FROM quarantine_held WHERE id = %s RETURNING id",
                (held_id,),
            )
        )

    def expired(self, now: datetime | None = None) -> list[HeldMessage]:
        now = now or datetime.now(UTC)
        rows = self._run(
            "list expired held messages",
            "SELECT id, meta, pending FROM quarantine_held"
            " WHERE (NOT pending AND held_at < %s) OR (pending AND held_at < %s)"
            " ORDER BY held_at, id",
            (now - self.retention, now - PENDING_GRACE),
        )
        return [self._held(str(i), bytes(m), bool(p)) for i, m, p in rows]

    # -- reading -----------------------------------------------------------

    def list(self) -> list[HeldMessage]:
        rows = self._run(
            "list the hold queue",
            "SELECT id, meta FROM quarantine_held WHERE NOT pending ORDER BY held_at, id",
        )
        return [self._held(str(i), bytes(m)) for i, m in rows]

    def get(self, held_id: str, *, pending: bool = False) -> HeldMessage | None:
        check_id(held_id)
        rows = self._run(
            "read the hold queue",
            "SELECT meta, pending FROM quarantine_held WHERE id = %s AND (%s OR NOT pending)",
            (held_id, pending),
        )
        return self._held(held_id, bytes(rows[0][0]), bool(rows[0][1])) if rows else None

    def read(self, held_id: str) -> bytes:
        check_id(held_id)
        rows = self._run(
            "read a held message",
            "SELECT body FROM quarantine_held WHERE id = %s AND NOT pending",
            (held_id,),
        )
        if not rows:
            raise QuarantineError(f"no held message {held_id}")
        return decrypt(self._fernet, bytes(rows[0][0]), held_id)

    def depth(self) -> int:
        return int(
            self._run(
                "count the hold queue", "SELECT count(*) FROM quarantine_held WHERE NOT pending"
            )[0][0]
        )

    def _held(self, held_id: str, meta: bytes, pending: bool = False) -> HeldMessage:
        held = HeldMessage.from_json(json.loads(decrypt(self._fernet, meta, held_id)))
        return replace(held, pending=True) if pending else held


_OPEN: dict[tuple[str, str, int], PgQuarantine] = {}
_OPEN_LOCK = threading.Lock()


def open_pg_quarantine(settings: Settings) -> PgQuarantine:
    """The shared queue of these settings; one per process and DSN.

    The console and ``expire`` call ``open_quarantine`` per request; reusing
    the queue keeps that to one connection and one schema check per process.
    """
    key = settings.quarantine.encryption_key
    if not key:
        raise QuarantineStorageError(KEY_REQUIRED)
    dsn = settings.sendlog.postgresql_dsn
    ident = (dsn, key, settings.quarantine.retention_days)
    with _OPEN_LOCK:
        queue = _OPEN.get(ident)
        if queue is None:
            try:
                queue = PgQuarantine(dsn, key.encode("ascii"), settings.quarantine.retention_days)
            except ValueError as exc:
                raise QuarantineStorageError(
                    f"[quarantine] encryption_key is not a valid Fernet key: {exc}"
                ) from None
            _OPEN[ident] = queue
        return queue
