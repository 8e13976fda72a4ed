"""The hold queue: held messages encrypted at rest, written durably.

Two stores behind one interface (``Quarantine``): files on this host
(``FileQuarantine``, below; the default) and, when the send log is in
PostgreSQL, a table beside it (``dlp.holdqueue.pg_store``), so that any
gateway or console can release what any gateway held.  ``open_quarantine``
picks one from the settings.

The file store:

A held message is the only place My Numbers are ever kept (nothing else the filter
writes may hold one),
so both files of an entry are encrypted with Fernet (AES-128-CBC + HMAC):

* ``<id>.eml.enc``  the message exactly as received;
* ``<id>.meta.enc`` envelope, verdict, reasons and counts (JSON) — encrypted
  too, because a subject line can itself hold a number;
* ``<id>.pending.enc`` the same metadata while the hold is not yet confirmed.

Held in two steps, in both stores (issue 11): ``hold`` writes a *pending*
copy (fsync'd), the gateway writes the send-log entry, and ``commit`` makes
the copy releasable (an atomic rename here, fsync'd; a flag in PostgreSQL).
The gateway answers ``250`` only after ``commit`` (after a 250 the MTA forgets the
mail, so it must be safe on disk first).  A
pending copy is never listed, shown or released: when the send-log write
fails and removing the copy fails too, the copy stays pending, the MTA's
retry is answered by a new attempt, and retention removes the leftover
(recorded in the send log) — a reviewer never sees two copies to release.

The id is not random: it is an HMAC (keyed with the queue's encryption key,
so it says nothing about the content) of the audit key and the message's
SHA-256.  Postfix's retry of one queue file carries the same queue id
(XFORWARD IDENT) and the same bytes, so it lands on the same copy: a pending
one is rewritten, a committed one (the first attempt's ``250`` was lost, or
its ``451`` came after the commit landed) is reused as it is.  Without an
IDENT the audit key is random per attempt and only the pending state
protects.

Every change to one id happens under its claim (``claim``): holding,
releasing, discarding and expiring it never interleave.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from dlp.config import Settings
from dlp.detect.mynumber import scrub
from dlp.model import ScanReport, Verdict

_BODY = ".eml.enc"
_META = ".meta.enc"
_PENDING = ".pending.enc"

PENDING_GRACE = timedelta(hours=1)
"""How long a pending (unconfirmed) copy may wait for its commit before
retention removes it: far longer than one SMTP transaction can take."""


class QuarantineError(Exception):
    """The hold queue cannot be read or written; phrased for an administrator."""


class QuarantineStorageError(QuarantineError):
    """The queue's storage itself - its directory, its key file, its database -
    cannot be used: the administrator's to fix, not a matter of one message
    (``dlp quarantine`` exits 2 for it, as for a configuration problem)."""


class ClaimedElsewhere(QuarantineError):
    """Another release, discard, hold or expiry has this message right now."""


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
    pending: bool = False
    """Written but not confirmed (no send-log entry yet): never released."""
    kind: str = "hold"
    """hold | confirm | delay | approve: who decides (issue 13)."""
    expires_at: datetime | None = None
    """delay: delivered then; confirm: ``on_timeout`` applies then; else None."""
    on_timeout: str = ""
    waiting_for: tuple[str, ...] = ()
    """Who may decide: the sender (confirm, delay) or the approvers (approve)."""
    meant: dict[str, str] = field(default_factory=dict)
    """Lookalike recipient -> the same local part at the own/partner domain it resembles."""
    notice_ja: str = ""
    notice_en: str = ""
    """Why it is held, in plain words for the notice (no numbers)."""
    reminded: bool = False
    escalated: bool = False
    notice_failed: bool = False
    """The notice could not be sent: the timers try again, and an unanswered
    confirm goes to the staff rather than being discarded unasked."""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
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
        if self.pending:
            out["pending"] = True
        # Who decides and until when (`dlp quarantine list --json`, issue 13).
        out.update(
            kind=self.kind,
            waiting_for=list(self.waiting_for),
            expires_at=self.expires_at.isoformat() if self.expires_at else None,
        )
        if self.kind != "hold":
            out.update(
                on_timeout=self.on_timeout,
                meant=dict(self.meant),
                notice_ja=self.notice_ja,
                notice_en=self.notice_en,
                reminded=self.reminded,
                escalated=self.escalated,
                notice_failed=self.notice_failed,
            )
        return out

    @classmethod
    def from_json(cls, data: dict[str, object]) -> HeldMessage:
        def strs(key: str) -> tuple[str, ...]:
            value = data.get(key) or []
            return tuple(str(x) for x in value) if isinstance(value, list) else ()

        findings = data.get("findings") or {}
        meant = data.get("meant") or {}
        expires = data.get("expires_at")
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
            pending=data.get("pending") is True,
            kind=str(data.get("kind") or "hold"),
            expires_at=datetime.fromisoformat(str(expires)) if expires else None,
            on_timeout=str(data.get("on_timeout", "")),
            waiting_for=strs("waiting_for"),
            meant={str(k): str(v) for k, v in meant.items()} if isinstance(meant, dict) else {},
            notice_ja=str(data.get("notice_ja", "")),
            notice_en=str(data.get("notice_en", "")),
            reminded=data.get("reminded") is True,
            escalated=data.get("escalated") is True,
            notice_failed=data.get("notice_failed") is True,
        )


class Quarantine(abc.ABC):
    """What the gateway, ``dlp quarantine``, release and the console use."""

    retention: timedelta
    _id_key: bytes

    def hold_id(self, audit_key: str, raw: bytes, part: str = "") -> str:
        """The id of this message's copy: the same for the MTA's retry of it.  ``part``
        tells apart two copies of one message held at once (the lookalike recipients'
        and the others', each with its own decision)."""
        digest = hashlib.sha256(raw).digest()
        data = audit_key.encode("utf-8", "replace") + b"\0" + digest
        if part:
            data += b"\0" + part.encode("utf-8")
        return hmac.new(self._id_key, data, "sha256").hexdigest()[:24]

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
        waiting_for: Sequence[str] = (),
        meant: dict[str, str] | None = None,
        part: str = "",
    ) -> HeldMessage:
        """Store the message durably as a *pending* copy; ``commit`` makes it releasable.
        ``part``: see ``hold_id``.

        When a committed copy of the same message (same audit key and bytes)
        exists already, that copy is returned unchanged: the caller records and
        commits it again, and no second copy is made."""
        held = describe(
            raw,
            held_id=self.hold_id(audit_key, raw, part),
            audit_key=audit_key,
            sender=sender,
            recipients=recipients,
            mail_options=mail_options,
            verdict=verdict,
            report=report,
            client_address=client_address,
        )
        terms = verdict.terms
        if terms is not None and verdict.action.sender_in_loop:
            held = replace(
                held,
                kind=verdict.action.value,
                expires_at=held.held_at + timedelta(seconds=terms.wait_seconds)
                if terms.wait_seconds
                else None,
                on_timeout=terms.on_timeout,
                waiting_for=tuple(waiting_for),
                meant=dict(meant or {}),
                notice_ja=terms.notice_ja,
                notice_en=terms.notice_en,
            )
        meta = json.dumps(held.to_json(), ensure_ascii=False).encode("utf-8")
        return self._store(held, meta, raw)

    def update(self, held: HeldMessage) -> None:
        """Rewrite a committed entry's metadata (a reminder sent, handed to the staff).

        The caller holds the entry's claim."""
        meta = json.dumps(held.to_json(), ensure_ascii=False).encode("utf-8")
        self._update(held.id, meta)

    @abc.abstractmethod
    def _update(self, held_id: str, meta: bytes) -> None:
        """Replace the metadata of a committed entry, durably."""

    @abc.abstractmethod
    def _store(self, held: HeldMessage, meta: bytes, raw: bytes) -> HeldMessage:
        """Write a pending copy, encrypted, durable on return (or return the committed one)."""

    @abc.abstractmethod
    def commit(self, held_id: str) -> None:
        """Make a pending copy releasable, durably; nothing to do when it is already.

        Raises QuarantineError when there is no copy or it is claimed (being
        expired): the caller then tempfails and the MTA retries."""

    @abc.abstractmethod
    def claim(
        self, held_id: str, stale_after: float = 600.0
    ) -> contextlib.AbstractContextManager[None]:
        """Exclusive use of one held message (a hold, release, discard or expiry).

        Two reviewers pressing "release" at once must not deliver it twice:
        exactly one gets the claim, also when they race to take over a claim
        left by a crashed process.  The file store's claim dies with its
        holder; the PostgreSQL one is taken over after ``stale_after`` seconds
        (longer than any release can take: connect + 3 next-hop timeouts).
        Raises QuarantineError when someone else holds it.
        """

    @abc.abstractmethod
    def delete(self, held_id: str) -> bool:
        """Remove an entry, pending or not; True when it existed."""

    @abc.abstractmethod
    def expired(self, now: datetime | None = None) -> list[HeldMessage]:
        """Copies retention must remove: committed ones held longer than the
        retention period, pending ones older than ``PENDING_GRACE``.  Callers
        record each in the send log before deleting it
        (``dlp.holdqueue.decisions.expire_held``)."""

    @abc.abstractmethod
    def list(self) -> list[HeldMessage]:
        """Every held (committed) message, oldest first."""

    @abc.abstractmethod
    def get(self, held_id: str, *, pending: bool = False) -> HeldMessage | None:
        """A held message; a pending copy only when ``pending`` is asked for."""

    @abc.abstractmethod
    def read(self, held_id: str) -> bytes:
        """The message exactly as received; QuarantineError when there is none."""

    @abc.abstractmethod
    def depth(self) -> int:
        """How many messages are held."""

    def check_writable(self) -> None:
        """Raise QuarantineError (the path, and why) when the configured place cannot
        hold anything: found out when the gateway starts, not at the first message it
        must hold.  A database that is down is an outage, not a setting: the gateway
        starts, and what it must hold is answered 4xx until the database is back, as
        for the send log (so nothing here for the PostgreSQL queue)."""
        return None


