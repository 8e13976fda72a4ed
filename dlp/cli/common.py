"""Helpers every subcommand family shares: finding the configuration the same way."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dlp.config import ConfigError, Settings, load_settings

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


def os_reason(path: Path, exc: BaseException) -> str:
    """Why ``path`` could not be used, naming a plain file that stands where a
    directory should ("File exists" from mkdir says little on its own)."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if getattr(exc, "errno", None) in (errno.ENOTDIR, errno.EEXIST):
        blocker = next((p for p in path.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            reason += f" ({blocker} is a file, not a directory)"
    return reason
