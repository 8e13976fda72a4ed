"""Cookies, CSRF tokens and response headers for the console.

Two kinds of CSRF token:
- signed-in pages use the per-session token stored server-side with the session
  (``users.Session.csrf_token``);
- the login form, which has no session yet, uses a token bound to a random
  pre-login cookie by an HMAC under the console key (so a forged login - logging a
  victim into the attacker's account - fails too).
Both are compared in constant time.  Cookies are HttpOnly and SameSite=Strict, and
Secure whenever the request came over TLS (directly or via a trusted proxy).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dlp.config import Settings

SESSION_COOKIE = "dlp_console"
PRELOGIN_COOKIE = "dlp_console_pre"
LANG_COOKIE = "dlp_console_lang"
CSRF_FIELD = "csrf_token"
KEY_FILE = "console.key"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
"""No script at all: every page is plain HTML, forms and inline SVG."""


def console_key(settings: Settings) -> bytes:
    """The configured secret, or one generated once into ``var/console.key`` (0600)."""
    if settings.console.secret_key:
        return settings.console.secret_key.encode("utf-8")
    path = settings.var_dir / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # O_EXCL: two processes starting together must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
        f.flush()
        os.fsync(f.fileno())
    return key.encode("ascii")


def _read_key(path: Path) -> bytes:
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ValueError(f"{path}: console key too short; delete it to have a new one made")
    return key.encode("ascii")


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_tls(request),
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="strict", secure=is_tls(request))


def prelogin_token(key: bytes, nonce: str) -> str:
    return hmac.new(key, b"login\0" + nonce.encode("utf-8"), hashlib.sha256).hexdigest()


def tokens_match(expected: str, given: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


class SecurityHeaders:
    """Pure ASGI middleware: strict headers on every response, no caching of pages
    (they show who sent what to whom; a shared browser cache should not keep that)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if not is_static:
                    headers.append((b"cache-control", b"no-store"))
                if scope.get("scheme") == "https":
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
