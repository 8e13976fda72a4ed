"""`dlp quarantine list|show|release|delete`: the hold queue from the command line.

Exit status: 0 done, 1 the message is not held / the next hop refused it
(it stays held), 2 a configuration or storage problem (``QuarantineStorageError``:
the queue's directory, key file or database), said in one line naming it.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
from typing import NoReturn

import click

from dlp.cli.common import config_option, load_for_state
from dlp.config import Settings
from dlp.holdqueue.store import (
    HeldMessage,
    Quarantine,
    QuarantineError,
    QuarantineStorageError,
    open_quarantine,
)


def register(group: click.Group) -> None:
    """Add this family's commands to the top-level group."""
    group.add_command(quarantine)


@click.group()
def quarantine() -> None:
    """Held messages: list, show, release (deliver) or delete."""


def _actor() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except Exception:
        return "unknown"


def _open(config_path: str | None) -> tuple[Settings, Quarantine]:
    settings = load_for_state(config_path)
    try:
        return settings, open_quarantine(settings)
    except QuarantineError as exc:
        _fail(str(exc), 2)


@quarantine.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per held message.")
def list_(config_path: str | None, as_json: bool) -> None:
    """List held messages, oldest first."""
    _, queue = _open(config_path)
    try:
        held = queue.list()
    except QuarantineError as exc:
        _fail(str(exc), 2)
    if as_json:
        for h in held:
            sys.stdout.write(json.dumps(h.to_json(), ensure_ascii=False) + "\n")
        return
    if not held:
        click.echo("no held messages")
        return
    for h in held:
        click.echo(
            f"{h.id}  {h.held_at.astimezone():%Y-%m-%d %H:%M}  {h.sender or '<>'} -> "
            f"{', '.join(h.recipients)}  [{h.rule}]  {h.subject[:40]}{_waiting(h)}"
        )


def _waiting(h: HeldMessage) -> str:
    """For a confirm / delay / approve hold: who decides, and until when (issue 13)."""
    if h.kind == "hold":
        return ""
    until = f" until {h.expires_at.astimezone():%Y-%m-%d %H:%M}" if h.expires_at else ""
    return f"  ({h.kind}: {', '.join(h.waiting_for)}{until})"


@quarantine.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.argument("held_id")
def show(config_path: str | None, as_json: bool, held_id: str) -> None:
    """Show one held message's envelope, verdict and reasons."""
    _, queue = _open(config_path)
    held = _get(queue, held_id)
    if as_json:
        click.echo(json.dumps(held.to_json(), ensure_ascii=False, indent=2))
        return
    rows = [
        ("ID", held.id),
        ("Held at", held.held_at.astimezone().isoformat(timespec="seconds")),
        ("Audit key", held.audit_key),
        ("Message-ID", held.message_id),
        ("Sender", held.sender or "<>"),
        ("Recipients", ", ".join(held.recipients)),
        ("Subject", held.subject),
        ("Size", str(held.size)),
        ("Rule", held.rule),
        ("Findings", ", ".join(f"{k}={v}" for k, v in held.findings.items())),
    ]
    for name, value in rows:
        click.echo(f"{name:<11} {value}")
    for reason in held.reasons:
        click.echo(f"{'Reason':<11} {reason}")


@quarantine.command()
@config_option
@click.option("--comment", default="", help="Why it is released (recorded in the send log).")
@click.option(
    "--next-hop",
    "next_hop",
    metavar="HOST:PORT",
    help="Deliver there instead of [smtp] next_hop (as dlp serve --next-hop).",
)
@click.argument("held_id")
def release(config_path: str | None, comment: str, next_hop: str | None, held_id: str) -> None:
    """Deliver a held message to the next hop (it stays held if that fails)."""
    from dlp.holdqueue.decisions import ReleaseError
    from dlp.smtp.app import with_overrides
    from dlp.smtp.release import release as do_release

    settings, queue = _open(config_path)
    if next_hop:
        try:
            settings = with_overrides(settings, None, next_hop)
        except ValueError as exc:
            _fail(str(exc), 2)
    _get(queue, held_id)  # not held (1) or the queue unreadable (2), before connecting
    # The relay's warnings are lines for the gateway's log; here, without a log
    # configured, Python would print them raw beside the one line said below.
    logging.getLogger("dlp.smtp").addHandler(logging.NullHandler())
    try:
        reply = do_release(settings, held_id, _actor(), comment)
    except QuarantineStorageError as exc:
        _fail(str(exc), 2)
    except (ReleaseError, QuarantineError) as exc:
        _fail(str(exc), 1)
    click.echo(f"released {held_id}: {reply}")


@quarantine.command()
@config_option
@click.option("--comment", default="", help="Why it is deleted (recorded in the send log).")
@click.argument("held_id")
def delete(config_path: str | None, comment: str, held_id: str) -> None:
    """Delete a held message without delivering it (recorded in the send log)."""
    from dlp.holdqueue.decisions import ReleaseError, discard
    from dlp.sendlog import SendLogError

    settings, queue = _open(config_path)
    _get(queue, held_id)
    try:
        discard(settings, held_id, _actor(), comment)
    except QuarantineStorageError as exc:
        _fail(str(exc), 2)
    except (ReleaseError, QuarantineError) as exc:
        _fail(str(exc), 1)
    except SendLogError as exc:
        _fail(f"not deleted, the send log cannot be written: {exc}", 2)
    click.echo(f"deleted {held_id}")


def _fail(message: str, status: int) -> NoReturn:
    click.echo(f"dlp: {message}", err=True)
    raise SystemExit(status) from None


def _get(queue: Quarantine, held_id: str) -> HeldMessage:
    try:
        held = queue.get(held_id)
    except QuarantineStorageError as exc:
        _fail(str(exc), 2)
    except QuarantineError as exc:  # not an id at all: not held either
        _fail(str(exc), 1)
    if held is None:
        _fail(f"no held message {held_id}", 1)
    return held
