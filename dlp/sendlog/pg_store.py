"""The send log in PostgreSQL (several gateways, one log).

Every append runs in one transaction that first locks the single chain-head
row (``SELECT … FOR UPDATE``): writers from any number of gateway processes
and hosts queue on that row, each reads the head the previous one
committed, so there is exactly one chain.  Verification and exports run in
a REPEATABLE READ snapshot.  Schema upgrades take a transaction-level
advisory lock so two gateways starting together do not both migrate.

The DSN may pick a schema with ``options=-csearch_path=NAME`` (the tests
do that to stay out of each other's way).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from dlp.sendlog.migrations import CURRENT, SchemaError, migrate
from dlp.sendlog.sqlbase import SqlStore
from dlp.sendlog.store import SendLogError

_MIGRATE_LOCK = 0x646C_7073_6C6F_67  # "dlpslog": any fixed 64-bit key of ours


# Whether a table exists in the search path, read from pg_class with the
# statement's own snapshot.  Not to_regclass(): it answers from the backend's
# catalog cache, which an advisory lock does not refresh, so a gateway that
# waited on the migration lock still saw "no table" and tried to create it
# again ("relation already exists" when two gateways start on an empty
# database).
TABLE_EXISTS_SQL = (
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relname = %s AND n.nspname = ANY (current_schemas(false)))"
)


def connect(dsn: str, connect_timeout: int) -> psycopg.Connection[Any]:
    """A connection that cannot stall the gateway for ever.

    Every send-log append and hold-queue write runs while an SMTP client waits
    for its answer.  TCP keepalives notice a database host that vanished (no
    RST: the query would otherwise wait for the kernel's ~2 h timeout), and
    lock_timeout ends a wait on a lock another session holds (the chain head);
    either becomes an error, so the message is tempfailed and retried.  No
    statement_timeout: verify and purge legitimately run long reads."""
    conn = psycopg.connect(
        dsn,
        autocommit=True,
        connect_timeout=connect_timeout,
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
    )
    try:
        conn.execute("SET lock_timeout = '30s'")
    except BaseException:
        conn.close()
        raise
    return conn


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    dsn = re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", dsn)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", dsn)


class PostgresStore(SqlStore):
    backend = "postgresql"
    dialect = "postgresql"
    # ``membership``: EXISTS everywhere (SqlStore's default).  PostgreSQL plans
    # both forms as semi-joins; in two runs on the same generated data the
    # faster form of a search flipped with the plan ANALYZE's sample led to
    # (a page by a common file hash 94 -> 1 ms as IN, then 2 -> 122 ms), so
    # neither form is reliably faster here (bench/RESULTS-sendlog.md).
    _head_lock = " FOR UPDATE"

    def __init__(self, dsn: str, *, connect_timeout: int = 5, migrate_to: int = CURRENT):
        super().__init__()
        self.dsn = dsn
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        try:
            self._open_schema(migrate_to)
        except SchemaError as exc:
            self.close()
            raise SendLogError(f"{redact_dsn(dsn)}: {exc}") from None
        except psycopg.Error as exc:
            self.close()
            raise self._wrap(exc, "open the send log") from None

    @property
    def conn(self) -> psycopg.Connection[Any]:
        # Reconnect lazily after a failure, so a database restart costs a few
        # tempfailed messages, not a gateway restart.
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = connect(self.dsn, self._connect_timeout)
        return self._conn

    def _has_schema_table(self) -> bool:
        return self.conn.execute(TABLE_EXISTS_SQL, ("sendlog_schema",)).fetchall()[0][0] is True

    def _open_schema(self, target: int) -> None:
        if self._has_schema_table():
            found = int(self.run("SELECT version FROM sendlog_schema")[0][0])
            if found == target:
                self.schema_version = found
                return
        with self.conn.transaction():
            self.run("SELECT pg_advisory_xact_lock(?)", (_MIGRATE_LOCK,))
            _, self.schema_version = migrate(self, self._has_schema_table(), target)

    def run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(sql.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []

    def run_many(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)

    @contextmanager
    def _write(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    @contextmanager
    def _read(self) -> Iterator[None]:
        with self.conn.transaction():
            self.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield

    def _db_errors(self) -> tuple[type[Exception], ...]:
        return (psycopg.Error,)

    def _wrap(self, exc: Exception, doing: str) -> SendLogError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return SendLogError(f"cannot {doing} at {redact_dsn(self.dsn)}: {text}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
