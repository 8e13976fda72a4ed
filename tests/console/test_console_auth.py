"""Accounts, sessions, cookies, login CSRF, language, and `dlp console user`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from console_support import FAST_HASHER, PASSWORD, csrf_of, login
from starlette.testclient import TestClient

from dlp.cli import main
from dlp.console.security import SESSION_COOKIE
from dlp.console.services import Services
from dlp.console.users import (
    LOCKOUT_SECONDS,
    MAX_FAILED_LOGINS,
    Role,
    UserError,
    UserStore,
)


def test_store_hashes_with_argon2id_and_never_keeps_the_password(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "u.db", hasher=FAST_HASHER)
    store.add("hanako", "a long enough secret", Role.APPROVER)
    (digest,) = (
        sqlite3.connect(tmp_path / "u.db").execute("SELECT password_hash FROM users").fetchone()
    )
    assert digest.startswith("$argon2id$")
    assert "a long enough secret" not in (tmp_path / "u.db").read_bytes().decode("latin-1")
    assert store.authenticate("hanako", "a long enough secret") is not None
    assert store.authenticate("hanako", "wrong") is None
    assert store.authenticate("nobody", "a long enough secret") is None
    assert "hash" not in repr(store.get("hanako"))
    assert (tmp_path / "u.db").stat().st_mode & 0o777 == 0o600


def test_store_validates(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "u.db", hasher=FAST_HASHER)
    with pytest.raises(UserError, match="too short"):
        store.add("a", "short", Role.REVIEWER)
    with pytest.raises(UserError, match="invalid user name"):
        store.add("bad name", "long enough pw", Role.REVIEWER)
    store.add("a", "long enough pw", Role.REVIEWER)
    with pytest.raises(UserError, match="already exists"):
        store.add("a", "long enough pw", Role.REVIEWER)
    with pytest.raises(UserError, match="no such user"):
        store.remove("b")


def test_lockout_after_repeated_failures(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "u.db", hasher=FAST_HASHER)
    store.add("a", "long enough pw", Role.REVIEWER)
    t = 1_000_000.0
    for _ in range(MAX_FAILED_LOGINS):
        assert store.authenticate("a", "wrong", now=t) is None
    # locked: even the right password fails until the lock expires
    assert store.authenticate("a", "long enough pw", now=t + 1) is None
    assert store.authenticate("a", "long enough pw", now=t + LOCKOUT_SECONDS + 1) is not None


def test_sessions_end_on_passwd_remove_and_idle(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "u.db", hasher=FAST_HASHER)
    user = store.add("a", "long enough pw", Role.ADMIN)
    token = store.open_session(user, now=1000.0)
    assert store.session(token, now=1001.0) is not None
    assert store.session(token, now=1000.0 + 3 * 3600) is None  # idle too long
    token = store.open_session(user)
    store.set_password("a", "another long pw")
    assert store.session(token) is None
    token = store.open_session(user)
    store.remove("a")
    assert store.session(token) is None
    assert store.session("") is None and store.session("x" * 500) is None


def test_login_cookie_flags_and_logout(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    c = client_for(None)
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"csrf_token": token, "name": "reviewer", "password": PASSWORD,
                               "next": "/log?findings=yes"})  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/log?findings=yes"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(SESSION_COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback: a Secure cookie would not come back
    assert c.get("/log").status_code == 200
    r = c.post("/logout", data={"csrf_token": csrf_of(c.get("/log").text)})
    assert r.status_code == 303
    assert c.get("/log").status_code == 303


def test_secure_cookie_over_tls(services: Services) -> None:
    from dlp.console.app import create_app

    with TestClient(create_app(services.settings, services), base_url="https://127.0.0.1") as c:
        token = csrf_of(c.get("/login").text)
        r = c.post("/login", data={"csrf_token": token, "name": "admin", "password": PASSWORD},
                   follow_redirects=False)  # fmt: skip
        assert r.status_code == 303
        assert "Secure" in r.headers["set-cookie"]
        assert "strict-transport-security" in r.headers


def test_login_refuses_wrong_password_missing_token_and_foreign_next(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    c = client_for(None)
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"csrf_token": token, "name": "reviewer", "password": "nope"})
    assert r.status_code == 401 and "パスワードが違います" in r.text
    assert SESSION_COOKIE + "=" not in r.headers.get("set-cookie", "")
    r = c.post("/login", data={"name": "reviewer", "password": PASSWORD})
    assert r.status_code == 403
    # a token from a different pre-login cookie (another browser) is no good
    other = client_for(None)
    foreign = csrf_of(other.get("/login").text)
    c.get("/login")
    r = c.post("/login", data={"csrf_token": foreign, "name": "reviewer", "password": PASSWORD})
    assert r.status_code == 403
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil"):
        token = csrf_of(c.get("/login").text)
        r = c.post("/login", data={"csrf_token": token, "name": "reviewer",
                                   "password": PASSWORD, "next": target})  # fmt: skip
        assert r.headers["location"] == "/", target


def test_change_own_password(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    c = client_for("reviewer")
    token = csrf_of(c.get("/account").text)
    r = c.post("/account", data={"csrf_token": token, "current": "wrong", "password": "x" * 12})
    assert r.status_code == 400
    r = c.post(
        "/account", data={"csrf_token": token, "current": PASSWORD, "password": "new password 123"}
    )
    assert r.status_code == 303
    assert c.get("/log").status_code == 303  # signed out
    login(c, "reviewer", "new password 123")
    assert c.get("/log").status_code == 200


def test_admin_user_page(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    c = client_for("admin")
    token = csrf_of(c.get("/users").text)
    r = c.post("/users/add", data={"csrf_token": token, "name": "jiro", "role": "approver",
                                   "password": "jiro's password"})  # fmt: skip
    assert r.status_code == 303
    assert services.users.get("jiro").role is Role.APPROVER
    r = c.post("/users/role", data={"csrf_token": token, "name": "jiro", "role": "reviewer"})
    assert r.status_code == 303 and services.users.get("jiro").role is Role.REVIEWER
    jiro = client_for(None)
    login(jiro, "jiro", "jiro's password")
    r = c.post(
        "/users/password", data={"csrf_token": token, "name": "jiro", "password": "reset pw 1234"}
    )
    assert r.status_code == 303
    assert jiro.get("/log").status_code == 303  # the reset ended jiro's session
    r = c.post("/users/remove", data={"csrf_token": token, "name": "jiro"})
    assert r.status_code == 303 and services.users.get("jiro") is None
    # an admin cannot remove themself, nor demote the last admin
    r = c.post("/users/remove", data={"csrf_token": token, "name": "admin"})
    assert r.status_code == 400
    r = c.post("/users/role", data={"csrf_token": token, "name": "admin", "role": "reviewer"})
    assert r.status_code == 400 and services.users.get("admin").role is Role.ADMIN


def test_cli_user_commands(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    cfg = tmp_path / "config" / "dlp.toml"
    cfg.write_text('[paths]\nvar_dir = "var"\n')
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
        r = runner.invoke(main, ["console", "user", *args, "--config", str(cfg)], input=stdin)
        return r.exit_code, r.output

    assert (
        run("add", "sato", "--role", "admin", "--password-stdin", stdin="sato password 1\n")[0] == 0
    )
    assert run("add", "sato", "--password-stdin", stdin="sato password 1\n")[0] == 1
    assert run("add", "kato", "--password-stdin", stdin="short\n")[0] == 1
    assert run("add", "kato", "--password-stdin", stdin="kato password 1\n")[0] == 0
    code, out = run("list", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["name"], r["role"]) for r in rows] == [("kato", "reviewer"), ("sato", "admin")]
    assert run("role", "kato", "approver")[0] == 0
    assert run("passwd", "kato", "--password-stdin", stdin="kato password 2\n")[0] == 0
    assert run("passwd", "nobody", "--password-stdin", stdin="whatever long\n")[0] == 1
    store = UserStore(tmp_path / "var" / "console-users.db")
    assert store.authenticate("kato", "kato password 2").role is Role.APPROVER
    assert run("remove", "kato")[0] == 0
    assert run("remove", "kato")[0] == 1


def test_dlp_console_serves_on_loopback_and_stops_on_sigterm(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx
    from support import free_port

    (tmp_path / "config").mkdir()
    cfg = tmp_path / "config" / "dlp.toml"
    cfg.write_text('[paths]\nvar_dir = "var"\n')
    port = free_port()
    dlp = Path(sys.executable).parent / "dlp"
    proc = subprocess.Popen(
        [str(dlp), "console", "--config", str(cfg), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "console did not come up"
                time.sleep(0.1)
        assert r.status_code == 200 and "送信監査コンソール" in r.text
        assert "server" not in r.headers  # no version banner
        secret = "/log?attachment=123456789018.csv"
        assert httpx.get(f"http://127.0.0.1:{port}{secret}", timeout=5).status_code == 303
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    text = err.decode()
    # uvicorn finishes its shutdown, then re-raises the signal it caught (systemd
    # counts a SIGTERM exit as clean)
    assert proc.returncode in (0, -signal.SIGTERM), text
    assert "Finished server process" in text
    assert "no console accounts yet" in text  # tells the admin how to start
    assert "WARNING" not in text  # loopback: no exposure warning
    assert b"123456789018" not in err + out  # no access log with the filter text


def test_exposure_check() -> None:
    from dlp.config import is_loopback_host

    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1")
    assert is_loopback_host("localhost")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("192.0.2.1")
    assert not is_loopback_host("console.example.lg.jp")
