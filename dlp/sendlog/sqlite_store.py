"""The send log in one SQLite file (the default; one gateway host).

WAL lets reviewers read while the gateway writes; ``synchronous = FULL``
makes a committed entry survive a power cut, because the gateway answers
250 only after the entry is written.  ``BEGIN IMMEDIATE`` takes the write
lock before the chain head is read, so several gateway processes on the
host append one chain; the busy timeout makes them queue instead of fail.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from dlp.sendlog.migrations import CURRENT, SchemaError, migrate
from dlp.sendlog.sqlbase import SqlStore
from dlp.sendlog.store import SendLogError


class SqliteStore(SqlStore):
    backend = "sqlite"
    dialect = "sqlite"
    # SQLite never flattens either form into a join.  IN pays off only in
    # counts over a small set: a whole-year count by file hash 60 -> 4 ms at
    # 200k entries (381 -> 29 ms at 1M in the console), lookalike class 3.8 ->
    # 1.4 ms.  For a page of 50, a common domain or class, EXISTS walking the
    # time index wins by 3-300x, so those stay EXISTS.
    membership: ClassVar[dict[str, frozenset[str]]] = {
        "query": frozenset(),
        "count": frozenset({"sha256", "lookalike"}),
    }

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0, migrate_to: int = CURRENT):
        super().__init__()
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                # Created owner-only whatever the umask (a shell's 022, a container
                # without one): it holds every sender and recipient address.  SQLite
                # gives the -wal and -shm files the database file's permissions.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self._conn = sqlite3.connect(
                str(self.path),
                timeout=busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # guarded by the store's lock
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if self._conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._open_schema(migrate_to)
        except SchemaError as exc:
            self.close()
            raise SendLogError(f"{self.path}: {exc}") from None
        except (sqlite3.Error, OSError) as exc:
            self.close()
            raise self._wrap(exc, "open the send log") from None

    def _has_schema_table(self) -> bool:
        return bool(
            self.run("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sendlog_schema'")
        )

    def _open_schema(self, target: int) -> None:
        if self._has_schema_table():
            found = int(self.run("SELECT version FROM sendlog_schema")[0][0])
            if found == target:
                self.schema_version = found
                return  # nothing to do: no write lock, so a read-only copy opens too
        with self._write():
            _, self.schema_version = migrate(self, self._has_schema_table(), target)

    # -- dialect primitives ------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise SendLogError(f"{self.path}: the send log is closed")
        return self._conn

    def run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def run_many(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        self.conn.executemany(sql, rows)

    @contextmanager
    def _tx(self, begin: str) -> Iterator[None]:
        self.conn.execute(begin)
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            # Also when COMMIT itself failed: never leave the connection inside
            # a transaction, or every later append would fail too.
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            raise

    def _write(self) -> Any:
        return self._tx("BEGIN IMMEDIATE")

    def _read(self) -> Any:
        return self._tx("BEGIN")

    def _db_errors(self) -> tuple[type[Exception], ...]:
        return (sqlite3.Error,)

    def _wrap(self, exc: Exception, doing: str) -> SendLogError:
        return SendLogError(f"cannot {doing} at {self.path}: {exc}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
