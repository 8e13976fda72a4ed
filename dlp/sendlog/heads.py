"""Chain heads kept outside the database, so that a full rewrite is caught.

The hash chain (``chain.py``) catches any edit, deletion or insertion, but not
someone with write access to the database who recomputes *every* hash from the
edited entry on and updates the chain head to match.  Against that:

* At every retention run and every ``dlp log verify`` the head (entry number,
  hash, time, how many entries the chain holds) is written as one JSON line to
  the application log, which lives elsewhere (journald, a syslog server).
* With a key kept outside the database (``[sendlog] head_key_file``, made by
  ``dlp log keygen``) the head is also signed (HMAC-SHA256) and appended to an
  append-only file (``[sendlog] heads_file``).  Each line also signs the previous
  line's HMAC, so a line removed from the middle or reordered is noticed.
  Someone who can change the database but not read the key cannot write a line
  that verifies.

A head is signed only after the chain up to it verifies and every earlier signed
head still agrees with the chain.  ``check_heads`` holds each signed head
against the chain: the entry it names must still have that hash, or have been
purged legitimately - by a purge that a later signed line records, or because
it is older than the retention period anyway.  A recomputed chain fails that
test at the first signed head after the edit, and the report names the signed
line, the entry, the hash signed and the hash found.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import hmac
import json
import logging
import os
import socket
import stat
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dlp.sendlog.chain import ChainState, Checkpoint, EntryMark, VerifyResult, canonical_json
from dlp.sendlog.record import format_time, parse_time
from dlp.sendlog.store import ChainReader, SendLogStore

log = logging.getLogger("dlp.sendlog.heads")

KEY_BYTES = 32
FORMAT = 1
"""Version of a signed line's fields; a reader refuses versions it does not know."""


class HeadKeyError(Exception):
    """The head key cannot be used; phrased for an administrator, says how to fix it."""


class HeadsFileError(Exception):
    """The signed-heads file cannot be read or written (I/O, permissions)."""


# ---------------------------------------------------------------------------
# The key


@dataclass(frozen=True, slots=True)
class HeadKey:
    secret: bytes
    path: str

    @property
    def key_id(self) -> str:
        """Names the key in each signed line without revealing it: a line signed with
        another key is told apart from a forged one."""
        return hashlib.sha256(b"dlp sendlog head key id\n" + self.secret).hexdigest()

    def __repr__(self) -> str:  # never print the secret
        return f"HeadKey(path={self.path!r}, key_id={self.key_id[:16]})"


