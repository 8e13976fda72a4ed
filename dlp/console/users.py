"""Console accounts and login sessions, kept in a small SQLite file under ``var/``.

Why a database of our own rather than the send log's: accounts must work the same
whether the send log is SQLite or a shared PostgreSQL, and a reviewer's password hash
has no business in an audit trail that is exported to SIEM tools.

Passwords are hashed with Argon2id (argon2-cffi).  Sessions are server-side: the
browser holds a random token, the database holds only its SHA-256, so removing a user
or changing a password ends that user's sessions at once.

Wrong passwords are counted in one write transaction each (parallel guesses count one
each) and lock the account for a while (``LockoutPolicy``); a lock ends by itself, so
an attacker can keep an account locked only as long as he keeps guessing, never for
good, and every lock and unlock is written to the application log.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from dlp.sendlog.redact import scrub

USERS_DB_NAME = "console-users.db"
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
"""Argon2 hashes any length, but a megabyte 'password' is a denial-of-service attempt."""
SESSION_IDLE_SECONDS = 2 * 3600
SESSION_MAX_SECONDS = 12 * 3600
MAX_FAILED_LOGINS = 5
LOCKOUT_SECONDS = 300
LOCKOUT_MAX_SECONDS = 3600
LOCKOUT_MEMORY_SECONDS = 86400
"""A lock more than a day after the last one starts again at the first duration."""
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

log = logging.getLogger("dlp.console.users")


class Role(StrEnum):
    """Ordered: each role may do everything the ones before it may."""

    REVIEWER = "reviewer"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_ROLE_RANK = {Role.REVIEWER: 0, Role.APPROVER: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """How many wrong passwords lock an account, and for how long.

    The n-th lock within a day lasts ``first_seconds * 2**(n-1)``, at most
    ``max_seconds``: a person who mistypes is back in minutes, a guesser is slowed
    down more each round, and nobody is locked out for good (an admin can lift a
    lock at once with ``dlp console user unlock``)."""

    max_failures: int = MAX_FAILED_LOGINS
    first_seconds: float = LOCKOUT_SECONDS
    max_seconds: float = LOCKOUT_MAX_SECONDS

    def seconds(self, lockouts: int) -> float:
        # Exponent capped first: 2.0**2000 overflows a float.
        return float(min(self.max_seconds, self.first_seconds * 2.0 ** min(lockouts - 1, 64)))


class UserError(Exception):
    """A problem with an account request, phrased for the administrator."""


class LastAdminError(UserError):
    """The change would leave nobody able to manage accounts."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    created_at: str
    password_changed_at: str
    locked_until: float = 0.0
    """Epoch seconds; filled in by ``UserStore.users()`` for listings only."""

    def __repr__(self) -> str:  # never the hash, not even by accident
        return f"User(name={self.name!r}, role={self.role.value!r})"


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf_token: str
    created: float


_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('reviewer', 'approver', 'admin')),
    created_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until REAL NOT NULL DEFAULT 0,
    lockouts INTEGER NOT NULL DEFAULT 0,
    last_locked REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_name ON sessions(name);
