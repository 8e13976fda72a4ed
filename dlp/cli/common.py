"""Helpers every subcommand family shares: finding the configuration the same way."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dlp.config import (
    ENV_VAR,
    SYSTEM_CONFIG,
    ConfigError,
    Settings,
    find_config_file,
    load_settings,
)

F = TypeVar("F", bound=Callable[..., Any])


def config_option(f: F) -> F:
    """``--config FILE``; without it $DLP_CONFIG, ./config/dlp.toml, /etc/dlp/dlp.toml."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Configuration file (default: $DLP_CONFIG, ./config/dlp.toml, /etc/dlp/dlp.toml).",
    )(f)


def load_or_exit(config_path: str | None) -> Settings:
    """Load settings; on a problem print it plainly and exit 2 (like grep's error status)."""
    try:
        return load_settings(config_path)
    except ConfigError as exc:
        click.echo(f"dlp: configuration error: {exc}", err=True)
        raise SystemExit(2) from None


def load_for_state(config_path: str | None) -> Settings:
    """``load_or_exit`` for a command that reads or writes the gateway's state
    under ``var/`` (send log, hold queue, console accounts): refused as root
    where ``var/`` belongs to the gateway's own user (``foreign_owner``)."""
    settings = load_or_exit(config_path)
    if find_config_file(config_path) is None:
        # Built-in defaults are what `make run` needs only where config/ is missing:
        # say so.  Otherwise an administrator in the wrong directory is told "no held
        # messages" about a hold queue the command has just created there.
        click.echo(
            f"dlp: no configuration file (looked for ${ENV_VAR}, ./config/dlp.toml and "
            f"{SYSTEM_CONFIG}); using the built-in defaults, state under {settings.var_dir}",
            err=True,
        )
    owner = foreign_owner(settings.var_dir)
    if owner:
        click.echo(
            f"dlp: {settings.var_dir} belongs to {owner}: run dlp as that user "
            f"(sudo -u {owner} dlp ...). Run as root, it would leave files there "
            "(the send log, the hold queue's key) that the gateway cannot use.",
            err=True,
        )
        raise SystemExit(2)
    return settings


def foreign_owner(var_dir: Path) -> str:
    """The user that owns ``var_dir`` when dlp runs as root and that user is not
    root (the gateway's own user, ``User=dlp``), else ''.  A command run by root
    there creates files only root may write - a send log or key the gateway then
    cannot open."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return ""
    try:
        uid = var_dir.stat().st_uid
    except OSError:
        return ""  # not there yet: whoever creates it owns it
    if uid == 0:
        return ""
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def os_reason(path: Path, exc: BaseException) -> str:
    """Why ``path`` could not be used, naming a plain file that stands where a
    directory should ("File exists" from mkdir says little on its own)."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if getattr(exc, "errno", None) in (errno.ENOTDIR, errno.EEXIST):
        blocker = next((p for p in path.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            reason += f" ({blocker} is a file, not a directory)"
    return reason
