"""`dlp console [serve]` and `dlp console user add|remove|passwd|role|list`.

The console listens on loopback by default.  Listening anywhere else without TLS
sends session cookies and reviewers' passwords in clear text; ``serve`` says so
loudly (docs/console.md explains how to expose it safely, behind TLS).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from dlp.cli.common import config_option, load_for_state, os_reason
from dlp.config import ConfigError, Settings, _hostport, check_address, is_loopback_host
from dlp.console.users import Role, UserError, UserStore, users_db_path


def _users(settings: Settings) -> UserStore:
    """The account store; a ``var`` that cannot hold it exits 2 with one line, as the
    other commands' storage problems do."""
    from dlp.console.services import lockout_policy

    path = users_db_path(settings.var_dir)
    try:
        return UserStore(path, lockout=lockout_policy(settings))
    except (OSError, sqlite3.Error) as exc:
        click.echo(
            f"dlp: {path}: cannot open the console accounts: {os_reason(path, exc)}", err=True
        )
        raise SystemExit(2) from None


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How ``serve`` runs uvicorn (also what the tests serve the console with)."""
    return {
        # X-Forwarded-Proto and X-Forwarded-For are believed only when the
        # administrator says a reverse proxy on this machine forwards to us
        # ([console] behind_proxy): TLS behind the proxy then still gets Secure
        # cookies, and the sign-in rate is counted per real client address.  Without
        # a proxy, any local user reaching the loopback port could name any address.
        "proxy_headers": settings.console.behind_proxy,
        "forwarded_allow_ips": "127.0.0.1,::1",
        "server_header": False,
        # Request lines carry the reviewer's filter text (file names, subjects typed
        # into a search), and nothing number-like may reach a log.
        "access_log": False,
        "log_level": settings.smtp.log_level,
    }


@contextmanager
def _user_errors() -> Iterator[None]:
    """A refused account change (unknown user, weak password …) exits 1 with the reason."""
    try:
        yield
    except UserError as exc:
        click.echo(f"dlp: {exc}", err=True)
        raise SystemExit(1) from None


def _read_password(from_stdin: bool, confirm: bool = True) -> str:
    if from_stdin:
        # One line; the newline is not part of the password.
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise click.UsageError("no terminal to ask for the password; use --password-stdin")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=confirm))


@click.group("console", invoke_without_command=True)
@config_option
@click.option("--listen", default=None, help="HOST:PORT (default: [console] listen).")
@click.pass_context
def console_group(ctx: click.Context, config_path: str | None, listen: str | None) -> None:
    """The review console (web pages for security staff).  Without a subcommand: serve."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve_cmd, config_path=config_path, listen=listen)


@console_group.command("serve")
@config_option
@click.option("--listen", default=None, help="HOST:PORT (default: [console] listen).")
def serve_cmd(config_path: str | None, listen: str | None) -> None:
    """Serve the console until interrupted."""
    import uvicorn

    from dlp.console.app import create_app
    from dlp.smtp.app import configure_logging

    settings = load_for_state(config_path)
    try:
        host, port = (
            check_address(listen, "--listen") if listen else _hostport(settings.console.listen)
        )
    except ValueError as exc:
        click.echo(f"dlp: {exc}", err=True)
        raise SystemExit(2) from None
    tls = bool(settings.console.tls_cert)
    if not is_loopback_host(host):
        click.echo(
            f"WARNING: the console listens on {host}, not loopback. Anyone who can reach "
            "this port can try passwords"
            + (
                ""
                if tls
                else ", and without TLS passwords and session cookies cross the network in clear text"
            )
            + ". See docs/console.md.",
            err=True,
        )
    users = _users(settings)
    if not users.users():
        click.echo(
            "note: no console accounts yet; create one with "
            "`dlp console user add NAME --role admin`",
            err=True,
        )
    # JSON lines on stderr like the gateway's: account locks and unlocks land there.
    configure_logging(settings.smtp.log_level)
    try:
        app = create_app(settings)
    except (ConfigError, ValueError, OSError) as exc:
        click.echo(f"dlp: cannot start the console: {exc}", err=True)
        raise SystemExit(2) from None
    scheme = "https" if tls else "http"
    click.echo(f"dlp console on {scheme}://{host}:{port}/", err=True)
    console = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(settings.resolve(settings.console.tls_cert)) if tls else None,
        ssl_keyfile=str(settings.resolve(settings.console.tls_key)) if tls else None,
        **uvicorn_options(settings),
    )
    configs = [console]
    if settings.notify.from_:
        # The sender/approver decision pages on a listener of their own (issue 13):
        # the admin console can stay on loopback while senders reach their links.
        from dlp.console.decide import create_decision_app

        d_host, d_port = _hostport(settings.notify.listen)
        click.echo(
            f"dlp decision pages on http://{d_host}:{d_port}/ (links: {settings.notify.url})",
            err=True,
        )
        configs.append(
            uvicorn.Config(
                create_decision_app(settings),
                host=d_host,
                port=d_port,
                ssl_certfile=str(settings.resolve(settings.console.tls_cert)) if tls else None,
                ssl_keyfile=str(settings.resolve(settings.console.tls_key)) if tls else None,
                **uvicorn_options(settings),
            )
        )
    asyncio.run(_serve_all([uvicorn.Server(c) for c in configs]))