"""
_ADDED_COLUMNS = {
    # Columns added after the first release; older files get them on open.
    "lockouts": "INTEGER NOT NULL DEFAULT 0",
    "last_locked": "REAL NOT NULL DEFAULT 0",
}


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise UserError(
            f"invalid user name {name!r}: 1-64 characters, letters, digits and . _ @ - "
            "(starting with a letter or digit)"
        )
    return name


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"password too long: at most {MAX_PASSWORD_LENGTH} characters")
    return password


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise UserError(
            f"unknown role {value!r}; expected one of: " + ", ".join(r.value for r in Role)
        ) from None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _log_unlock(name: str, locked_until: float, how: str) -> None:
    name = scrub(name)  # a user name may be any 12 digits; no number reaches a log
    log.info(
        "console account %s unlocked (%s)",
        name,
        how,
        extra={"dlp": {"event": "console_unlock", "user": name, "how": how,
                       "locked_until": _iso(locked_until)}},
    )  # fmt: skip


class UserStore:
    """Accounts and sessions.  Opens a short-lived connection per call, so it is
    safe to use from any thread of the web server's pool."""

    def __init__(
        self,
        path: Path,
        hasher: PasswordHasher | None = None,
        lockout: LockoutPolicy | None = None,
    ) -> None:
        self.path = path
        self._hasher = hasher or PasswordHasher()
        self.lockout = lockout or LockoutPolicy()
        self._dummy: str | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
            have = {r[1] for r in db.execute("PRAGMA table_info(users)")}
            for column, decl in _ADDED_COLUMNS.items():
                if column not in have:
                    db.execute(f"ALTER TABLE users ADD COLUMN {column} {decl}")
        # A read-only mount may refuse; the data is hashed anyway.
        with contextlib.suppress(OSError):
            path.chmod(0o600)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = 10000")
            yield db
        finally:
            db.close()

    # -- accounts ----------------------------------------------------------

    def add(self, name: str, password: str, role: Role) -> User:
        validate_name(name)
        validate_password(password)
        now = _now_iso()
        digest = self._hasher.hash(password)
        with self._connect() as db:
            try:
                db.execute(
                    "INSERT INTO users (name, password_hash, role, created_at, password_changed_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (name, digest, role.value, now, now),
                )
            except sqlite3.IntegrityError:
                raise UserError(f"user {name!r} already exists") from None
        return User(name, role, now, now)

    def remove(self, name: str, *, keep_an_admin: bool = False) -> None:
        """``keep_an_admin``: refuse (LastAdminError) to remove the last admin."""
        self._change(name, "DELETE FROM users WHERE name = ?", (name,), keep_an_admin)

    def _change(self, name: str, sql: str, params: tuple[object, ...], keep_an_admin: bool) -> None:
        # Check and change in one IMMEDIATE transaction: two admins demoting or
        # removing each other at the same moment must not leave no admin.
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                if keep_an_admin:
                    admins = [
                        r[0] for r in db.execute("SELECT name FROM users WHERE role = 'admin'")
                    ]
                    if admins == [name]:
                        raise LastAdminError(f"{name!r} is the last admin")
                if db.execute(sql, params).rowcount == 0:
                    raise UserError(f"no such user {name!r}")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def set_password(self, name: str, password: str) -> None:
        validate_password(password)
        digest = self._hasher.hash(password)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT locked_until FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                raise UserError(f"no such user {name!r}")
            db.execute(
                "UPDATE users SET password_hash = ?, password_changed_at = ?, failed_logins = 0,"
                " locked_until = 0, lockouts = 0 WHERE name = ?",
                (digest, _now_iso(), name),
            )
            # A new password ends every session the old one opened.
            db.execute("DELETE FROM sessions WHERE name = ?", (name,))
            db.execute("COMMIT")
        if row[0] > time.time():
            _log_unlock(name, row[0], "password")

    def unlock(self, name: str, now: float | None = None) -> bool:
        """Lift a lock and forget the failures; True when the account was locked."""
        now = time.time() if now is None else now
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT locked_until FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                raise UserError(f"no such user {name!r}")
            db.execute(
                "UPDATE users SET failed_logins = 0, locked_until = 0, lockouts = 0 WHERE name = ?",
                (name,),
            )
            db.execute("COMMIT")
        locked = bool(row[0] > now)
        if locked:
            _log_unlock(name, row[0], "admin")
        return locked

    def set_role(self, name: str, role: Role, *, keep_an_admin: bool = False) -> None:
        """``keep_an_admin``: refuse (LastAdminError) to demote the last admin."""
        sql = "UPDATE users SET role = ? WHERE name = ?"
        self._change(name, sql, (role.value, name), keep_an_admin and role is not Role.ADMIN)

    def get(self, name: str) -> User | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT name, role, created_at, password_changed_at FROM users WHERE name = ?",
                (name,),
            ).fetchone()
        return User(row[0], Role(row[1]), row[2], row[3]) if row else None

    def users(self) -> list[User]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT name, role, created_at, password_changed_at, locked_until FROM users"
                " ORDER BY name"
            ).fetchall()
        return [User(r[0], Role(r[1]), r[2], r[3], r[4]) for r in rows]

    # -- login -------------------------------------------------------------

    def authenticate(self, name: str, password: str, now: float | None = None) -> User | None:
        """The user when name and password match and the account is not locked.

        Locked, unknown and wrong all cost one Argon2 verification and answer None,
        so neither the answer nor its time tells which names exist or are locked.
        Guesses while locked are not counted: they cannot make a lock last longer."""
        now = time.time() if now is None else now
        if len(password) > MAX_PASSWORD_LENGTH:
            return None
        row = self._login_row(name)
        if row is not None and 0 < row[4] <= now:
            self.expire_locks(now, name)
            row = self._login_row(name)
        if row is None or row[4] > now:
            self._verify(self._dummy_hash, password)
            return None
        digest, role, created, changed, _ = row
        if not self._verify(digest, password):
            self._count_failure(name, now)
            return None
        # Hash before the write transaction: Argon2 must not hold the database lock.
        rehashed = self._hasher.hash(password) if self._hasher.check_needs_rehash(digest) else None
        with self._connect() as db:
            # A parallel wrong guess may have locked the account (or a new password
            # been set) while this one was being verified: the lock wins.
            cur = db.execute(
                "UPDATE users SET failed_logins = 0, lockouts = 0,"
                " password_hash = coalesce(?, password_hash)"
                " WHERE name = ? AND locked_until <= ? AND password_hash = ?",
                (rehashed, name, now, digest),
            )
        if cur.rowcount == 0:
            return None
        return User(name, Role(role), created, changed)

    def _login_row(self, name: str) -> tuple[str, str, str, str, float] | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT password_hash, role, created_at, password_changed_at, locked_until"
                " FROM users WHERE name = ?",
                (name,),
            ).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3], row[4])

    def _count_failure(self, name: str, now: float) -> None:
        # One IMMEDIATE transaction per guess, the count done by SQL: reading the
        # count in Python and writing it back let parallel guesses overwrite each
        # other and count once (issue 11).
        lock: tuple[int, int, float] | None = None
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "UPDATE users SET failed_logins = failed_logins + 1"
                    " WHERE name = ? AND locked_until <= ?"
                    " RETURNING failed_logins, lockouts, last_locked",
                    (name, now),
                ).fetchone()
                if row is not None and row[0] >= self.lockout.max_failures:
                    failures, lockouts, last_locked = row
                    streak = 1 if last_locked < now - LOCKOUT_MEMORY_SECONDS else lockouts + 1
                    until = now + self.lockout.seconds(streak)
                    db.execute(
                        "UPDATE users SET failed_logins = 0, locked_until = ?, lockouts = ?,"
                        " last_locked = ? WHERE name = ?",
                        (until, streak, now, name),
                    )
                    lock = (failures, streak, until)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        if lock is not None:
            failures, streak, until = lock
            seconds = math.ceil(until - now)
            name = scrub(name)  # a user name may be any 12 digits; no number reaches a log
            log.warning(
                "console account %s locked for %d s after %d wrong passwords (lock %d in a row)",
                name,
                seconds,
                failures,
                streak,
                extra={"dlp": {"event": "console_lock", "user": name, "failures": failures,
                               "lockouts": streak, "seconds": seconds,
                               "locked_until": _iso(until)}},
            )  # fmt: skip

    def expire_locks(self, now: float | None = None, name: str | None = None) -> list[str]:
        """End every lock whose time is up (or only ``name``'s), log each, return the names.

        Called before each sign-in and every few seconds by the console, so the log
        says when a lock ended even if nobody tries to sign in."""
        now = time.time() if now is None else now
        where = "locked_until > 0 AND locked_until <= ?" + (" AND name = ?" if name else "")
        params: tuple[object, ...] = (now, name) if name else (now,)
        with self._connect() as db:
            # SELECT then UPDATE in one write transaction: RETURNING would give the
            # new locked_until (0), and the log should say when the lock ended.
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute(f"SELECT name, locked_until FROM users WHERE {where}", params)
            ended = rows.fetchall()
            if ended:
                db.execute(f"UPDATE users SET locked_until = 0 WHERE {where}", params)
            db.execute("COMMIT")
        for n, until in ended:
            _log_unlock(n, until, "expired")
        return [n for n, _ in ended]

    @property
    def _dummy_hash(self) -> str:
        # Verifying against a dummy hash for unknown names keeps the answer time the
        # same, so the login form does not reveal which names exist.  Made on first
        # use: the CLI's user commands never need it.
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_hex(16))
        return self._dummy

    def _verify(self, digest: str, password: str) -> bool:
        try:
            return self._hasher.verify(digest, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    # -- sessions ----------------------------------------------------------

    def open_session(self, user: User, now: float | None = None) -> str:
        """A new session for a logged-in user; returns the token for the cookie."""
        now = time.time() if now is None else now
        token = secrets.token_urlsafe(32)
        with self._connect() as db:
            db.execute(
                "DELETE FROM sessions WHERE last_seen < ? OR created < ?",
                (now - SESSION_IDLE_SECONDS, now - SESSION_MAX_SECONDS),
            )
            db.execute(
                "INSERT INTO sessions (token_hash, name, csrf, created, last_seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (_token_hash(token), user.name, secrets.token_urlsafe(32), now, now),
            )
        return token

    def session(self, token: str, now: float | None = None) -> Session | None:
        """The live session for a cookie token, or None (unknown, idle or too old)."""
        if not token or len(token) > 100:
            return None
        now = time.time() if now is None else now
        key = _token_hash(token)
        with self._connect() as db:
            row = db.execute(
                "SELECT s.csrf, s.created, s.last_seen, u.name, u.role, u.created_at,"
                " u.password_changed_at FROM sessions s JOIN users u ON u.name = s.name"
                " WHERE s.token_hash = ?",
                (key,),
            ).fetchone()
            if row is None:
                return None
            csrf, created, last_seen, name, role, ucreated, changed = row
            if last_seen < now - SESSION_IDLE_SECONDS or created < now - SESSION_MAX_SECONDS:
                db.execute("DELETE FROM sessions WHERE token_hash = ?", (key,))
                return None
            # Touch at most once a minute: a page view should not always be a write.
            if now - last_seen > 60:
                db.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, key))
        return Session(User(name, Role(role), ucreated, changed), csrf, created)

    def close_session(self, token: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))


def users_db_path(var_dir: Path) -> Path:
    return var_dir / USERS_DB_NAME
