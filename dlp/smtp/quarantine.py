"""The hold queue: held messages encrypted at rest, written durably.

Two stores behind one interface (``Quarantine``): files on this host
(``FileQuarantine``, below; the default) and, when the send log is in
PostgreSQL, a table beside it (``dlp.smtp.pg_quarantine``), so that any
gateway or console can release what any gateway held.  ``open_quarantine``
picks one from the settings.

The file store:

A held message is the only place My Numbers are ever kept (DESIGN.md rule 2),
so both files of an entry are encrypted with Fernet (AES-128-CBC + HMAC):

* ``<id>.eml.enc``  the message exactly as received;
* ``<id>.meta.enc`` envelope, verdict, reasons and counts (JSON) — encrypted
  too, because a subject line can itself hold a number.

The gateway answers ``250`` for a held message only after ``hold`` returned,
and ``hold`` returns only after both files and the directory are fsync'd
(DESIGN.md rule 1).  The metadata file is written last and is what makes an
entry exist: a crash half-way leaves an orphan body that ``expire`` removes and
that nobody ever sees as held.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from dlp.config import Settings
from dlp.detect.mynumber import scrub
from dlp.model import ScanReport, Verdict

_BODY = ".eml.enc"
_META = ".meta.enc"


class QuarantineError(Exception):
    """The hold queue cannot be read or written; phrased for an administrator."""


@dataclass(frozen=True)
class HeldMessage:
    id: str
    audit_key: str
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    reasons: tuple[str, ...]
    rule: str
    subject: str
    size: int
    held_at: datetime
    findings: dict[str, int] = field(default_factory=dict)
    """Counts only: mynumber_distinct, high, medium, low, attachments."""
    mail_options: tuple[str, ...] = ()
    client_address: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "audit_key": self.audit_key,
            "message_id": self.message_id,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "reasons": list(self.reasons),
            "rule": self.rule,
            "subject": self.subject,
            "size": self.size,
            "held_at": self.held_at.isoformat(),
            "findings": dict(self.findings),
            "mail_options": list(self.mail_options),
            "client_address": self.client_address,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> HeldMessage:
        def strs(key: str) -> tuple[str, ...]:
            value = data.get(key) or []
            return tuple(str(x) for x in value) if isinstance(value, list) else ()

        findings = data.get("findings") or {}
        return cls(
            id=str(data["id"]),
            audit_key=str(data.get("audit_key", "")),
            message_id=str(data.get("message_id", "")),
            sender=str(data.get("sender", "")),
            recipients=strs("recipients"),
            reasons=strs("reasons"),
            rule=str(data.get("rule", "")),
            subject=str(data.get("subject", "")),
            size=int(str(data.get("size", 0))),
            held_at=datetime.fromisoformat(str(data["held_at"])),
            findings={str(k): int(v) for k, v in findings.items()}
            if isinstance(findings, dict)
            else {},
            mail_options=strs("mail_options"),
            client_address=str(data.get("client_address", "")),
        )


class Quarantine(abc.ABC):
    """What the gateway, ``dlp quarantine``, release and the console use."""

    retention: timedelta

    def hold(
        self,
        raw: bytes,
        *,
        audit_key: str,
        sender: str,
        recipients: Sequence[str],
        mail_options: Sequence[str],
        verdict: Verdict,
        report: ScanReport,
        client_address: str = "",
    ) -> HeldMessage:
        """Store the message durably; return only once it survives a crash."""
        held = describe(
            raw,
            audit_key=audit_key,
            sender=sender,
            recipients=recipients,
            mail_options=mail_options,
            verdict=verdict,
            report=report,
            client_address=client_address,
        )
        meta = json.dumps(held.to_json(), ensure_ascii=False).encode("utf-8")
        self._store(held, meta, raw)
        return held

    @abc.abstractmethod
    def _store(self, held: HeldMessage, meta: bytes, raw: bytes) -> None:
        """Write the description and the message, encrypted; durable on return."""

    @abc.abstractmethod
    def claim(
        self, held_id: str, stale_after: float = 600.0
    ) -> contextlib.AbstractContextManager[None]:
        """Exclusive use of one held message (a release, a discard).

        Two reviewers pressing "release" at once must not deliver it twice.  A
        claim left behind by a crashed process is taken over after ``stale_after``
        seconds (longer than any release can take: connect + 3 next-hop timeouts).
        Raises QuarantineError when someone else holds it.
        """

    @abc.abstractmethod
    def delete(self, held_id: str) -> bool:
        """Remove an entry; True when it existed."""

    @abc.abstractmethod
    def expire(self, now: datetime | None = None) -> int:
        """Delete held mail older than the retention period; how many."""

    @abc.abstractmethod
    def list(self) -> list[HeldMessage]:
        """Every held message, oldest first."""

    @abc.abstractmethod
    def get(self, held_id: str) -> HeldMessage | None: ...

    @abc.abstractmethod
    def read(self, held_id: str) -> bytes:
        """The message exactly as received; QuarantineError when there is none."""

    @abc.abstractmethod
    def depth(self) -> int:
        """How many messages are held."""


def describe(
    raw: bytes,
    *,
    audit_key: str,
    sender: str,
    recipients: Sequence[str],
    mail_options: Sequence[str],
    verdict: Verdict,
    report: ScanReport,
    client_address: str,
) -> HeldMessage:
    """The metadata of a message about to be held, with a fresh id (both stores)."""
    now = datetime.now(UTC)
    held_id = now.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(6)
    s = report.mynumber
    return HeldMessage(
        id=held_id,
        audit_key=audit_key,
        # Shown by `dlp quarantine` and the console: the numbers stay in the
        # (encrypted) message only.
        message_id=scrub(report.message_id),
        sender=sender,
        recipients=tuple(recipients),
        reasons=verdict.reasons or (verdict.rule,),
        rule=verdict.rule,
        subject=scrub(report.subject),
        size=len(raw),
        held_at=now,
        findings={
            "mynumber_distinct": s.distinct,
            "high": s.high,
            "medium": s.medium,
            "low": s.low,
            "attachments": len(report.attachments),
        },
        mail_options=tuple(mail_options),
        client_address=client_address,
    )


class FileQuarantine(Quarantine):
    def __init__(self, directory: Path, key: bytes, retention_days: int) -> None:
        self.directory = directory
        self._fernet = Fernet(key)
        self.retention = timedelta(days=retention_days)

    # -- writing ---------------------------------------------------------

    def _store(self, held: HeldMessage, meta: bytes, raw: bytes) -> None:
        """Both files fsync'd, then the directory: on disk when this returns."""
        held_id = held.id
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_durably(self.directory / (held_id + _BODY), self._fernet.encrypt(raw))
            _write_durably(self.directory / (held_id + _META), self._fernet.encrypt(meta))
            _fsync_dir(self.directory)
        except OSError as exc:
            self._remove(held_id)
            raise QuarantineError(f"{self.directory}: cannot write held message: {exc}") from exc

    @contextlib.contextmanager
    def claim(self, held_id: str, stale_after: float = 600.0) -> Iterator[None]:
        """An exclusive lock file beside the entry (O_EXCL), see ``Quarantine.claim``."""
        check_id(held_id)
        lock = self.directory / f".{held_id}.claim"
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            try:
                age = time.time() - lock.stat().st_mtime
            except FileNotFoundError:
                age = stale_after + 1
            if age <= stale_after:
                raise claimed_elsewhere(held_id) from None
            lock.unlink(missing_ok=True)
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                # Another process took over the stale claim first.
                raise claimed_elsewhere(held_id) from None
        try:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            yield
        finally:
            lock.unlink(missing_ok=True)

    def delete(self, held_id: str) -> bool:
        check_id(held_id)
        existed = (self.directory / (held_id + _META)).exists()
        self._remove(held_id)
        with contextlib.suppress(OSError):
            _fsync_dir(self.directory)
        return existed

    def expire(self, now: datetime | None = None) -> int:
        """Delete held mail older than the retention period (and orphan bodies)."""
        now = now or datetime.now(UTC)
        removed = 0
        for held in self.list():
            if now - held.held_at > self.retention:
                self.delete(held.id)
                removed += 1
        if self.directory.is_dir():
            for body in self.directory.glob("*" + _BODY):
                held_id = body.name[: -len(_BODY)]
                if not (self.directory / (held_id + _META)).exists():
                    # An interrupted hold: never answered 250, so not a held message.
                    with contextlib.suppress(OSError):
                        if now.timestamp() - body.stat().st_mtime > 3600:
                            body.unlink()
        return removed

    # -- reading ---------------------------------------------------------

    def list(self) -> list[HeldMessage]:
        if not self.directory.is_dir():
            return []
        out = []
        for meta in sorted(self.directory.glob("*" + _META)):
            held = self.get(meta.name[: -len(_META)])
            if held is not None:
                out.append(held)
        return out

    def get(self, held_id: str) -> HeldMessage | None:
        check_id(held_id)
        try:
            data = (self.directory / (held_id + _META)).read_bytes()
        except FileNotFoundError:
            return None
        return HeldMessage.from_json(json.loads(self._decrypt(data, held_id)))

    def read(self, held_id: str) -> bytes:
        check_id(held_id)
        try:
            data = (self.directory / (held_id + _BODY)).read_bytes()
        except FileNotFoundError:
            raise QuarantineError(f"no held message {held_id}") from None
        return self._decrypt(data, held_id)

    def depth(self) -> int:
        if not self.directory.is_dir():
            return 0
        return sum(1 for _ in self.directory.glob("*" + _META))

    # ------------------------------------------------------------------

    def _decrypt(self, data: bytes, held_id: str) -> bytes:
        return decrypt(self._fernet, data, held_id)

    def _remove(self, held_id: str) -> None:
        # Metadata first: from then on the entry no longer exists for anyone.
        for suffix in (_META, _BODY):
            with contextlib.suppress(FileNotFoundError):
                (self.directory / (held_id + suffix)).unlink()


