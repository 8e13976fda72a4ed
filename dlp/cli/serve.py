"""`dlp serve`: run the gateway (see docs/gateway.md)."""

from __future__ import annotations

from pathlib import Path

import click

from dlp.cli.common import config_option, load_for_state
from dlp.config import Settings


def register(group: click.Group) -> None:
    """Add this family's commands to the top-level group."""
    group.add_command(serve)
    group.add_command(check)


@click.command()
@config_option
@click.option("--listen", metavar="HOST:PORT", help="Override [smtp] listen.")
@click.option("--next-hop", "next_hop", metavar="HOST:PORT", help="Override [smtp] next_hop.")
def serve(config_path: str | None, listen: str | None, next_hop: str | None) -> None:
    """Run the SMTP gateway until SIGTERM (graceful) — SIGHUP reloads the allowlist."""
    from dlp.smtp.app import run, with_overrides

    settings = load_for_state(config_path)  # says so when no configuration file is found
    try:
        settings = with_overrides(settings, listen, next_hop)
    except ValueError as exc:
        click.echo(f"dlp: {exc}", err=True)
        raise SystemExit(2) from None
    if settings.head_key_path is None:
        # Without a key the chain alone cannot tell a log whose newest entries were
        # deleted (and its head row moved back) from a shorter one (docs/sendlog.md).
        click.echo(
            "dlp serve: note: [sendlog] head_key_file is not set, so `dlp log verify` cannot"
            " notice the newest send-log entries being deleted; `dlp log keygen` makes a key"
            " (docs/sendlog.md)",
            err=True,
        )
    # Found out now, not at the first retention run a day later, or as a failure to
    # listen on the port.
    for problem in (_head_key_problem(settings), _tls_problem(settings)):
        if problem:
            click.echo(f"dlp: configuration error: {problem}", err=True)
            raise SystemExit(2)
    raise SystemExit(run(settings))


@click.command()
@config_option
def check(config_path: str | None) -> None:
    """Check the configuration as `dlp serve` would start on it, and change nothing:
    dlp.toml, the allowlist, the head key, the TLS files.  Exit 0 when it would start,
    2 when not (each problem on a line of its own).  Run it before `systemctl restart`."""
    from dlp.allowlist import AllowlistError, load_allowlist
    from dlp.cli.common import load_or_exit

    settings = load_or_exit(config_path)  # dlp.toml itself: exit 2 with the key and why
    problems = [
        p
        for p in (_head_key_problem(settings), _tls_problem(settings), _queue_problem(settings))
        if p
    ]
    try:
        allowlist = load_allowlist(settings.allowlist_path)
    except AllowlistError as exc:
        problems.append(str(exc))
        allowlist = None
    for problem in problems:
        click.echo(f"dlp: {problem}", err=True)
    if problems:
        raise SystemExit(2)
    assert allowlist is not None
    source = str(Path(settings.source).resolve()) if settings.source else "built-in defaults"
    click.echo(f"configuration: {source}")
    click.echo(
        f"allowlist: {settings.allowlist_path} ({len(allowlist.own)} own, "
        f"{len(allowlist.partners)} partner domains)"
    )
    click.echo(f"listen {settings.smtp.listen}, next hop {settings.smtp.next_hop}")
    if not allowlist.own:
        click.echo("warning: no [own] domain: every sender would count as outside", err=True)
    if settings.head_key_path is None:
        click.echo("note: [sendlog] head_key_file is not set (docs/sendlog.md)", err=True)
    click.echo("ok: `dlp serve` would start on this configuration")


def _queue_problem(settings: Settings) -> str:
    """Why the file hold queue's directory could not hold anything ("" when it could, or
    when the queue is PostgreSQL's), found without creating it: the nearest directory
    that exists must be writable, and nothing on the way may be a file."""
    import os

    if settings.sendlog.backend == "postgresql":
        return ""
    path = settings.resolve(settings.quarantine.dir)
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                return f"[quarantine] dir: {path}: {parent} is a file, not a directory"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"[quarantine] dir: {path}: {parent} is not writable by this user"
            return ""
    return ""


def _head_key_problem(settings: Settings) -> str:
    if settings.head_key_path is None:
        return ""
    from dlp.sendlog.heads import HeadKeyError, load_key

    try:
        load_key(settings.head_key_path)
    except HeadKeyError as exc:
        return f"[sendlog] head_key_file: {exc}"
    return ""


def _tls_problem(settings: Settings) -> str:
    """Why [smtp] tls_cert / tls_key cannot be used ("" when they can, or are unset):
    found now, not reported later as a failure to listen on the port."""
    import ssl

    s = settings.smtp
    if not s.tls_cert:
        return ""
    cert, key = settings.resolve(s.tls_cert), settings.resolve(s.tls_key)
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            return f"[smtp] {name}: {path}: {exc.strerror or exc}"
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, ValueError) as exc:
        return (
            f"[smtp] tls_cert / tls_key: {cert}, {key}: not a PEM certificate and its "
            f"private key ({exc})"
        )
    return ""