async def _serve_all(servers: list[Any]) -> None:
    await asyncio.gather(*(s.serve() for s in servers))


@console_group.group("user")
def user_group() -> None:
    """Manage console accounts (stored in var/console-users.db, Argon2id hashes)."""


_ROLE = click.Choice([r.value for r in Role])


@user_group.command("add")
@config_option
@click.option("--role", type=_ROLE, default=Role.REVIEWER.value, show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.argument("name")
def user_add(config_path: str | None, role: str, password_stdin: bool, name: str) -> None:
    """Create account NAME: reviewer (read), approver (release/discard), admin (everything)."""
    settings = load_for_state(config_path)
    with _user_errors():
        _users(settings).add(name, _read_password(password_stdin), Role(role))
    click.echo(f"{name}: added ({role})")


@user_group.command("remove")
@config_option
@click.argument("name")
def user_remove(config_path: str | None, name: str) -> None:
    """Delete account NAME (its sessions end at once)."""
    settings = load_for_state(config_path)
    with _user_errors():
        _users(settings).remove(name)
    click.echo(f"{name}: removed")


@user_group.command("passwd")
@config_option
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.argument("name")
def user_passwd(config_path: str | None, password_stdin: bool, name: str) -> None:
    """Set a new password for NAME (ends its sessions, lifts a lockout)."""
    settings = load_for_state(config_path)
    store = _users(settings)
    if store.get(name) is None:
        click.echo(f"dlp: no such user {name!r}", err=True)
        raise SystemExit(1)
    with _user_errors():
        store.set_password(name, _read_password(password_stdin))
    click.echo(f"{name}: password changed")


@user_group.command("unlock")
@config_option
@click.argument("name")
def user_unlock(config_path: str | None, name: str) -> None:
    """Lift NAME's sign-in lock now (after too many wrong passwords)."""
    settings = load_for_state(config_path)
    with _user_errors():
        was_locked = _users(settings).unlock(name)
    click.echo(f"{name}: unlocked" if was_locked else f"{name}: was not locked")


@user_group.command("role")
@config_option
@click.argument("name")
@click.argument("role", type=_ROLE)
def user_role(config_path: str | None, name: str, role: str) -> None:
    """Change the role of NAME."""
    settings = load_for_state(config_path)
    with _user_errors():
        _users(settings).set_role(name, Role(role))
    click.echo(f"{name}: {role}")


@user_group.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per account.")
def user_list(config_path: str | None, as_json: bool) -> None:
    """List accounts and their roles."""
    settings = load_for_state(config_path)
    for u in _users(settings).users():
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "name": u.name,
                        "role": u.role.value,
                        "created_at": u.created_at,
                        "password_changed_at": u.password_changed_at,
                        "locked_until": _locked(u.locked_until) or None,
                    }
                )
            )
        else:
            lock = _locked(u.locked_until)
            click.echo(
                f"{u.name}\t{u.role.value}\t{u.created_at}"
                + (f"\tlocked until {lock}" if lock else "")
            )


def _locked(until: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until)) if until > time.time() else ""


def register(group: click.Group) -> None:
    """Add this family's commands to the top-level group."""
    group.add_command(console_group)
