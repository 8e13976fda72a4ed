"""Send-log test support: the same tests run against SQLite and PostgreSQL.

PostgreSQL: 127.0.0.1:5432, user postgres, database test, trust auth (CI
starts it).  Each test gets its own schema, dropped afterwards.  When the
server is not reachable the PostgreSQL variants are skipped with a message
saying how to enable them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dlp.model import (
    Action,
    AttachmentInfo,
    AttachmentStatus,
    Confidence,
    Finding,
    MyNumberSummary,
    Recipient,
    RecipientClass,
    ScanReport,
    Verdict,
)
from dlp.sendlog import SendLogStore, SendRecord, record_for_message

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
PG_HOWTO = (
    "PostgreSQL not reachable at 127.0.0.1:5432 (user postgres, database test, trust auth); "
    "start it (e.g. `pg_ctlcluster 15 main start`, or .ci/run does it) to run the "
    "PostgreSQL send-log tests"
)
QUARANTINE_KEY = "lKKkZMPFw7V_zKn5iuvVkvVfle9AzKhX749Q5r1m2lw="
"""A fixed Fernet key for tests: with PostgreSQL the hold queue is in the database and
``[quarantine] encryption_key`` is required (the same on every gateway)."""
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

_pg_reachable: bool | None = None


def pg_reachable() -> bool:
    global _pg_reachable
    if _pg_reachable is None:
        try:
            import psycopg

            with psycopg.connect(PG_BASE, connect_timeout=3) as c:
                c.execute("SELECT 1")
            _pg_reachable = True
        except Exception:
            _pg_reachable = False
    return _pg_reachable


def pg_dsn(schema: str) -> str:
    return f"{PG_BASE}?options=-csearch_path%3D{schema}"


class Backend:
    """Where one test's send log lives, and how to open it (again)."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.path = tmp_path / "sendlog.db"
        self.schema = f"sendlog_t_{uuid.uuid4().hex[:12]}"
        self.dsn = pg_dsn(self.schema)
        self._opened: list[SendLogStore] = []
        if kind == "postgresql":
            import psycopg

            with psycopg.connect(PG_BASE, autocommit=True) as c:
                c.execute(f"CREATE SCHEMA {self.schema}")

    def open(self, **kw: Any) -> SendLogStore:
        if self.kind == "sqlite":
            from dlp.sendlog.sqlite_store import SqliteStore

            store: SendLogStore = SqliteStore(self.path, **kw)
        else:
            from dlp.sendlog.pg_store import PostgresStore

            store = PostgresStore(self.dsn, **kw)
        self._opened.append(store)
        return store

    def raw(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Run SQL behind the store's back (a tamperer's view of the database)."""
        if self.kind == "sqlite":
            import sqlite3

            with sqlite3.connect(self.path) as c:
                return c.execute(sql, params).fetchall()
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as c:
            cur = c.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def toml(self) -> str:
        if self.kind == "sqlite":
            return f'[sendlog]\nsqlite_path = "{self.path}"\n'
        return f'[sendlog]\nbackend = "postgresql"\npostgresql_dsn = "{self.dsn}"\n'

    def quarantine_toml(self) -> str:
        """The ``[quarantine]`` section a PostgreSQL configuration needs (harmless for SQLite)."""
        return f'[quarantine]\nencryption_key = "{QUARANTINE_KEY}"\n\n'

    def cleanup(self) -> None:
        for s in self._opened:
            s.close()
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(PG_BASE, autocommit=True) as c:
                c.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


def backend_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind = request.param
    if kind == "postgresql" and not pg_reachable():
        pytest.skip(PG_HOWTO)
    b = Backend(kind, tmp_path)
    try:
        yield b
    finally:
        b.cleanup()


T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def make_record(
    i: int = 0,
    *,
    when: datetime | None = None,
    sender: str = "tanaka@city.example.lg.jp",
    recipients: tuple[tuple[str, RecipientClass], ...] = (
        ("k@partner.co.jp", RecipientClass.PARTNER),
    ),
    attachments: tuple[tuple[str, str], ...] = (("名簿.xlsx", "ab" * 32),),
    mynumbers: int = 0,
    action: Action = Action.DELIVER,
    subject: str = "",
) -> SendRecord:
    """A realistic message entry built the way the gateway builds it."""
    findings = tuple(
        Finding("mynumber", Confidence.HIGH, "attachment:名簿.xlsx!Sheet1!C", "****-****-****", n)
        for n in range(mynumbers)
    )
    report = ScanReport(
        source="<message>",
        findings=findings,
        summaries={
            "mynumber": MyNumberSummary(total=mynumbers, distinct=mynumbers, high=mynumbers)
        },
        attachments=tuple(
            AttachmentInfo(
                name, "application/octet-stream", 1000 + i, sha, AttachmentStatus.SCANNED
            )
            for name, sha in attachments
        ),
        message_id=f"<msg{i}@city.example.lg.jp>",
        subject=subject or f"資料送付 {i}",
        header_from=f"田中 <{sender}>",
    )
    return record_for_message(
        audit_key=f"Q{i:06d}",
        client_address="192.0.2.10",
        sender=sender,
        recipients=[Recipient(a, a.rpartition("@")[2], k) for a, k in recipients],
        report=report,
        verdict=Verdict(action, "test-rule", ("理由",) if action is not Action.DELIVER else ()),
        next_hop_reply="250 2.0.0 Ok: queued as ABC123",
        when=when or T0 + timedelta(minutes=i),
    )


def rewrite_chain(backend: Backend, seq: int, edit: Any) -> None:
    """What someone with write access to the database can do: change entry ``seq``
    with ``edit(fields) -> fields`` and recompute every hash from it to the head,
    the chain head row included, so that the database's own chain verifies."""
    import json

    from dlp.sendlog.chain import canonical_json, entry_hash

    rows = backend.raw(
        "SELECT seq, payload, prev_hash FROM sendlog_entry WHERE seq >= ? ORDER BY seq", (seq,)
    )
    prev = rows[0][2]
    for s, payload, _ in rows:
        if s == seq:
            payload = canonical_json(edit(json.loads(payload)))
        h = entry_hash(s, prev, payload)
        backend.raw(
            "UPDATE sendlog_entry SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (payload, prev, h, s),
        )
        prev = h
    backend.raw(
        "UPDATE sendlog_head SET last_seq = ?, last_hash = ? WHERE id = 1", (rows[-1][0], prev)
    )