def describe(
    raw: bytes,
    *,
    held_id: str,
    audit_key: str,
    sender: str,
    recipients: Sequence[str],
    mail_options: Sequence[str],
    verdict: Verdict,
    report: ScanReport,
    client_address: str,
) -> HeldMessage:
    """The metadata of a message about to be held (both stores)."""
    now = datetime.now(UTC)
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
        self._id_key = key
        self.retention = timedelta(days=retention_days)

    def check_writable(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, probe = tempfile.mkstemp(prefix=".probe-", dir=self.directory)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise storage_error(self.directory, "hold messages there", exc) from exc

    # -- writing ---------------------------------------------------------

    def _store(self, held: HeldMessage, meta: bytes, raw: bytes) -> HeldMessage:
        """Body and pending metadata fsync'd, then the directory: on disk when this returns."""
        held_id = held.id
        existing = self.get(held_id)
        if existing is not None:
            return existing  # the MTA's retry of a message already held
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise storage_error(self.directory, "write held message", exc) from exc
        with self.claim(held_id):
            try:
                _write_durably(self.directory / (held_id + _BODY), self._fernet.encrypt(raw))
                _write_durably(self.directory / (held_id + _PENDING), self._fernet.encrypt(meta))
                _fsync_dir(self.directory)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    self._remove(held_id)
                raise storage_error(self.directory, "write held message", exc) from exc
        return held

    def _update(self, held_id: str, meta: bytes) -> None:
        check_id(held_id)
        path = self.directory / (held_id + _META)
        if not path.exists():
            raise QuarantineError(f"no held message {held_id}")
        try:
            _write_durably(path, self._fernet.encrypt(meta))
            _fsync_dir(self.directory)
        except OSError as exc:
            raise storage_error(self.directory, f"update {held_id}", exc) from exc

    def commit(self, held_id: str) -> None:
        """Rename the pending metadata to the held one (atomic), then fsync the directory."""
        check_id(held_id)
        meta, pending = self.directory / (held_id + _META), self.directory / (held_id + _PENDING)
        if meta.exists() and not pending.exists():
            return
        with self.claim(held_id):
            try:
                os.replace(pending, meta)
            except FileNotFoundError:
                if not meta.exists():
                    raise QuarantineError(f"no held message {held_id}") from None
            except OSError as exc:
                raise storage_error(self.directory, "confirm hold", exc) from exc
            try:
                _fsync_dir(self.directory)
            except OSError as exc:
                raise storage_error(self.directory, "confirm hold", exc) from exc

    @contextlib.contextmanager
    def claim(self, held_id: str, stale_after: float = 600.0) -> Iterator[None]:
        """An exclusive ``flock`` on a lock file beside the entry, see ``Quarantine.claim``.

        The kernel drops the lock when its holder dies, so a crashed release
        leaves no stale claim to take over and there is no "is it stale?"
        check that two reviewers could both pass: whoever locks first wins
        (``stale_after`` is for the shared PostgreSQL queue, which cannot see
        whether the holder is alive).  A lock file that was unlinked between
        our ``open`` and our ``flock`` (its holder finished) is not the claim
        any more, so the inode is checked after locking and the open retried.
        """
        check_id(held_id)
        lock = self.directory / f".{held_id}.claim"
        while True:
            try:
                self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
            except OSError as exc:
                raise storage_error(self.directory, f"claim {held_id}", exc) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise claimed_elsewhere(held_id) from None
            try:
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            yield
        finally:
            # Unlink while still locked: whoever opened this inode meanwhile
            # sees it is gone (the inode check) and starts over on a new file.
            with contextlib.suppress(OSError):
                lock.unlink(missing_ok=True)
            os.close(fd)

    def delete(self, held_id: str) -> bool:
        """Remove both files (or raise QuarantineError): a copy that stays must be known."""
        check_id(held_id)
        try:
            existed = any(
                (self.directory / (held_id + suffix)).exists() for suffix in (_META, _PENDING)
            )
            self._remove(held_id)
            if self.directory.is_dir():
                _fsync_dir(self.directory)
        except OSError as exc:
            raise storage_error(self.directory, "delete held message", exc) from exc
        return existed

    def expired(self, now: datetime | None = None) -> list[HeldMessage]:
        now = now or datetime.now(UTC)
        names = self._names()
        if not names:
            return []
        out = [h for h in self.list() if now - h.held_at > self.retention]
        for name in sorted(n for n in names if n.endswith(_PENDING)):
            held_id = name[: -len(_PENDING)]
            with contextlib.suppress(FileNotFoundError):
                held = self.get(held_id, pending=True)
                if held is not None and held.pending and now - held.held_at > PENDING_GRACE:
                    out.append(held)
        for body in self.directory.glob("*" + _BODY):
            held_id = body.name[: -len(_BODY)]
            if not any(
                (self.directory / (held_id + suffix)).exists() for suffix in (_META, _PENDING)
            ):
                # An interrupted write: never answered 250 nor recorded, not a held message.
                with contextlib.suppress(OSError):
                    if now.timestamp() - body.stat().st_mtime > PENDING_GRACE.total_seconds():
                        body.unlink()
        return out

    # -- reading ---------------------------------------------------------

    def list(self) -> list[HeldMessage]:
        out = []
        for name in self._names():
            if not name.endswith(_META) or name.startswith("."):
                continue
            with contextlib.suppress(FileNotFoundError):
                held = self.get(name[: -len(_META)])
                if held is not None:
                    out.append(held)
        # Ids are keyed hashes, not times: oldest first by the recorded time.
        return sorted(out, key=lambda h: (h.held_at, h.id))

    def get(self, held_id: str, *, pending: bool = False) -> HeldMessage | None:
        check_id(held_id)
        data = self._read(held_id + _META)
        if data is None:
            if not pending:
                return None
            data = self._read(held_id + _PENDING)
            if data is None:
                return None
            found = HeldMessage.from_json(json.loads(self._decrypt(data, held_id)))
            return replace(found, pending=True)
        return HeldMessage.from_json(json.loads(self._decrypt(data, held_id)))

    def read(self, held_id: str) -> bytes:
        check_id(held_id)
        data = self._read(held_id + _BODY)
        if data is None or self._read(held_id + _META) is None:
            raise QuarantineError(f"no held message {held_id}")  # pending: not releasable
        return self._decrypt(data, held_id)

    def depth(self) -> int:
        return sum(1 for n in self._names() if n.endswith(_META) and not n.startswith("."))

    def _names(self) -> Sequence[str]:
        """The queue directory's file names; none before the first hold.

        Not ``glob``, which takes a directory it cannot read (or a plain file in
        its place) for an empty one: the queue would look empty, not broken."""
        try:
            return os.listdir(self.directory)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise storage_error(self.directory, "read the hold queue", exc) from None

    def _read(self, name: str) -> bytes | None:
        """One file of the queue, None if there is no such file."""
        try:
            return (self.directory / name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise storage_error(self.directory, "read the hold queue", exc) from None

    # ------------------------------------------------------------------

    def _decrypt(self, data: bytes, held_id: str) -> bytes:
        return decrypt(self._fernet, data, held_id)

    def _remove(self, held_id: str) -> None:
        # Metadata first: from then on the entry no longer exists for anyone.
        for suffix in (_META, _PENDING, _BODY):
            with contextlib.suppress(FileNotFoundError):
                (self.directory / (held_id + suffix)).unlink()


def decrypt(fernet: Fernet, data: bytes, held_id: str) -> bytes:
    try:
        return fernet.decrypt(data)
    except InvalidToken:
        raise QuarantineStorageError(
            f"held message {held_id} cannot be decrypted: wrong [quarantine] encryption_key?"
        ) from None


def storage_error(path: Path, doing: str, exc: OSError) -> QuarantineStorageError:
    """One line naming the path, what could not be done and why."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENOTDIR:
        # "Not a directory" for var/quarantine.key says little: name the file in the way.
        blocker = next((p for p in (path, *path.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            reason += f" ({blocker} is a file, not a directory)"
    return QuarantineStorageError(f"{path}: cannot {doing}: {reason}")


def claimed_elsewhere(held_id: str) -> ClaimedElsewhere:
    """What ``claim`` raises when another release or discard has the message."""
    return ClaimedElsewhere(f"held message {held_id} is being released or deleted by someone else")


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
        from dlp.holdqueue.pg_store import open_pg_quarantine

        return open_pg_quarantine(settings)
    if key:
        try:
            return FileQuarantine(settings.quarantine_dir, key, settings.quarantine.retention_days)
        except ValueError as exc:
            raise QuarantineStorageError(
                f"[quarantine] encryption_key is not a valid Fernet key: {exc}"
            ) from None
    path = settings.var_dir / "quarantine.key"
    try:
        key = _load_or_create_key(path)
    except OSError as exc:
        raise storage_error(path, "read or create the hold queue's key", exc) from None
    try:
        return FileQuarantine(settings.quarantine_dir, key, settings.quarantine.retention_days)
    except ValueError:
        # Not the setting (it is empty): the file the key was generated into.
        raise QuarantineStorageError(
            f"{path}: not a valid hold-queue key (a Fernet key: 44 characters of "
            "url-safe base64). Restore the file from your backup: mail held with the key "
            f"cannot be read without it. Only if the hold queue ({settings.quarantine_dir}) "
            "is empty, remove the file and a new key is made."
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