def load_key(path: str | os.PathLike[str]) -> HeadKey:
    """The key in ``path``; refuses a missing, unreadable or shared file."""
    p = Path(path)
    howto = f"create one with `dlp log keygen {p}` as the user dlp runs as"
    try:
        st = p.stat()
    except FileNotFoundError:
        raise HeadKeyError(f"{p}: head key file not found; {howto}") from None
    except OSError as exc:
        raise HeadKeyError(f"{p}: cannot read the head key: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise HeadKeyError(f"{p}: the head key must be a regular file; {howto}")
    if st.st_mode & 0o077:
        raise HeadKeyError(
            f"{p}: the head key is open to group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); whoever reads it can forge signed heads. "
            f"Make it readable only by the user dlp runs as: chmod 600 {p}"
        )
    try:
        text = p.read_text(encoding="ascii").strip()
    except PermissionError:
        raise HeadKeyError(
            f"{p}: cannot read the head key: permission denied (run as the user that owns it, "
            "the one dlp runs as)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HeadKeyError(f"{p}: cannot read the head key: {exc}") from None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise HeadKeyError(f"{p}: not a head key (expected hex digits); {howto}") from None
    if len(secret) < KEY_BYTES:
        raise HeadKeyError(
            f"{p}: the head key is too short ({len(secret)} bytes, need {KEY_BYTES}); {howto}"
        )
    return HeadKey(secret, str(p))


def generate_key(path: str | os.PathLike[str]) -> HeadKey:
    """Write a new random key to ``path`` (mode 0600); never overwrites one."""
    p = Path(path)
    secret = os.urandom(KEY_BYTES)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise HeadKeyError(
            f"{p} already exists; not overwritten: heads signed with it could no longer be "
            "checked. To change keys, move the old key and heads file aside together"
        ) from None
    except OSError as exc:
        raise HeadKeyError(f"{p}: cannot create the head key: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secret.hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return HeadKey(secret, str(p))


# ---------------------------------------------------------------------------
# A head and its signature


@dataclass(frozen=True, slots=True)
class SignedHead:
    """The chain head as recorded: in the application log and, signed, in the heads file."""

    seq: int
    """The newest entry's number (0: empty log)."""
    hash: str
    entries: int
    """Entries the chain holds (written minus purged)."""
    purged_through: int
    purged_hash: str
    """The purge checkpoint: the last purged entry and its hash."""
    entry_time: str
    """When the newest entry was recorded (decides whether a later purge may remove it)."""
    at: str
    """When the head was taken."""
    source: str
    """retention | purge | verify | console"""
    host: str
    key_id: str = ""
    prev: str = ""
    """The previous signed line's ``hmac`` ('' for the first)."""
    hmac: str = ""

    @property
    def signed(self) -> bool:
        return bool(self.hmac)

    def signed_fields(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("hmac")
        return {"v": FORMAT, **d}

    def to_json(self) -> dict[str, Any]:
        if not self.signed:
            d = asdict(self)
            for k in ("key_id", "prev", "hmac"):
                d.pop(k)
            return d
        return {**self.signed_fields(), "hmac": self.hmac}

    @classmethod
    def from_json(cls, d: Any) -> SignedHead:
        if not isinstance(d, dict) or d.get("v") != FORMAT:
            raise ValueError("not a signed head of a known format")
        kw = {k: v for k, v in d.items() if k != "v"}
        names = set(cls.__dataclass_fields__)
        if set(kw) != names:
            raise ValueError("fields missing or unknown")
        for k in ("seq", "entries", "purged_through"):
            if not isinstance(kw[k], int) or isinstance(kw[k], bool):
                raise ValueError(f"{k} is not a number")
        for k in names - {"seq", "entries", "purged_through"}:
            if not isinstance(kw[k], str):
                raise ValueError(f"{k} is not text")
        return cls(**kw)


def take_head(state: ChainState, source: str, now: datetime) -> SignedHead:
    cp = state.checkpoint
    return SignedHead(
        seq=state.head_seq,
        hash=state.head_hash,
        entries=state.entries,
        purged_through=cp.through_seq,
        purged_hash=cp.last_hash,
        entry_time=state.head_time,
        at=format_time(now),
        source=source,
        host=socket.gethostname(),
    )


def _mac(key: HeadKey, head: SignedHead) -> str:
    return hmac.new(key.secret, canonical_json(head.signed_fields()).encode(), "sha256").hexdigest()


def sign(head: SignedHead, key: HeadKey, prev: str) -> SignedHead:
    unsigned = replace(head, key_id=key.key_id, prev=prev, hmac="")
    return replace(unsigned, hmac=_mac(key, unsigned))


def signature_ok(head: SignedHead, key: HeadKey) -> bool:
    return hmac.compare_digest(_mac(key, head), head.hmac)


# ---------------------------------------------------------------------------
# The heads file


@dataclass(frozen=True, slots=True)
class HeadLine:
    number: int
    """1-based line number in the file."""
    raw: str
    head: SignedHead | None
    error: str = ""
    """Why ``head`` is None."""

    @property
    def link(self) -> str:
        """What the next line's ``prev`` must be."""
        if self.head is not None:
            return self.head.hmac
        return hashlib.sha256(self.raw.encode("utf-8", "surrogateescape")).hexdigest()


def _parse(text: str) -> list[HeadLine]:
    out = []
    for i, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        try:
            out.append(HeadLine(i, raw, SignedHead.from_json(json.loads(raw))))
        except (ValueError, TypeError) as exc:
            out.append(HeadLine(i, raw, None, str(exc)))
    return out


class HeadsFile:
    """The append-only file of signed heads.  Appends take an exclusive lock, so the
    retention run and a ``dlp log verify`` at the same moment chain their lines."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> list[HeadLine]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise HeadsFileError(
                f"{self.path}: cannot read the signed heads: {exc.strerror}"
            ) from None
        return _parse(data.decode("utf-8", "surrogateescape"))

    def append(self, head: SignedHead, key: HeadKey) -> tuple[SignedHead, int]:
        """Sign ``head`` after the file's last line and append it durably; the signed
        head and its line number."""
        created = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise HeadsFileError(
                f"{self.path}: cannot record the signed head: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0) if size else b""
            text = data.decode("utf-8", "surrogateescape")
            lines = _parse(text)
            signed = sign(head, key, lines[-1].link if lines else "")
            out = canonical_json(signed.to_json()).encode("utf-8") + b"\n"
            if data and not data.endswith(b"\n"):
                out = b"\n" + out  # a torn last line stays a line of its own
            os.write(fd, out)
            os.fsync(fd)
            number = text.count("\n") + (0 if not data or data.endswith(b"\n") else 1) + 1
        except OSError as exc:
            raise HeadsFileError(
                f"{self.path}: cannot record the signed head: {exc.strerror or exc}"
            ) from None
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)
        return signed, number


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems refuse fsync on a directory
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# Holding signed heads against the chain


@dataclass(frozen=True, slots=True)
class HeadsCheck:
    ok: bool
    checked: int
    """Signed heads compared with the chain."""
    latest: Checkpoint | None = None
    """The newest point a signed head vouches for that the chain still holds:
    verification of newer entries can start there."""
    line: int | None = None
    """Line of the heads file with the (first) problem."""
    entry: int | None = None
    problem: str = ""
    """rewritten | deleted | rolled-back | purged-early | forged | unlinked | wrong-key"""
    message: str = ""
    contradicting: int = 0
    """How many signed heads disagree with the chain."""

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "line": self.line,
            "entry": self.entry,
            "problem": self.problem,
            "message": self.message,
            "contradicting": self.contradicting,
        }


@dataclass(frozen=True, slots=True)
class _Problem:
    entry: int
    line: int
    problem: str
    message: str


def check_heads(
    lines: list[HeadLine],
    key: HeadKey,
    reader: ChainReader,
    state: ChainState,
    *,
    now: datetime,
    retention_days: int,
    where: str,
    purged_now: Checkpoint | None = None,
) -> HeadsCheck:
    """Hold every line of the heads file against the chain as ``reader`` sees it.

    Signature problems come first (a line not signed by this key, a line removed
    from the middle); then each signed head must agree with the chain: the lowest
    entry a signed head contradicts is reported, with the newest agreeing head
    below it to say where the rewrite starts.  ``where`` names the file in
    messages.  ``purged_now`` is the checkpoint of a purge the caller has just run
    after the signed heads agreed (``dlp.sendlog.guard_purge``): the heads it
    removed are as legitimately gone as if a signed line recorded the purge."""
    if not lines:
        return HeadsCheck(True, 0)
    # -- signatures and the line-to-line links
    foreign = [ln.head.key_id for ln in lines if ln.head and ln.head.key_id != key.key_id]
    if foreign and len(foreign) == len(lines):
        return HeadsCheck(
            False,
            0,
            problem="wrong-key",
            message=(
                f"no line of {where} is signed with the key {key.path} (key id "
                f"{key.key_id[:16]}; the lines name {foreign[0][:16]}): "
                "wrong key, or the heads file of another installation"
            ),
        )
    prev = ""
    for ln in lines:
        h = ln.head
        if h is None:
            return _bad_line(ln, where, f"it is not a signed head ({ln.error})")
        if h.key_id != key.key_id:
            return _bad_line(
                ln, where, f"it names another key (id {h.key_id[:16]}): forged or edited"
            )
        if not signature_ok(h, key):
            return _bad_line(ln, where, "its signature does not match: it was edited or forged")
        if h.prev != prev:
            return HeadsCheck(
                False,
                0,
                line=ln.number,
                problem="unlinked",
                message=(
                    f"line {ln.number} of {where} does not follow the line before it: a signed "
                    "head was removed or the lines were reordered"
                ),
            )
        prev = ln.link
    heads = [(ln.number, ln.head) for ln in lines if ln.head is not None]
    # -- each signed head against the chain
    cp = state.checkpoint
    marks = reader.marks([h.seq for _, h in heads if cp.through_seq < h.seq <= state.head_seq])
    covered = max(h.purged_through for _, h in heads)
    ours = purged_now is not None and purged_now.through_seq == cp.through_seq
    if ours and purged_now is not None and purged_now.last_hash == cp.last_hash:
        covered = max(covered, cp.through_seq)
    cutoff = now - timedelta(days=retention_days)
    problems: list[_Problem] = []
    agree: list[tuple[int, str]] = []  # (entry, hash) a signed head vouches for and the chain has
    for number, h in heads:
        p = _against_chain(number, h, state, marks, covered, cutoff, where)
        if p is not None:
            problems.append(p)
            continue
        if h.seq >= cp.through_seq and h.seq:
            agree.append((h.seq, h.hash))
        if h.purged_through == cp.through_seq and h.purged_through:
            agree.append((h.purged_through, h.purged_hash))
    latest = max(agree, default=None)
    start = Checkpoint(latest[0], latest[1]) if latest else None
    if not problems:
        return HeadsCheck(True, len(heads), start)
    first = min(problems, key=lambda p: (p.entry, p.line))
    message = first.message
    if first.problem == "rewritten":
        below = max((s for s, _ in agree if s < first.entry), default=cp.through_seq)
        span = (
            f"entry {first.entry}"
            if below + 1 == first.entry
            else f"entries {below + 1}-{first.entry}"
        )
        anchor = (
            f"the signed head at entry {below} still matches"
            if any(s == below for s, _ in agree)
            else "no earlier signed head is left to narrow it"
        )
        message += (
            f". The chain was recomputed with different content in {span} ({anchor}); "
            "only someone with write access to the database can do that"
        )
    if len(problems) > 1:
        message += f" ({len(problems)} of {len(heads)} signed heads disagree with the chain)"
    return HeadsCheck(
        False,
        len(heads),
        start,
        first.line,
        first.entry,
        first.problem,
        message,
        len(problems),
    )


def _bad_line(ln: HeadLine, where: str, why: str) -> HeadsCheck:
    return HeadsCheck(
        False, 0, line=ln.number, problem="forged", message=f"line {ln.number} of {where}: {why}"
    )


def _against_chain(
    number: int,
    h: SignedHead,
    state: ChainState,
    marks: dict[int, EntryMark],
    covered: int,
    cutoff: datetime,
    where: str,
) -> _Problem | None:
    cp = state.checkpoint
    said = f"line {number} of {where} (signed {h.at} by {h.source} on {h.host})"
    if h.purged_through > cp.through_seq:
        return _Problem(
            h.purged_through,
            number,
            "rolled-back",
            f"{said} records entries through {h.purged_through} as purged, but the database's "
            f"purge checkpoint is at entry {cp.through_seq}: the log was restored from an older "
            "copy or rewritten",
        )
    if h.purged_through and h.purged_through == cp.through_seq and h.purged_hash != cp.last_hash:
        return _Problem(
            h.purged_through,
            number,
            "rewritten",
            f"{said} records the purge checkpoint at entry {h.purged_through} with hash "
            f"{h.purged_hash}; the database's checkpoint has {cp.last_hash}",
        )
    if h.seq > state.head_seq:
        return _Problem(
            h.seq,
            number,
            "deleted",
            f"{said} says entry {h.seq} (hash {h.hash}) had been written; the chain now "
            f"ends at entry {state.head_seq}: entries {state.head_seq + 1}-{h.seq} were removed "
            "and the chain head rewritten",
        )
    if h.seq > cp.through_seq:
        m = marks.get(h.seq)
        if m is None:
            return _Problem(
                h.seq, number, "deleted", f"{said} names entry {h.seq}, which is missing"
            )
        if m.hash == h.hash:
            return None
        differs = f"entry {h.seq} had hash {h.hash} when signed; it now has {m.hash}"
        if m.time != h.entry_time:
            differs += (
                f", and its recorded time changed from {h.entry_time} to {m.time} ({m.event})"
            )
        return _Problem(h.seq, number, "rewritten", f"{said}: {differs}")
    if h.seq == cp.through_seq:
        if h.seq == 0 or h.hash == cp.last_hash:
            return None
        return _Problem(
            h.seq,
            number,
            "rewritten",
            f"{said}: entry {h.seq} had hash {h.hash} when signed; the purge checkpoint "
            f"now records {cp.last_hash} for it",
        )
    # Purged.  Legitimate when a purge that dlp signed covered it, or when it is past
    # retention anyway (a purge run without the key); otherwise removed behind dlp's back.
    if covered >= h.seq:
        return None
    try:
        old = h.entry_time != "" and parse_time(h.entry_time) < cutoff
    except ValueError:
        old = False
    if old:
        return None
    return _Problem(
        h.seq,
        number,
        "purged-early",
        f"{said} names entry {h.seq} (recorded {h.entry_time}), which is gone: the purge "
        f"checkpoint is at entry {cp.through_seq}, but the entry is younger than the retention "
        "period and no signed purge removed it",
    )


# ---------------------------------------------------------------------------
# Taking, checking, signing and logging the head


@dataclass(frozen=True, slots=True)
class HeadReport:
    """What one retention run / purge / verify did with the head."""

    head: SignedHead | None
    """None when the chain-head row is missing."""
    chain: VerifyResult | None
    """The verification done before signing (whole chain, or since a signed head)."""
    heads: HeadsCheck | None
    """The signed heads held against the chain (None without a key)."""
    verified_from: int | None = None
    """Where ``chain``'s verification started (0: the whole chain)."""
    recorded_line: int | None = None
    """The heads-file line the signed head went to."""
    error: str = ""
    """Why the head was not signed (key, file, or the chain did not verify)."""

    @property
    def ok(self) -> bool:
        """Nothing contradicts the chain (errors of key or file are not the chain's)."""
        return (self.chain is None or self.chain.ok) and (self.heads is None or self.heads.ok)


def check_signed_heads(
    store: SendLogStore,
    key: HeadKey,
    heads_file: HeadsFile,
    *,
    retention_days: int,
    now: datetime,
) -> HeadsCheck:
    """The signed heads held against the chain as it is now (before a purge: purging
    must not erase the evidence of a rewrite)."""
    lines = heads_file.read()
    with store.chain_snapshot() as reader:
        state = reader.state()
        if state is None:
            return HeadsCheck(False, 0, problem="deleted", message="the chain head row is missing")
        return check_heads(
            lines,
            key,
            reader,
            state,
            now=now,
            retention_days=retention_days,
            where=str(heads_file.path),
        )


def attest(
    store: SendLogStore,
    *,
    key: HeadKey | None,
    heads_file: HeadsFile | None,
    retention_days: int,
    source: str,
    now: datetime,
    full: bool,
    record: bool = True,
    purged_now: Checkpoint | None = None,
) -> HeadReport:
    """Take the head in one snapshot; with a key, check the signed heads and the
    chain since the newest of them (or all of it with ``full``), and sign and append
    the head when everything agrees (and ``record``).  ``purged_now``: see
    ``check_heads``.

    Raises SendLogError (the database) and HeadsFileError (reading the file);
    a failure to append is reported in ``error``."""
    lines = heads_file.read() if key is not None and heads_file is not None else []
    where = str(heads_file.path) if heads_file is not None else ""
    with store.chain_snapshot() as reader:
        state = reader.state()
        chain = reader.verify_all() if full else None
        if state is None:
            return HeadReport(None, chain, None, 0 if full else None, error="chain head missing")
        head = take_head(state, source, now)
        if key is None:
            return HeadReport(head, chain, None, 0 if full else None)
        check = check_heads(
            lines,
            key,
            reader,
            state,
            now=now,
            retention_days=retention_days,
            where=where,
            purged_now=purged_now,
        )
        verified_from: int | None = 0 if full else None
        if chain is None and check.ok:
            if check.latest is not None:
                verified_from = check.latest.through_seq
                chain = reader.verify_after(check.latest)
            else:
                verified_from = 0
                chain = reader.verify_all()
    if chain is not None and not chain.ok:
        return HeadReport(
            head, chain, check, verified_from, error=f"the chain does not verify: {chain.message}"
        )
    if not check.ok:
        return HeadReport(head, chain, check, verified_from, error=check.message)
    assert heads_file is not None
    if not record:
        return HeadReport(head, chain, check, verified_from)
    try:
        signed, number = heads_file.append(head, key)
    except HeadsFileError as exc:
        return HeadReport(head, chain, check, verified_from, error=str(exc))
    return HeadReport(signed, chain, check, verified_from, number)


def log_head(report: HeadReport, logger: logging.Logger = log) -> None:
    """One JSON application-log line with the head (and its signature)."""
    if report.head is None:
        logger.error(
            "sendlog head missing",
            extra={"dlp": {"event": "sendlog head", "ok": False, "problem": report.error}},
        )
        return
    fields: dict[str, Any] = {"event": "sendlog head", **report.head.to_json()}
    fields["signed"] = report.head.signed
    fields["verified"] = (
        "no"
        if report.verified_from is None
        else "all"
        if report.verified_from == 0
        else f"since entry {report.verified_from}"
    )
    if report.recorded_line is not None:
        fields["heads_line"] = report.recorded_line
    if report.error:
        fields["problem"] = report.error
    # Unsigned because something disagrees: an error an operator must see.
    bad = not report.ok
    logger.log(
        logging.ERROR if bad else logging.WARNING if report.error else logging.INFO,
        "sendlog head NOT signed: tampering suspected" if bad else "sendlog head",
        extra={"dlp": fields},
    )


__all__ = [
    "HeadKey",
    "HeadKeyError",
    "HeadLine",
    "HeadReport",
    "HeadsCheck",
    "HeadsFile",
    "HeadsFileError",
    "SignedHead",
    "attest",
    "check_heads",
    "check_signed_heads",
    "generate_key",
    "load_key",
    "log_head",
    "sign",
    "signature_ok",
    "take_head",
]
