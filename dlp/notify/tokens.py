"""One-click decision links: signed, bound to one hold, one role and one person.

A token is ``<payload>.<mac>`` in URL-safe base64: the payload names the held
message, the instant it was held (so a later hold that happens to get the same
id - the same message sent again - is not decided by an old link), the role
(``sender`` or ``approver``), the address and the expiry; the MAC is
HMAC-SHA-256 under ``[notify] secret_key`` (or ``var/notify.key``).  Nothing
is stored per link: a link is usable once because the hold it names is gone
(released or discarded) after the first decision, and that decision is taken
under the hold's claim (``dlp.smtp.senderloop``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dlp.config import Settings

KEY_FILE = "notify.key"
_CONTEXT = b"dlp-decision-link-v1\0"


class TokenError(Exception):
    """The link is damaged, forged or past its time; ``reason`` is ``invalid`` or ``expired``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Grant:
    """What one link allows: ``role`` (sender | approver) ``address`` to decide ``held_id``."""

    held_id: str
    held_at: str
    role: str
    address: str
    expires: int
    """Seconds since the epoch (UTC)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(key: bytes, grant: Grant) -> str:
    payload = json.dumps(
        [grant.held_id, grant.held_at, grant.role, grant.address, grant.expires],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    mac = hmac.new(key, _CONTEXT + payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def verify(key: bytes, token: str, now: datetime | None = None) -> Grant:
    """The grant of a genuine, unexpired token; TokenError otherwise."""
    try:
        head, _, tail = token.partition(".")
        payload, mac = _unb64(head), _unb64(tail)
    except (ValueError, binascii.Error):
        raise TokenError("invalid") from None
    good = hmac.new(key, _CONTEXT + payload, hashlib.sha256).digest()
    if not hmac.compare_digest(good, mac):
        raise TokenError("invalid")
    try:
        held_id, held_at, role, address, expires = json.loads(payload)
        grant = Grant(str(held_id), str(held_at), str(role), str(address), int(expires))
    except (ValueError, TypeError):
        raise TokenError("invalid") from None
    if (now or datetime.now(UTC)).timestamp() >= grant.expires:
        raise TokenError("expired")
    return grant


def csrf_token(key: bytes, token: str) -> str:
    """The form's CSRF field for one link: only a page that showed the link has it."""
    return _b64(hmac.new(key, b"dlp-decision-csrf\0" + token.encode(), hashlib.sha256).digest())


_KEYS: dict[Path, bytes] = {}


def notify_key(settings: Settings) -> bytes:
    """``[notify] secret_key``, or a key generated once into ``var/notify.key`` (0600)."""
    if settings.notify.secret_key:
        return settings.notify.secret_key.encode("utf-8")
    path = settings.var_dir / KEY_FILE
    if path in _KEYS:
        return _KEYS[path]  # read once per process: it never changes while running
    _KEYS[path] = _read_or_create(path)
    return _KEYS[path]


def _read_or_create(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    _create(path, secrets.token_hex(32).encode("ascii"))
    return path.read_bytes().strip()


def _create(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # another process won the race: its key is the key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