def decrypt(fernet: Fernet, data: bytes, held_id: str) -> bytes:
    try:
        return fernet.decrypt(data)
    except InvalidToken:
        raise QuarantineError(
            f"held message {held_id} cannot be decrypted: wrong [quarantine] encryption_key?"
        ) from None


def claimed_elsewhere(held_id: str) -> QuarantineError:
    """What ``claim`` raises when another release or discard has the message."""
    return QuarantineError(f"held message {held_id} is being released or deleted by someone else")


def check_id(held_id: str) -> None:
    # Ids come from the command line and the console: never let one name a path.
    if not held_id or not all(c.isalnum() or c == "-" for c in held_id):
        raise QuarantineError(f"not a held-message id: {held_id!r}")


def open_quarantine(settings: Settings) -> Quarantine:
    """The hold queue of these settings, creating its key on first use.

    With ``[sendlog] backend = "postgresql"`` the queue is a table in the same
    database, and the key must come from the configuration: a key generated
    on one gateway's disk would leave every other gateway and console unable
    to read what it held.
    """
    key = settings.quarantine.encryption_key.encode("ascii")
    if settings.sendlog.backend == "postgresql":
        from dlp.smtp.pg_quarantine import open_pg_quarantine

        return open_pg_quarantine(settings)
    if not key:
        key = _load_or_create_key(settings.var_dir / "quarantine.key")
    try:
        return FileQuarantine(settings.quarantine_dir, key, settings.quarantine.retention_days)
    except ValueError as exc:
        raise QuarantineError(
            f"[quarantine] encryption_key is not a valid Fernet key: {exc}"
        ) from None


def _load_or_create_key(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, Fernet.generate_key() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link() fails if another gateway process won the race; use its key then.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    _fsync_dir(path.parent)
    return path.read_bytes().strip()


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        # A half-written copy (disk full) would outlive the retention period:
        # expire() looks only at finished entries.
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
