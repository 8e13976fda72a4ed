"""Versioned schema of the send log, shared by SQLite and PostgreSQL.

``sendlog_schema`` holds one row with the version.  Opening a store applies
the missing steps in order inside one exclusive transaction (so two gateways
starting together do not both migrate); a database written by a newer dlp
is refused, because an older program could misread or break its chain.

Adding a step: append to ``STEPS``; never edit a released step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dlp.sendlog.chain import GENESIS


class Executor(Protocol):
    """What a step needs from a store: run SQL with ``?`` placeholders."""

    dialect: str

    def run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]: ...

    def run_many(self, sql: str, rows: list[tuple[object, ...]]) -> None: ...


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    apply: Callable[[Executor], None]


def _types(dialect: str) -> dict[str, str]:
    if dialect == "sqlite":
        # INTEGER PRIMARY KEY makes seq the rowid (clustered); the lookup tables
        # are clustered on their key too.
        return {"pk": "INTEGER PRIMARY KEY", "big": "INTEGER", "norowid": " WITHOUT ROWID"}
    return {"pk": "BIGINT PRIMARY KEY", "big": "BIGINT", "norowid": ""}


def _v1(ex: Executor) -> None:
    t = _types(ex.dialect)
    for sql in (
        "CREATE TABLE sendlog_head (id INTEGER PRIMARY KEY CHECK (id = 1),"
        " last_seq {big} NOT NULL, last_hash TEXT NOT NULL)",
        "CREATE TABLE sendlog_checkpoint (through_seq {big} PRIMARY KEY,"
        " last_hash TEXT NOT NULL, purged_total {big} NOT NULL, at TEXT NOT NULL)",
        "CREATE TABLE sendlog_entry (seq {pk}, ts_us {big} NOT NULL, event TEXT NOT NULL,"
        " audit_key TEXT NOT NULL, sender TEXT NOT NULL, action TEXT NOT NULL,"
        " has_findings SMALLINT NOT NULL, reportable SMALLINT NOT NULL,"
        " n_attach INTEGER NOT NULL, outside SMALLINT NOT NULL,"
        " payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
        "CREATE INDEX sendlog_entry_ts ON sendlog_entry (ts_us)",
        "CREATE INDEX sendlog_entry_sender ON sendlog_entry (sender, ts_us)",
        "CREATE INDEX sendlog_entry_action ON sendlog_entry (action, ts_us)",
        "CREATE INDEX sendlog_entry_findings ON sendlog_entry (has_findings, ts_us)",
        "CREATE INDEX sendlog_entry_audit ON sendlog_entry (audit_key)",
        "CREATE TABLE sendlog_rcpt (seq {big} NOT NULL, domain TEXT NOT NULL,"
        " klass TEXT NOT NULL, PRIMARY KEY (seq, domain, klass)){norowid}",
        "CREATE INDEX sendlog_rcpt_domain ON sendlog_rcpt (domain, seq)",
        "CREATE INDEX sendlog_rcpt_class ON sendlog_rcpt (klass, seq)",
        "CREATE TABLE sendlog_attach (seq {big} NOT NULL, pos INTEGER NOT NULL,"
        " name TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (seq, pos)){norowid}",
        "CREATE INDEX sendlog_attach_sha ON sendlog_attach (sha256, seq)",
    ):
        ex.run(sql.format(**t))
    ex.run("INSERT INTO sendlog_head (id, last_seq, last_hash) VALUES (1, 0, ?)", (GENESIS,))


def _v2(ex: Executor) -> None:
    """Search by sender domain (``--sender @example.lg.jp``) without a scan."""
    ex.run("ALTER TABLE sendlog_entry ADD COLUMN sender_domain TEXT NOT NULL DEFAULT ''")
    rows = ex.run("SELECT seq, sender FROM sendlog_entry WHERE sender LIKE ?", ("%@%",))
    ex.run_many(
        "UPDATE sendlog_entry SET sender_domain = ? WHERE seq = ?",
        [(str(sender).rpartition("@")[2], seq) for seq, sender in rows],
    )
    ex.run("CREATE INDEX sendlog_entry_sdomain ON sendlog_entry (sender_domain, ts_us)")


STEPS: tuple[Step, ...] = (
    Step(1, "entries, chain head, checkpoints, recipient and attachment lookup", _v1),
    Step(2, "sender domain column and index", _v2),
)
CURRENT = STEPS[-1].version


class SchemaError(Exception):
    pass


def installed_version(ex: Executor) -> int:
    """The version recorded in the database (0 for a fresh one)."""
    rows = ex.run("SELECT version FROM sendlog_schema")
    return int(str(rows[0][0])) if rows else 0


def migrate(ex: Executor, has_schema_table: bool, target: int = CURRENT) -> tuple[int, int]:
    """Bring the schema to ``target``; (from, to).  Call inside an exclusive transaction."""
    if not has_schema_table:
        ex.run("CREATE TABLE sendlog_schema (version INTEGER NOT NULL)")
        ex.run("INSERT INTO sendlog_schema (version) VALUES (0)")
    found = installed_version(ex)
    if found > CURRENT:
        raise SchemaError(
            f"the send log has schema version {found}, newer than this dlp understands "
            f"(up to {CURRENT}); upgrade dlp on this host, or point [sendlog] at another database"
        )
    for step in STEPS:
        if found < step.version <= target:
            step.apply(ex)
            ex.run("UPDATE sendlog_schema SET version = ?", (step.version,))
    return found, max(found, min(target, CURRENT))
